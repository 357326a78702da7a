"""Plain text of HTML with offsets that map back."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from html import unescape
from types import ModuleType

import pytest

import newsroom.common.text as text_module
from newsroom.common.text import html_text
from tests.native_builds import compiled, source_of


def test_offsets_map_back_through_entities_and_tags() -> None:
    """A span found in the plain text points at the same words in the HTML."""
    html = "<p>S&amp;P 500 rose.</p><p>Intel Corp. (NASDAQ: INTC) fell.</p>"
    mapped = html_text(html)
    assert mapped.text == "S&P 500 rose.\n\nIntel Corp. (NASDAQ: INTC) fell."
    start = mapped.text.index("S&P 500")
    span = mapped.html_span(start, start + len("S&P 500"), html)
    assert span is not None
    assert html[span[0] : span[1]] == "S&amp;P 500"
    start = mapped.text.index("INTC")
    span = mapped.html_span(start, start + 4, html)
    assert span is not None
    assert html[span[0] : span[1]] == "INTC"


def test_spans_across_markup_are_not_linkable() -> None:
    """A span interrupted by a tag has no HTML range."""
    html = "<p>Intel <b>Corp</b></p>"
    mapped = html_text(html)
    assert mapped.html_span(0, len("Intel Corp"), html) is None


# The specification the scanner implements: tokens that tile the HTML, as one regular expression.
SPEC_TOKEN = re.compile(r"<[^>]*>|&(?:#\d+|#x[0-9a-fA-F]+|\w+);|[^<&]+|&|<")
SPEC_BLOCK = re.compile(r"</?(p|h[1-6]|li|br|blockquote|tr|div|figure|figcaption|ul|ol|table)\b", re.I)


def spec_html_text(html: str) -> tuple[str, list[tuple[int, int, int, int]]]:
    """The text and its segments (text start, HTML start, HTML end, kind), by the regex tokens."""
    pieces: list[str] = []
    segments: list[tuple[int, int, int, int]] = []
    length = stop = 0
    for token in SPEC_TOKEN.findall(html):
        pos, stop = stop, stop + len(token)
        if token[0] == "<":
            if not (SPEC_BLOCK.match(token) and pieces and not pieces[-1].endswith("\n")):
                continue
            piece, segment = "\n\n", (length, -1, -1, 2)
        elif token[0] == "&" and len(token) > 1:
            piece, segment = unescape(token), (length, pos, stop, 1)
        else:
            piece, segment = token, (length, pos, stop, 0)
        pieces.append(piece)
        segments.append(segment)
        length += len(piece)
    while segments and segments[-1][3] == 2:
        pieces.pop()
        segments.pop()
    return "".join(pieces), segments


ODD_HTML = [
    "<p>", "</p>", "<P class='x'>", "<br/>", "<pre>", "</ p>", "<h1>", "<b>", "</b>", "&amp;", "&#39;",
    "&#x27;", "&nbsp;", "&bogus", "&", "<", ">", "a", "Intel ", "é", "\n", " ", "<li>", "<p1>", "&lt;",
    "<table>", "x_y", "<div\n>", "1", "<pé>", "&#12;", "<!-- c -->", "<TR>",
    "<lİ>", "<dıv>", "<bloc\u212aquote>", "<fİgcaption>",  # case folding: İ, ı and the Kelvin sign K
    "<p_x>", "<Li>", "<h7>", "<//p>", "<ul2>", "<Table\t", "<br", "<TABLE/>", "<uL>",  # where a name ends
]  # fmt: skip


@pytest.fixture(params=["in use", "source"])
def text_impl(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The module the package imports (the mypyc build under make test) and its plain-Python source."""
    if request.param == "in use":
        yield text_module
    elif not compiled(text_module):
        pytest.skip("the module in use is the source already")
    else:
        with source_of(text_module) as source:
            yield source


def test_the_scanner_tiles_html_as_the_specification_does(text_impl: ModuleType) -> None:
    """On 20,000 random strings of awkward HTML, text and every segment equal the regex specification's."""
    rng = random.Random(20261125)
    for _ in range(20_000):
        html = "".join(rng.choice(ODD_HTML) for _ in range(rng.randint(0, 30)))
        mapped = text_impl.html_text(html)
        got = (
            mapped.text,
            list(zip(mapped.starts, mapped.html_starts, mapped.html_ends, mapped.kinds, strict=True)),
        )
        assert got == spec_html_text(html), html
