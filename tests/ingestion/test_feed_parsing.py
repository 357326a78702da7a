"""Feed parsing, configuration and backoff, without I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsroom.ingestion.client import IngestionClient
from newsroom.ingestion.feeds import (
    FeedConfig,
    FeedError,
    FeedsConfig,
    Poller,
    StateFile,
    load_config,
    parse_feed,
)

RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Wire</title>
<item><title>Apple &amp; Nvidia rally</title><link>https://example.com/a</link><guid>a-1</guid>
<description>&lt;p onclick="x()"&gt;Shares rose.&lt;/p&gt;</description>
<pubDate>Sun, 08 Mar 2026 07:23:46 -0400</pubDate>
<category type="symbol">AAPL</category><category domain="https://example.com/symbols">NVDA</category>
<category type="author">Someone</category><category domain="https://example.com/topics">Tech</category></item>
<item><title>No description</title><link>https://example.com/b</link><guid>%s</guid></item>
</channel></rss>""" % (b"g" * 250)

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom wire</title>
<entry><title>Intel results</title><id>urn:x:1</id><link href="https://example.com/i"/>
<updated>2026-01-13T06:00:00Z</updated><summary>Intel Corp. (NASDAQ: INTC) beat.</summary>
<category scheme="ticker" term="INTC"/></entry></feed>"""

SITEMAP = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
<url><loc>https://example.com/s</loc><news:news><news:publication><news:name>Wire</news:name></news:publication>
<news:publication_date>2026-03-15T00:48:24.900Z</news:publication_date><news:title>Oil jumps</news:title>
<news:stock_tickers>NYSE:RIG, LON:BP/</news:stock_tickers></news:news></url></urlset>"""


def test_rss_items_keep_symbol_categories_as_ticker_hints() -> None:
    """Categories typed or scoped as symbols become tickers; authors and topics do not."""
    first, second = parse_feed(RSS, "wire", "test")
    assert first.article is not None
    assert first.article["tickers"] == ["AAPL", "NVDA"]
    assert first.article["headline"] == "Apple & Nvidia rally"
    assert first.article["published_at"] == "2026-03-08T11:23:46+00:00"
    assert first.article["body_format"] == "html"
    assert second.article is not None
    assert second.article["body"] == "No description"  # the headline stands in for a missing summary
    assert second.article["id"].startswith("sha256:")  # guids over the API's 200 characters are digested


def test_atom_entries_and_news_sitemaps_are_read() -> None:
    """Atom categories with a ticker scheme and news:stock_tickers both become ticker hints."""
    (entry,) = parse_feed(ATOM, "atom", "test")
    assert entry.article is not None
    assert (entry.article["id"], entry.article["tickers"]) == ("urn:x:1", ["INTC"])
    (url,) = parse_feed(SITEMAP, "", "test")
    assert url.article is not None
    assert url.article["tickers"] == ["NYSE:RIG", "LON:BP"]
    assert (url.article["headline"], url.article["source"]) == ("Oil jumps", "Wire")


def test_sitemap_without_a_publication_name_is_sourced_by_its_host() -> None:
    """A news sitemap naming no publication, read without a source, takes its items' host as the source."""
    unnamed = SITEMAP.replace(b"<news:name>Wire</news:name>", b"")
    (url,) = parse_feed(unnamed, "", "test")
    assert url.article is not None
    assert url.article["source"] == "example.com"


def test_a_sitemap_url_too_broken_to_split_does_not_fail_the_sitemap() -> None:
    """An item whose location cannot even be split still reads, with a generic source."""
    broken = SITEMAP.replace(b"<news:name>Wire</news:name>", b"").replace(
        b"https://example.com/s", b"https://[bad/s"
    )
    (url,) = parse_feed(broken, "", "test")
    assert url.article is not None
    assert url.article["source"] == "sitemap"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (RSS[: len(RSS) // 2], "malformed XML"),
        (b"<html><body>hello</body></html>", "not an RSS or Atom feed"),
        (b"\x00", "malformed XML"),  # not even the recovering parser finds a document
    ],
)
def test_broken_documents_are_refused_whole(data: bytes, reason: str) -> None:
    """A truncated feed or a non-feed is an error, never a partial list of items."""
    with pytest.raises(FeedError, match=reason):
        parse_feed(data, "wire", "test")


def test_config_needs_feeds_with_urls(tmp_path: Path) -> None:
    """The YAML file lists feeds; a missing url or an empty list is refused with the reason."""
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "interval: 60\nfeeds:\n  - url: https://example.com/rss\n    name: ex\n  - url: https://b.example/x\n"
    )
    config = load_config(path)
    assert config.feeds == (
        FeedConfig("https://example.com/rss", "ex", 60.0),
        FeedConfig("https://b.example/x", "b.example", 60.0),
    )
    path.write_text("feeds:\n  - name: nourl\n")
    with pytest.raises(ValueError, match="needs a 'url'"):
        load_config(path)


async def test_failures_back_off_exponentially_up_to_the_cap() -> None:
    """After n failures the next poll waits retry_base * 2**(n-1) (with jitter), never more than the cap."""
    feed = FeedConfig("https://example.com/rss", "ex", 300.0)
    state = StateFile(None)
    async with IngestionClient("http://127.0.0.1:9", "k", max_bytes=1000) as client:
        poller = Poller(FeedsConfig((feed,), retry_base=2.0, max_backoff=10.0), client, state, client.http)
        assert poller.delay(feed) == 300.0
        waits = []
        for failures in (1, 2, 3, 4):
            state.of(feed.url).failures = failures
            waits.append(poller.delay(feed))
    assert 1.8 <= waits[0] <= 2.2
    assert 3.6 <= waits[1] <= 4.4
    assert 7.2 <= waits[2] <= 8.8
    assert 9.0 <= waits[3] <= 11.0
