"""Main-text extraction from HTML article pages (trafilatura), keeping inline ticker tags.

The extractor drops navigation, boilerplate and reader comments; inline text such as
"International Business Machines Corp. (NYSE: IBM)" stays in the paragraph it belongs to,
so the enrichment service can still see the exchange tags.

The extractor finds a publication date but no time of day; the time comes from what the page
itself states (:func:`stated_times`), converted to UTC.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import lxml.html
import trafilatura
from lxml import etree

# Statements of the page's own publication time, strongest first: these name the page itself.
PAGE_TIME_METAS = ("article:published_time", "og:article:published_time", "og:published_time")
# Weaker ones (a sidebar's story can carry them too): used only on the day the extractor found.
OTHER_TIME_METAS = ("datepublished", "pubdate", "publishdate", "pub_date", "dc.date.issued", "date")


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


def _ld_published(doc: Any) -> Iterator[str]:
    """``datePublished`` values of a JSON-LD document, the outermost objects first."""
    queue = deque([doc])
    while queue:
        item = queue.popleft()
        if isinstance(item, list):
            queue.extend(item)
        elif isinstance(item, dict):
            value = item.get("datePublished")
            if isinstance(value, str):
                yield value
            queue.extend(v for v in item.values() if isinstance(v, list | dict))


def stated_times(html: str | bytes) -> tuple[list[str], list[str]]:
    """What the page states of its publication time: the statements that name the page itself
    (JSON-LD ``datePublished``, ``article:published_time``) and weaker ones (``<time datetime>``,
    other date metas), each in the order it is to be trusted."""
    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return [], []
    strong: list[str] = []
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() == "application/ld+json":
            with contextlib.suppress(ValueError, RecursionError):
                strong.extend(_ld_published(json.loads(script.text or "", strict=False)))
    metas: dict[str, list[str]] = {}
    for meta in tree.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip().lower()
        if meta.get("content"):
            metas.setdefault(key, []).append(meta.get("content", ""))
    strong += [value for key in PAGE_TIME_METAS for value in metas.get(key, [])]
    marked = [  # <time pubdate> and any element marked up as the datePublished of something
        e.get("datetime") or e.get("content") or ""
        for e in tree.iter()
        if (e.tag == "time" and e.get("pubdate") is not None) or e.get("itemprop") == "datePublished"
    ]
    weak = marked + [t.get("datetime", "") for t in tree.iter("time") if t.get("datetime")]
    weak += [value for key in OTHER_TIME_METAS for value in metas.get(key, [])]
    return strong, weak


def _instant(text: str) -> datetime | None:
    """An ISO 8601 date and time of day in UTC (a time without an offset is taken as UTC), or None for
    anything else, a date alone included."""
    text = text.strip()
    if len(text) <= 10:  # a date alone says nothing of the time of day
        return None
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _local_day(text: str) -> date | None:
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text.strip()).date()
    return None


def published_time(html: str | bytes, day: date | None) -> datetime | None:
    """The page's publication time of day, in UTC: the first statement naming the page itself, else the
    first weaker one stated on ``day`` (the extractor's date, in the page's own zone), else ``day`` at
    midnight UTC."""
    strong, weak = stated_times(html)
    for text in strong:
        if (when := _instant(text)) is not None:
            return when
    for text in weak:
        when = _instant(text)
        if when is not None and (day is None or _local_day(text) == day):
            return when
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None


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
    day = _local_day(doc.date) if doc.date else None
    return Extracted(
        headline=headline or (paragraphs[0] if paragraphs else ""),
        paragraphs=tuple(paragraphs),
        url=doc.url or url,
        published_at=published_time(html, day),
        site=doc.sitename or doc.hostname,
        byline=doc.author,
    )
