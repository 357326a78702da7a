"""Main-text extraction from HTML article pages (trafilatura), keeping inline ticker tags.

The extractor drops navigation, boilerplate and reader comments; inline text such as
"International Business Machines Corp. (NYSE: IBM)" stays in the paragraph it belongs to,
so the enrichment service can still see the exchange tags.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

import trafilatura


@dataclass(frozen=True)
class Extracted:
    """An article page reduced to its headline, paragraphs and metadata."""

    headline: str
    paragraphs: tuple[str, ...]
    url: str | None
    published_at: datetime | None
    site: str | None
    byline: str | None

    @property
    def text(self) -> str:
        """The paragraphs as plain text, one blank line between them."""
        return "\n\n".join(self.paragraphs)


def extract_article(html: str | bytes, *, url: str | None = None) -> Extracted | None:
    """The main text and metadata of an article page, or ``None`` when no article text is found."""
    with warnings.catch_warnings():  # date guessing warns about zone names it cannot place ("EST")
        warnings.simplefilter("ignore")
        doc = trafilatura.bare_extraction(
            html,
            url=url,
            favor_precision=True,  # news pages: better to lose a caption than to keep the comments
            include_comments=False,
            include_tables=False,
            with_metadata=True,
        )
    if doc is None or isinstance(doc, dict) or not doc.text:
        return None
    paragraphs = [line.strip() for line in doc.text.splitlines() if line.strip()]
    headline = (doc.title or "").strip()
    if paragraphs and headline and paragraphs[0] == headline:
        paragraphs = paragraphs[1:]  # some pages repeat the headline as the first line of the body
    published = None
    if doc.date:
        published = datetime.fromisoformat(doc.date)
        published = published if published.tzinfo else published.replace(tzinfo=UTC)
    return Extracted(
        headline=headline or (paragraphs[0] if paragraphs else ""),
        paragraphs=tuple(paragraphs),
        url=doc.url or url,
        published_at=published,
        site=doc.sitename or doc.hostname,
        byline=doc.author,
    )
