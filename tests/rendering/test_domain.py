"""Rendering without I/O: slots, links and determinism."""

from __future__ import annotations

from datetime import UTC, datetime

from newsroom.common.events import TaggedTicker
from newsroom.common.settings import DEFAULT_WATCHLIST
from newsroom.rendering.domain import LAYOUT_FOOT, LAYOUT_HEAD, Renderer, link_mentions
from tests.fakes import ENRICHED_BODY as BODY
from tests.fakes import enriched


def test_mentions_are_linked_and_the_first_gets_a_chip_slot() -> None:
    """Every mention links to its quote page, even inside inline markup; one chip per instrument."""
    out = link_mentions(BODY, enriched().mentions)
    assert out.count('href="/quote/NASDAQ/INTC"') == 3
    assert '<b><a class="ticker"' in out  # a mention inside inline markup is linked within it
    assert out.count("\x00chip:NASDAQ:INTC\x00") == 1
    assert "INTC</a>)\x00chip:NASDAQ:INTC\x00" in out  # after the explicit form, not inside it
    assert 'href="/quote/INDEX/SPX"' in out
    assert "chip:INDEX:SPX" not in out


def test_article_page_is_split_into_own_fragments_and_shared_slots() -> None:
    """The manifest interleaves the article's own fragments with shared chips, rows and the latest list."""
    page = Renderer(watchlist=DEFAULT_WATCHLIST, delay_minutes=20).article(enriched())
    assert page.path == "news/intel-falls-abc123"
    assert page.manifest[0] == LAYOUT_HEAD
    assert page.manifest[-1] == LAYOUT_FOOT
    assert "chip:NASDAQ:INTC" in page.manifest
    assert "qrow:NASDAQ:INTC" in page.manifest  # "Mentioned in this article"
    assert [m for m in page.manifest if m.startswith("qrow:")][-10:] == [
        f"qrow:{w}" for w in DEFAULT_WATCHLIST
    ]
    assert "@z latest 6 abc123" in page.manifest
    own = "".join(page.fragments.values())
    assert "Intel &lt;falls&gt;" in own  # autoescaped headline
    assert all(name.startswith("art:abc123:2.1:") for name in page.fragments)


def test_rendering_is_deterministic() -> None:
    """The same event renders to the same bytes, so re-delivery and rebuilds rewrite nothing new."""
    a = Renderer(watchlist=DEFAULT_WATCHLIST, delay_minutes=20).article(enriched())
    b = Renderer(watchlist=DEFAULT_WATCHLIST, delay_minutes=20).article(enriched())
    assert a == b


def test_list_item_links_every_instrument_and_slots_use_raw_ids() -> None:
    """The item links every tagged instrument (escaped); row slots name the ids the rows are stored under."""
    base = enriched()
    tickers = (
        TaggedTicker(symbol="INTC", exchange="NASDAQ", mentions=3, relevance=1.0),
        TaggedTicker(symbol="M&T", exchange="NYSE", mentions=1, relevance=0.5),
        TaggedTicker(symbol="SPX", exchange="INDEX", kind="index", mentions=1, relevance=0.2),
    )
    page = Renderer(watchlist=DEFAULT_WATCHLIST, delay_minutes=20).article(
        base.model_copy(update={"tickers": tickers})
    )
    assert '<a class="tk" href="/quote/NYSE/M&amp;T">M&amp;T</a>' in page.item
    assert page.item.count('class="tk"') == 3  # indices too: the item lists what the article is about
    assert "Intel &lt;falls&gt;" in page.item
    assert "qrow:NYSE:M&T" in page.manifest
    assert "qrow:INDEX:SPX" not in page.manifest  # no quote row for an index


def test_publication_times_read_as_strftime_writes_them() -> None:
    """Article dates name the month in English, zero-padded, as strftime does in the C locale."""
    for when in [datetime(2026, month, month * 2, month, month * 4, tzinfo=UTC) for month in range(1, 13)]:
        base = enriched()
        article = base.article.model_copy(update={"published_at": when})
        page = Renderer(watchlist=(), delay_minutes=20).article(base.model_copy(update={"article": article}))
        html = "".join(page.fragments.values()) + page.item
        assert when.strftime("%B %d, %Y %H:%M UTC") in html
        assert when.strftime("%b %d, %Y %H:%M UTC") in page.item
