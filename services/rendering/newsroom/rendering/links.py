"""Mentions turned into links inside an article's HTML, and rendered pages cut at their slots.

Plain typed Python, free of I/O, compiled with mypyc (see deploy/native.py); the ``.py`` is the
source of truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import unescape

from markupsafe import escape

from newsroom.common.events import Mention
from newsroom.common.text import html_text

SLOT = "\x00"  # marks a shared fragment's place in a rendered page: SLOT name SLOT
CHIP_REACH = 40  # characters between mentions that still count as "right after" for the chip
_LONGEST_ENTITY = 33  # characters in the longest named entity reference, "&CounterClockwiseContourIntegral;"

MEMO_LIMIT = 16384  # entries kept by the renderer's per-instrument memos (one per listed instrument)

_Link = tuple[str, str, tuple[str, str]]  # a mention's opening tag, instrument id, (exchange, symbol)
_links: dict[tuple[str, str, str | None], _Link] = {}


def slot_marker(name: str) -> str:
    """Where the shared fragment ``name`` goes in a page."""
    return f"{SLOT}{name}{SLOT}"


def split_slots(html: str, prefix: str, head: str, foot: str) -> list[str | tuple[str, str]]:
    """A rendered page's entries: its slots' names, and the text between them as ``(prefix:0, text)``, ….

    The entries start with ``head`` and end with ``foot``; text that is only whitespace is dropped.
    """
    entries: list[str | tuple[str, str]] = [head]
    own = 0
    pos = 0
    size = len(html)
    naming = False  # the next part is a slot's name
    # find, not split: a one-character split compares every character in a loop, find uses memchr
    while pos <= size:
        cut = html.find(SLOT, pos)
        if cut == -1:
            cut = size
        part = html[pos:cut]
        if naming:
            entries.append(part)
        elif part and not part.isspace():
            entries.append((prefix + ":" + str(own), part))
            own += 1
        naming = not naming
        pos = cut + 1
    entries.append(foot)
    return entries


def _link(exchange: str, symbol: str, name: str | None) -> _Link:
    """A mention's opening tag (its link to the quote page) and its instrument, kept once made.

    :data:`SLOT` is taken out of the mention's texts (they come from the log, and the instrument
    names the chip's slot), so that they cannot add slots to the page.
    """
    key = (exchange, symbol, name)
    found = _links.get(key)
    if found is None:
        if SLOT in exchange or SLOT in symbol or (name is not None and SLOT in name):
            exchange, symbol = exchange.replace(SLOT, ""), symbol.replace(SLOT, "")
            name = name.replace(SLOT, "") if name is not None else None
        href = str(escape(f"/quote/{exchange}/{symbol}"))
        title = str(escape(name or f"{exchange}:{symbol}"))
        tag = f'<a class="ticker" href="{href}" title="{title}">'
        found = (tag, f"{exchange}:{symbol}", (exchange, symbol))
        if len(_links) < MEMO_LIMIT:
            _links[key] = found
    return found


def _start(mention: Mention) -> int:
    return mention.start


def _place_recorded(
    html: str, ordered: list[Mention], starts: list[int], ends: list[int], found: list[Mention]
) -> bool:
    """Place the mentions where enrichment recorded them; False if any place is missing or cannot hold.

    A recorded place holds when it lies within ``html`` outside any tag and any entity, holds no
    markup, cuts no entity and is as long as the mention's text. The places ``html_span`` gives
    hold, except near a bare "&" or a lone "<" (which sanitised bodies do not have): there the text
    is mapped, to the same bytes, more slowly. A place that does not hold is a writer's bug, and the
    text is mapped instead; so a recorded place cannot break the page (unless it cuts an entity
    longer than :data:`_LONGEST_ENTITY`, which the sanitiser never writes), and one of the right
    length in the wrong place would link other words.
    """
    size = len(html)
    for mention in ordered:
        start, end = mention.html_start, mention.html_end
        if start is None or end is None or not 0 <= start < end <= size:
            return False
        if ends and start < ends[-1]:
            continue  # overlaps the previous mention: left unlinked, as the mapping does
        if html.find("<", start, end) != -1 or html.rfind("<", 0, start) > html.rfind(">", 0, start):
            return False  # markup inside, or inside a tag
        before = html.rfind("&", max(0, start - _LONGEST_ENTITY), start)
        if before != -1 and html.find(";", before, start) == -1:
            return False  # inside an entity (or after a bare "&": mapping knows which)
        inside = html.rfind("&", start, end)
        if inside != -1 and html.find(";", inside, end) == -1:
            return False  # would cut an entity
        length = end - start if inside == -1 else len(unescape(html[start:end]))
        if length != mention.end - mention.start:
            return False  # not as long as the mention's words: not their place
        starts.append(start)
        ends.append(end)
        found.append(mention)
    return True


def link_mentions(body_html: str, mentions: Sequence[Mention]) -> str:
    """Link every mention to its quote page, and give each instrument one live chip.

    The chip follows the instrument's first mention, or the explicit form right after it
    ("Intel Corp. (NASDAQ: INTC)" gets its chip after the closing parenthesis).
    """
    ordered = sorted(mentions, key=_start)
    starts: list[int] = []
    ends: list[int] = []
    found: list[Mention] = []
    if not _place_recorded(body_html, ordered, starts, ends, found):
        starts.clear()
        ends.clear()
        found.clear()
        mapped = html_text(body_html)
        for mention in ordered:
            span = mapped.html_span(mention.start, mention.end, body_html)
            if span is not None and (not ends or span[0] >= ends[-1]):
                starts.append(span[0])
                ends.append(span[1])
                found.append(mention)
    links = [_link(m.exchange, m.symbol, m.name) for m in found]  # each mention's tag and instrument
    chip_after: dict[int, str] = {}
    seen: set[str] = set()
    count = len(found)
    for i in range(count):
        _, iid, instrument = links[i]
        if found[i].kind != "equity" or iid in seen:
            continue
        seen.add(iid)
        last = i
        for k in range(i + 1, count):
            if starts[k] - ends[last] > CHIP_REACH:
                break
            if links[k][2] == instrument and found[k].stage == "explicit":
                last = k
        chip_after[last] = iid
    out: list[str] = []
    pos = 0
    for i in range(count):
        start, end = starts[i], ends[i]
        out.append(body_html[pos:start])
        out.append(links[i][0])
        out.append(body_html[start:end])
        out.append("</a>")
        pos = end
        chip = chip_after.get(i)
        if chip is not None:
            if body_html.startswith(")", pos):
                out.append(")")
                pos += 1
            out.append(slot_marker(f"chip:{chip}"))
    out.append(body_html[pos:])
    return "".join(out)
