"""Plain text of HTML with offsets that map back."""

from __future__ import annotations

from newsroom.common.text import html_text


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
