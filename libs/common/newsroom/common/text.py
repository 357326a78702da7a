"""Plain text of an HTML fragment with a map back to HTML offsets.

The tagger works on plain text; the renderer links mentions inside the HTML. Both use
:func:`html_text` so a mention's character span means the same thing on both sides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

_TOKEN = re.compile(r"<[^>]*>|&(?:#\d+|#x[0-9a-fA-F]+|\w+);|[^<&]+|&")
_BLOCK = re.compile(r"</?(p|h[1-6]|li|br|blockquote|tr|div|figure|figcaption|ul|ol|table)\b", re.I)


@dataclass(frozen=True)
class MappedText:
    """``text`` plus, for each of its characters, the HTML span it came from (``(-1, -1)`` if none)."""

    text: str
    spans: tuple[tuple[int, int], ...]

    def html_span(self, start: int, end: int, html: str) -> tuple[int, int] | None:
        """The HTML range holding text[start:end], or None when markup interrupts it."""
        if start >= end or end > len(self.spans):
            return None
        h_start, h_end = self.spans[start][0], self.spans[end - 1][1]
        if h_start < 0 or h_end < 0 or "<" in html[h_start:h_end]:
            return None
        return h_start, h_end


def html_text(html: str) -> MappedText:
    """Strip tags, unescape entities and separate blocks with blank lines, keeping offsets."""
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    for match in _TOKEN.finditer(html):
        token, pos = match.group(), match.start()
        if token.startswith("<"):
            if _BLOCK.match(token) and chars and chars[-1] != "\n":
                chars.extend("\n\n")
                spans.extend([(-1, -1), (-1, -1)])
        elif token.startswith("&") and len(token) > 1:
            for ch in unescape(token):
                chars.append(ch)
                spans.append((pos, match.end()))
        else:
            for i, ch in enumerate(token):
                chars.append(ch)
                spans.append((pos + i, pos + i + 1))
    while chars and chars[-1] == "\n":
        chars.pop()
        spans.pop()
    return MappedText("".join(chars), tuple(spans))
