"""Publish times: converted to UTC, bounded, and kept to the minute by every import path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsroom.ingestion import api as ingestion_api
from newsroom.ingestion.domain import ArticleRegistry, parse_article
from newsroom.ingestion.extract import extract_article
from newsroom.ingestion.feeds import parse_feed
from newsroom.ingestion.files import read_path
from tests.ingestion.helpers import Api, raw_article, refused

TOKYO_NINE = "2026-01-13T09:00:00+09:00"
MIDNIGHT_UTC = datetime(2026, 1, 13, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 13, 12, 0, tzinfo=UTC)
HALF_PAST = datetime(2026, 1, 13, 0, 30, tzinfo=UTC)  # a time of day a date alone would lose
ARTICLE = {"headline": "Intel beats", "body": "Intel Corp. (NASDAQ: INTC) rose.", "source": "wire"}


def test_an_offset_time_is_published_as_utc() -> None:
    """09:00 in Tokyo is published as 00:00 UTC, not relabelled 09:00 UTC."""
    article = parse_article({**ARTICLE, "published_at": TOKYO_NINE}, now=NOW, max_future=timedelta(0))
    decision = ArticleRegistry().submit(article)
    assert decision.event is not None
    published = decision.event.published_at  # type: ignore[attr-defined]
    assert published == MIDNIGHT_UTC
    assert published.utcoffset() == timedelta(0)
    assert json.loads(decision.event.model_dump_json())["published_at"].startswith("2026-01-13T00:00:00")


@pytest.mark.parametrize("ahead", [timedelta(minutes=4), timedelta(0), timedelta(days=-400)])
def test_times_within_the_bounds_are_accepted(ahead: timedelta) -> None:
    """A time up to the clock-skew tolerance ahead, or in the past, is accepted as given."""
    when = NOW + ahead
    article = parse_article(
        {**ARTICLE, "published_at": when.isoformat()}, now=NOW, max_future=timedelta(minutes=5)
    )
    assert article.published_at == when


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31T00:00:00Z",
        "2026-01-13T12:06:00Z",
        "0001-01-01T00:00:00Z",
        "1899-12-31T23:59:59Z",
        "9999-12-31T23:59:59-05:00",  # past the last representable instant once in UTC
        "0001-01-01T00:00:00+05:00",  # before the first
    ],
)
async def test_far_future_and_absurdly_old_times_are_422(
    api: Api, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """A publish time beyond the tolerance ahead (here 5 minutes) or before 1900 is a 422 naming it."""
    monkeypatch.setattr(ingestion_api, "utc_now", lambda: NOW)  # the fixture's tolerance is 300 s
    await refused(api, raw_article(published_at=json.dumps(when)), "published_at")


PAGE = """<!doctype html><html><head><title>Intel beats estimates</title>{head}</head>
<body><article><h1>Intel beats estimates</h1>{byline}
<p>Intel Corp. (NASDAQ: INTC) reported quarterly revenue above what analysts had expected, and its shares
rose in early trading as investors welcomed the chip maker's outlook for the rest of the year.</p>
<p>The company said demand from data centres had recovered faster than it had planned, and that its new
factories were on schedule; analysts at several banks raised their price targets after the call.</p>
<p>Rival Advanced Micro Devices, Inc. (NASDAQ: AMD) also gained, while the broader market was little
changed in a session that had few other company results to move it.</p>
</article></body></html>"""

LD = '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle", ' + (
    '"headline": "Intel beats estimates", "datePublished": "2026-01-13T09:30:00+09:00"}</script>'
)
META = '<meta property="article:published_time" content="2026-01-12T19:30:00-05:00">'
BYLINE = '<p class="byline">By A. Writer, <time datetime="2026-01-13T01:30:00+01:00">13 Jan</time></p>'
PAGES = {"json-ld": (LD, ""), "article:published_time": (META, ""), "time datetime": ("", BYLINE)}


@pytest.mark.parametrize("kind", PAGES)
def test_an_imported_page_keeps_its_time_of_day(tmp_path: Path, kind: str) -> None:
    """An HTML page's published time (JSON-LD, article:published_time, <time datetime>) is kept, in UTC."""
    head, byline = PAGES[kind]
    html = PAGE.format(head=head, byline=byline)
    extracted = extract_article(html)
    assert extracted is not None
    assert extracted.published_at == HALF_PAST
    page = tmp_path / "page.html"
    page.write_text(html)
    [candidate] = read_path(page)
    assert candidate.article is not None
    assert datetime.fromisoformat(candidate.article["published_at"]) == HALF_PAST


def test_a_related_story_time_does_not_stand_for_the_page() -> None:
    """A time stated for another story (a sidebar's datePublished on another day) is not the page's."""
    sidebar = (
        '<aside><div itemscope itemtype="https://schema.org/NewsArticle"><a href="/b">AMD slips</a>'
        '<meta itemprop="datePublished" content="2026-01-20T16:00:31Z"></div></aside>'
    )
    html = PAGE.format(head='<meta name="date" content="2026-01-13">', byline="")
    html = html.replace("<body>", "<body>" + sidebar + '<time datetime="2026-01-13T00:30:00Z">')
    extracted = extract_article(html)
    assert extracted is not None
    assert extracted.published_at == HALF_PAST


RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>
<item><title>Intel beats</title><link>https://example.com/a</link><guid>a</guid>
<description>Intel Corp. (NASDAQ: INTC) rose.</description>
<pubDate>Tue, 13 Jan 2026 09:30:00 +0900</pubDate></item>
</channel></rss>"""
ATOM = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Wire</title>
<id>urn:wire</id><updated>2026-01-13T09:30:00+09:00</updated>
<entry><title>Intel beats</title><id>urn:a</id><link href="https://example.com/a"/><published>2026-01-13T09:30:00+09:00</published>
<updated>2026-01-13T09:30:00+09:00</updated><summary>Intel rose.</summary></entry></feed>"""


@pytest.mark.parametrize("document", [RSS, ATOM], ids=["rss", "atom"])
def test_feed_items_keep_their_instant(document: bytes) -> None:
    """RSS and Atom items keep the instant their feed gives, offset included."""
    [candidate] = parse_feed(document, "wire", "feed")
    assert candidate.article is not None
    assert datetime.fromisoformat(candidate.article["published_at"]) == HALF_PAST


@pytest.mark.parametrize(
    "record",
    [
        {"published_at": "2026-01-13T09:30:00+09:00"},
        {"pubDate": "Tue, 13 Jan 2026 09:30:00 +0900"},
        {"providerPublishTime": int(HALF_PAST.timestamp())},
    ],
)
def test_json_records_keep_their_instant(tmp_path: Path, record: dict[str, object]) -> None:
    """A JSON record's time (ISO with offset, RFC 822, Unix seconds) is published as the same UTC instant."""
    path = tmp_path / "a.json"
    path.write_text(json.dumps({**ARTICLE, **record}))
    [candidate] = read_path(path)
    article = parse_article(candidate.article, now=NOW, max_future=timedelta(0))
    assert article.published_at == HALF_PAST
    assert article.published_at.utcoffset() == timedelta(0)
