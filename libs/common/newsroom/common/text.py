"""Plain text of an HTML fragment with a map back to HTML offsets.

The tagger works on plain text; the renderer links mentions inside the HTML. Both use
:func:`html_text` so a mention's character span means the same thing on both sides.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from html import unescape

_TOKEN = re.compile(r"<[^>]*>|&(?:#\d+|#x[0-9a-fA-F]+|\w+);|[^<&]+|&|<")  # tiles any string
_BLOCK = re.compile(r"</?(p|h[1-6]|li|br|blockquote|tr|div|figure|figcaption|ul|ol|table)\b", re.I)

_TEXT, _ENTITY, _BREAK = 0, 1, 2


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


def html_text(html: str) -> MappedText:
    """Strip tags, unescape entities and separate blocks with blank lines, keeping offsets."""
    pieces: list[str] = []
    starts: list[int] = []
    h_starts: list[int] = []
    h_ends: list[int] = []
    kinds: list[int] = []
    length = 0
    stop = 0
    block = _BLOCK.match
    # Tokens tile the HTML, so each one starts where the one before it stopped.
    for token in _TOKEN.findall(html):
        pos, stop = stop, stop + len(token)
        first = token[0]
        if first == "<":
            if not (block(token) and pieces and not pieces[-1].endswith("\n")):
                continue
            piece, kind, h_start, h_end = "\n\n", _BREAK, -1, -1
        elif first == "&" and len(token) > 1:
            piece, kind, h_start, h_end = unescape(token), _ENTITY, pos, stop
        else:
            piece, kind, h_start, h_end = token, _TEXT, pos, stop
        pieces.append(piece)
        starts.append(length)
        h_starts.append(h_start)
        h_ends.append(h_end)
        kinds.append(kind)
        length += len(piece)
    while kinds and kinds[-1] == _BREAK:
        length -= len(pieces.pop())
        for column in (starts, h_starts, h_ends, kinds):
            column.pop()
    return MappedText("".join(pieces), tuple(starts), tuple(h_starts), tuple(h_ends), tuple(kinds))
