"""The HTML allow-list of article bodies, shared by ingestion (which sanitises what it accepts) and
the renderer (which sanitises again what it reads from the log: the log is not trusted to hold only
what ingestion wrote)."""

from __future__ import annotations

import nh3

ALLOWED_TAGS = {
    "p", "br", "h2", "h3", "h4", "blockquote", "ul", "ol", "li", "strong", "em", "b", "i",
    "a", "figure", "figcaption", "table", "thead", "tbody", "tr", "th", "td", "sup", "sub", "span",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"scope"}, "td": {"colspan"}}
ALLOWED_SCHEMES = {"http", "https", "mailto"}


# Built once: building the allow-list is a third of what a call to nh3.clean costs.
_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    url_schemes=ALLOWED_SCHEMES,
    link_rel="nofollow noopener",
)


def sanitize_html(html: str) -> str:
    """Allow-list sanitising: no scripts, no event handlers, no javascript: URLs."""
    return _CLEANER.clean(html).strip()
