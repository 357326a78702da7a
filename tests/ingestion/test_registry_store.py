"""The registry stores, in memory and on real Redis: claims all or none, revisions never moved back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from newsroom.common.events import ArticleRetracted, ArticleRevised, ArticleSubmitted
from newsroom.common.redis_client import connect
from newsroom.ingestion.registry import MemoryRegistryStore, RedisRegistryStore, RegistryStore
from tests.conftest import RunningStack


def submitted(revision: int, hash_: str) -> ArticleSubmitted | ArticleRevised:
    """Revision ``revision`` of article ``store-test`` whose text hashes to ``hash_``."""
    model = ArticleSubmitted if revision == 1 else ArticleRevised
    return model(
        article_id="store-test", revision=revision, headline="H", body_html="<p>B</p>", source="store",
        source_id="item-1", url="https://example.com/a?utm_source=x", content_hash=hash_, slug="h-store-te",
        published_at=datetime(2026, 1, 5, tzinfo=UTC),
    )  # fmt: skip


@pytest.fixture
async def memory() -> MemoryRegistryStore:
    """A store in memory."""
    return MemoryRegistryStore()


@pytest.fixture
async def redis_store(infra: RunningStack) -> AsyncIterator[RedisRegistryStore]:
    """A store on the session's Redis, in a database of its own, emptied first."""
    url = infra.settings.redis_url.rsplit("/", 1)[0] + "/5"
    store = RedisRegistryStore(connect(url))
    await store.redis.flushdb()
    yield store
    await store.redis.aclose()


@pytest.fixture(params=["memory", pytest.param("redis_store", marks=pytest.mark.stack)])
def store(request: pytest.FixtureRequest) -> RegistryStore:
    """Each store in turn."""
    found: RegistryStore = request.getfixturevalue(request.param)
    return found


async def test_claims_are_all_or_none_and_released_by_their_token(store: RegistryStore) -> None:
    """A claim that overlaps another token's takes none of its names; a release by another token
    frees nothing; the holder's release lets the other claim."""
    assert await store.claim(["a", "b"], "t1", 10_000)
    assert not await store.claim(["b", "c"], "t2", 10_000)
    assert await store.claim(["c"], "t3", 10_000)  # c was left unclaimed by t2's refused claim
    await store.release(["a", "b"], "t2")
    assert not await store.claim(["a"], "t2", 10_000)
    await store.release(["a", "b"], "t1")
    assert await store.claim(["a", "b"], "t2", 10_000)


async def test_an_older_revision_never_replaces_a_newer_one(store: RegistryStore) -> None:
    """Applying revision 2 and then revision 1 (the consumer behind the write-through) leaves revision 2
    and its text; a retraction marks the article; what it is found by is its URL, source id and texts."""
    await store.apply([submitted(1, "1" * 64), submitted(2, "2" * 64)])
    await store.apply([submitted(1, "1" * 64)])
    view, _ = await store.read([("url", "https://example.com/a"), ("hash", "1" * 64)], ())
    assert (view.by_id["store-test"].revision, view.by_id["store-test"].content_hash) == (2, "2" * 64)
    assert view.by_url == {"https://example.com/a": "store-test"}
    assert view.by_hash == {"1" * 64: "store-test"}  # an older version's text still finds it
    await store.apply([ArticleRetracted(article_id="store-test", revision=3, reason="r", slug="h-store-te")])
    view, _ = await store.read([], ["store-test"])
    assert view.by_id["store-test"].retracted
    assert view.by_id["store-test"].revision == 3


async def test_the_marker_says_whether_the_store_is_current(store: RegistryStore) -> None:
    """A store is current once marked, and no longer after it is cleared, its articles gone."""
    await store.apply([submitted(1, "1" * 64)])
    await store.mark_current()
    assert await store.current()
    await store.clear()
    view, current = await store.read([], ["store-test"])
    assert (current, view.by_id) == (False, {})
