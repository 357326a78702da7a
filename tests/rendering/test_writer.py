"""The fragment writer on a real Redis: idempotent, revision-ordered, retraction-proof."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from newsroom.common.events import (
    ArticleContent,
    ArticleEnriched,
    ArticleRetracted,
    QuoteUpdated,
    TaggedTicker,
)
from newsroom.common.redis_client import connect
from newsroom.common.settings import DEFAULT_WATCHLIST
from newsroom.common.store import OWN, FragmentReader, NamespaceRetired, Pointers, SwitchRefused
from newsroom.rendering.applying import ArticleEvent
from newsroom.rendering.domain import Renderer
from newsroom.rendering.writer import FragmentWriter
from tests.cli.helpers import snapshot_namespace
from tests.conftest import RunningStack
from tests.fakes import enriched


@pytest.fixture
async def writer(infra: RunningStack) -> AsyncIterator[FragmentWriter]:
    redis = connect(infra.settings.redis_url)
    renderer = Renderer(watchlist=DEFAULT_WATCHLIST, delay_minutes=20)
    w = FragmentWriter(redis, f"test-{uuid.uuid4().hex}", renderer)
    await w.setup()
    yield w
    await redis.aclose()


def revision(n: int, headline: str) -> ArticleEnriched:
    base = enriched()
    fields = {**base.article.model_dump(), "revision": n, "headline": headline}
    article = ArticleContent.model_validate(fields)
    return base.model_copy(update={"article": article})


async def page_text(w: FragmentWriter, path: str) -> str:
    result = await FragmentReader(w.redis, w.namespace).page(path)
    assert result is not None
    return b"".join(result[1]).decode()


async def test_redelivery_writes_identical_bytes(writer: FragmentWriter) -> None:
    """Applying the same event twice leaves every fragment byte-identical."""
    await writer.article(revision(1, "First headline"))
    before = await snapshot_namespace(writer.redis, writer.namespace)
    assert await writer.article(revision(1, "First headline"))
    assert await snapshot_namespace(writer.redis, writer.namespace) == before


async def test_older_revision_never_overwrites_newer(writer: FragmentWriter) -> None:
    """Revision 3 arriving before revision 2 keeps the page at revision 3; revision 2 is skipped."""
    assert await writer.article(revision(3, "Third take"))
    assert not await writer.article(revision(2, "Second take"))
    text = await page_text(writer, "news/intel-falls-abc123")
    assert "Third take" in text
    assert "Second take" not in text


async def test_a_page_reads_back_with_its_own_pieces_marked(writer: FragmentWriter) -> None:
    """The reader names the page's own pieces with the OWN prefix and shared fragments as stored."""
    await writer.article(revision(1, "First headline"))
    result = await FragmentReader(writer.redis, writer.namespace).page("news/intel-falls-abc123")
    assert result is not None
    manifest, fragments = result
    own = [name for name in manifest if name.startswith(OWN)]
    assert own
    assert all(name.startswith(f"{OWN}art:abc123:1.1:") for name in own)
    assert "chip:NASDAQ:INTC" in manifest
    assert "First headline" in b"".join(fragments).decode()
    assert not [k async for k in writer.redis.scan_iter(match=f"{writer.namespace}:frag:art:*")]


async def test_retraction_is_final(writer: FragmentWriter) -> None:
    """After a retraction the page is gone, and a late revision does not bring it back."""
    await writer.article(revision(1, "Soon gone"))
    await writer.retract(ArticleRetracted(article_id="abc123", revision=2, slug="intel-falls-abc123"))
    assert not await writer.article(revision(5, "Zombie"))
    result = await FragmentReader(writer.redis, writer.namespace).page("news/intel-falls-abc123")
    assert result is not None
    assert result[0] == ["@gone"]
    home = await page_text(writer, "home")
    assert "Soon gone" not in home
    assert "Zombie" not in home


def story(
    article_id: str, n: int, headline: str, tickers: tuple[tuple[str, str, str], ...]
) -> ArticleEnriched:
    """Revision ``n`` of article ``article_id`` listing ``tickers``."""
    base = revision(n, headline)
    article = base.article.model_copy(update={"article_id": article_id, "slug": f"story-{article_id}"})
    listed = tuple(
        TaggedTicker(symbol=s, exchange=e, name=name or None, mentions=1, relevance=1.0)
        for s, e, name in tickers
    )
    return base.model_copy(update={"article": article, "tickers": listed})


async def test_a_batch_leaves_the_store_as_one_by_one_application_does(infra: RunningStack) -> None:
    """Revisions, stale redeliveries and retractions applied as one batch leave the same keys and bytes."""
    intc, amd = ("INTC", "NASDAQ", ""), ("AMD", "NASDAQ", "Advanced Micro Devices")
    cat = ("CAT", "NYSE", "Caterpillar")
    events: list[ArticleEvent] = [
        story("a1", 1, "First", (intc, amd)),
        story("b1", 1, "Doomed", (cat,)),
        story("a1", 2, "Second", (("INTC", "NASDAQ", "Intel"), amd)),  # a name for INTC turns up
        ArticleRetracted(article_id="b1", revision=2, slug="story-b1"),
        story("b1", 3, "Zombie", (cat,)),
        story("a1", 1, "Stale", (intc,)),
        story("c1", 1, "Plain", ()),
    ]
    redis = connect(infra.settings.redis_url)
    renderer = Renderer(watchlist=DEFAULT_WATCHLIST, delay_minutes=20)
    one_by_one = FragmentWriter(redis, f"test-{uuid.uuid4().hex}", renderer)
    batched = FragmentWriter(redis, f"test-{uuid.uuid4().hex}", renderer)
    try:
        for w in (one_by_one, batched):
            await w.setup()
        # the first article already shown, as a live renderer would have left it
        for w in (one_by_one, batched):
            await w.apply([story("a1", 1, "First", (intc,))])
        counts = [await one_by_one.apply([event]) for event in events]
        applied = await batched.apply(events)
        assert (applied.rendered, applied.skipped, applied.retracted) == (
            sum(c.rendered for c in counts),
            sum(c.skipped for c in counts),
            1,
        )
        assert (applied.rendered, applied.skipped) == (4, 2)
        expected = await snapshot_namespace(redis, one_by_one.namespace)
        assert await snapshot_namespace(redis, batched.namespace) == expected
        assert orjson.loads(expected["page:news/story-b1"]) == ["@gone"]
        assert b"Second" in expected["page:news/story-a1"]
        assert expected["instruments"][b"NASDAQ:AMD"] == b"Advanced Micro Devices"
        assert expected["instruments"][b"NASDAQ:INTC"] == b"Intel"  # named by the second revision
    finally:
        await redis.aclose()


async def test_a_namespace_retired_by_a_switch_is_never_written_again(infra: RunningStack) -> None:
    """Once the active pointer moves on (no rebuild filling it), a guarded writer refuses to write."""
    redis = connect(infra.settings.redis_url)
    pointers = Pointers(f"tv-{uuid.uuid4().hex[:8]}")
    old, new = f"{pointers.template_version}-old", f"{pointers.template_version}-new"
    renderer = Renderer(watchlist=DEFAULT_WATCHLIST, delay_minutes=20)
    try:
        await redis.set(pointers.shadow, new)
        await redis.set(pointers.active, old)
        writing_old = FragmentWriter(redis, old, renderer, guard=pointers)
        writing_new = FragmentWriter(redis, new, renderer, guard=pointers)
        assert await writing_old.article(revision(1, "Before the switch"))
        assert await writing_new.article(revision(1, "Before the switch"))

        await pointers.switch_to(redis, new)
        with pytest.raises(NamespaceRetired):
            await writing_old.article(revision(2, "After the switch"))
        assert await writing_new.article(revision(2, "After the switch"))

        assert "Before the switch" in await page_text(writing_old, "news/intel-falls-abc123")
        assert "After the switch" in await page_text(writing_new, "news/intel-falls-abc123")
    finally:
        async for key in redis.scan_iter(match=f"{pointers.template_version}*", count=1000):
            await redis.delete(key)
        await redis.delete(pointers.active, pointers.shadow)
        await redis.aclose()


async def test_a_newer_revision_written_meanwhile_is_not_overwritten(infra: RunningStack) -> None:
    """If another writer stores a newer revision between this writer's read and its write, this one yields."""
    redis = connect(infra.settings.redis_url)
    namespace = f"test-{uuid.uuid4().hex}"
    renderer = Renderer(watchlist=DEFAULT_WATCHLIST, delay_minutes=20)
    other = FragmentWriter(redis, namespace, renderer)  # e.g. the live renderer, beside a rebuild
    interleaved: list[bool] = []

    class Racing(FragmentWriter):
        async def _quotes(self, iids: list[str], reader: Any = None) -> dict[str, Any]:
            if not interleaved:  # after this writer's read, before its write
                interleaved.append(await other.article(revision(3, "Third take, written meanwhile")))
            return await super()._quotes(iids, reader)

    try:
        applied = await Racing(redis, namespace, renderer).apply([revision(1, "First take")])

        assert interleaved == [True]
        assert (applied.rendered, applied.skipped) == (0, 1)  # decided again: its revision is stale
        assert "Third take, written meanwhile" in await page_text(other, "news/intel-falls-abc123")
    finally:
        async for key in redis.scan_iter(match=f"{namespace}:*", count=1000):
            await redis.delete(key)
        await redis.aclose()


def quote(price: str, minute: int) -> QuoteUpdated:
    return QuoteUpdated(
        symbol="INTC",
        exchange="NASDAQ",
        price=Decimal(price),
        as_of=datetime(2026, 1, 13, 15, minute, tzinfo=UTC),
    )


async def test_a_newer_quote_written_meanwhile_is_not_overwritten(infra: RunningStack) -> None:
    """If another writer stores a newer quote between this writer's read and its write, this one yields."""
    redis = connect(infra.settings.redis_url)
    namespace = f"test-{uuid.uuid4().hex}"
    renderer = Renderer(watchlist=DEFAULT_WATCHLIST, delay_minutes=20)
    other = FragmentWriter(redis, namespace, renderer)
    interleaved: list[int] = []

    class Racing(FragmentWriter):
        async def _quotes(self, iids: list[str], reader: Any = None) -> dict[str, Any]:
            stored = await super()._quotes(iids, reader)
            if not interleaved:  # after this writer's read, before its write
                interleaved.append(await other.quotes([quote("30.50", 45)]))
            return stored

    try:
        await redis.hset(
            other.keys.instruments, "NASDAQ:INTC", "Intel"
        )  # its page exists: only quotes change
        changed = await Racing(redis, namespace, renderer).quotes([quote("29.00", 30)])

        assert interleaved == [1]
        assert changed == 0  # decided again: its quote is older than the stored one
        stored = await redis.get(other.keys.quote("NASDAQ:INTC"))
        assert stored is not None
        assert QuoteUpdated.model_validate_json(stored).price == Decimal("30.50")
    finally:
        async for key in redis.scan_iter(match=f"{namespace}:*", count=1000):
            await redis.delete(key)
        await redis.aclose()


async def test_a_rebuild_switches_only_from_the_namespace_it_replaced(infra: RunningStack) -> None:
    """The switch is refused when readers moved on or the shadow names another rebuild; else it happens."""
    redis = connect(infra.settings.redis_url)
    pointers = Pointers(f"tv-{uuid.uuid4().hex[:8]}")
    try:
        await redis.mset({pointers.active: "blue", pointers.shadow: "green"})
        with pytest.raises(SwitchRefused):
            await pointers.switch_to(redis, "green", replacing="red")  # readers are not on red
        with pytest.raises(SwitchRefused):
            await pointers.switch_to(redis, "purple", replacing="blue")  # purple is not the shadow
        assert await redis.mget([pointers.active, pointers.shadow]) == [b"blue", b"green"]

        await pointers.switch_to(redis, "green", replacing="blue")
        assert await redis.mget([pointers.active, pointers.shadow]) == [b"green", None]
    finally:
        await redis.delete(pointers.active, pointers.shadow)
        await redis.aclose()
