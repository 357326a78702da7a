"""Plain text of an HTML fragment with a map back to HTML offsets.

The tagger works on plain text; the renderer links mentions inside the HTML. Both use
:func:`html_text` so a mention's character span means the same thing on both sides.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from html import unescape
from typing import Final

_ENTITY_REF = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|\w+);")
# The tags after which the text starts a new block (separated by a blank line). _BLOCK matches one where
# a tag starts; _is_block looks most names up in the set instead.
_BLOCK_NAMES = frozenset({
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "br", "blockquote", "tr", "div", "figure", "figcaption",
    "ul", "ol", "table",
})  # fmt: skip
_BLOCK = re.compile(rf"</?({'|'.join(sorted(_BLOCK_NAMES))})\b", re.I)

_TEXT: Final = 0  # segment kinds (Final: compiled in as constants)
_ENTITY: Final = 1
_BREAK: Final = 2


@dataclass(frozen=True)
class MappedText:
    """``text`` plus the segments it was made of: runs of literal text, entities, block breaks.

    Segment ``i`` starts at ``starts[i]`` in ``text``, came from ``html[html_starts[i]:html_ends[i]]``
    and is of kind ``kinds[i]``; a literal run maps character for character.
    """

    text: str
    starts: tuple[int, ...]
    html_starts: tuple[int, ...]
    html_ends: tuple[int, ...]
    kinds: tuple[int, ...]

    def _html_pos(self, index: int, *, end: bool) -> int:
        seg = bisect_right(self.starts, index) - 1
        kind = self.kinds[seg]
        if kind == _BREAK:
            return -1
        if kind == _ENTITY:
            return self.html_ends[seg] if end else self.html_starts[seg]
        return self.html_starts[seg] + (index - self.starts[seg]) + (1 if end else 0)

    def html_span(self, start: int, end: int, html: str) -> tuple[int, int] | None:
        """The HTML range holding text[start:end], or None when markup interrupts it."""
        if start >= end or end > len(self.text) or start < 0:
            return None
        h_start, h_end = self._html_pos(start, end=False), self._html_pos(end - 1, end=True)
        if h_start < 0 or h_end < 0 or "<" in html[h_start:h_end]:
            return None
        return h_start, h_end


def _is_block(html: str, pos: int) -> bool:
    """Whether ``_BLOCK`` matches at ``pos``: looked up directly for a tag name of ASCII letters and digits.

    Under ``re.I`` an ASCII letter matches only itself in either case, or one of three non-ASCII
    letters (İ, ı, the Kelvin sign); and ``\\b`` after such a name holds exactly when an ASCII
    character other than ``_`` follows it. Any other tag (a non-ASCII character or ``_`` where the
    ASCII name ends) is left to the regex itself.
    """
    start = pos + 1
    if html.startswith("/", start):
        start += 1
    end = start
    size = len(html)
    while end < size:
        c = ord(html[end])
        if not (97 <= c <= 122 or 65 <= c <= 90 or 48 <= c <= 57):  # a-z, A-Z, 0-9
            break
        end += 1
    if end < size and (html[end] == "_" or ord(html[end]) > 127):
        return _BLOCK.match(html, pos) is not None
    return html[start:end].lower() in _BLOCK_NAMES


def html_text(html: str) -> MappedText:
    """Strip tags, unescape entities and separate blocks with blank lines, keeping offsets.

    The HTML is read as a sequence of tokens that tile it: a tag (``<`` to the next ``>``), an
    entity reference, a run of text without ``<`` or ``&``, or a lone ``<`` (dropped) or ``&``
    (kept). A scan with ``str.find`` rather than a regular expression: this runs for every article
    the tagger reads and every page the renderer writes, and is compiled with mypyc.
    """
    pieces: list[str] = []
    starts: list[int] = []
    h_starts: list[int] = []
    h_ends: list[int] = []
    kinds: list[int] = []
    length = 0
    pos = 0
    size = len(html)
    next_lt = html.find("<")
    next_amp = html.find("&")
    while pos < size:
        if next_lt != -1 and next_lt < pos:
            next_lt = html.find("<", pos)
        if next_amp != -1 and next_amp < pos:
            next_amp = html.find("&", pos)
        first = html[pos]
        if first == "<":
            close = html.find(">", pos)
            stop = close + 1 if close != -1 else pos + 1
            block = close != -1 and _is_block(html, pos)
            if not (block and pieces and not pieces[-1].endswith("\n")):
                pos = stop
                continue
            piece, kind, h_start, h_end = "\n\n", _BREAK, -1, -1
        elif first == "&":
            entity = _ENTITY_REF.match(html, pos)
            stop = entity.end() if entity is not None else pos + 1
            if entity is not None:
                piece, kind, h_start, h_end = unescape(html[pos:stop]), _ENTITY, pos, stop
            else:
                piece, kind, h_start, h_end = "&", _TEXT, pos, stop
        else:
            stop = size
            if next_lt != -1:
                stop = next_lt
            if next_amp != -1 and next_amp < stop:
                stop = next_amp
            piece, kind, h_start, h_end = html[pos:stop], _TEXT, pos, stop
        pieces.append(piece)
        starts.append(length)
        h_starts.append(h_start)
        h_ends.append(h_end)
        kinds.append(kind)
        length += len(piece)
        pos = stop
    while kinds and kinds[-1] == _BREAK:
        length -= len(pieces.pop())
        for column in (starts, h_starts, h_ends, kinds):
            column.pop()
    return MappedText("".join(pieces), tuple(starts), tuple(h_starts), tuple(h_ends), tuple(kinds))
