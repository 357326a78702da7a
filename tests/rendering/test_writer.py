"""The fragment writer on a real Redis: idempotent, revision-ordered, retraction-proof."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from newsroom.common.events import ArticleContent, ArticleEnriched, ArticleRetracted
from newsroom.common.settings import DEFAULT_WATCHLIST
from newsroom.common.store import FragmentReader
from newsroom.rendering.domain import Renderer
from newsroom.rendering.service import FragmentWriter
from tests.conftest import RunningStack
from tests.rendering.test_domain import enriched


@pytest.fixture
async def writer(infra: RunningStack) -> AsyncIterator[FragmentWriter]:
    redis = aioredis.Redis.from_url(infra.settings.redis_url)
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


async def snapshot(w: FragmentWriter) -> dict[bytes, bytes]:
    keys = [k async for k in w.redis.scan_iter(match=f"{w.namespace}:frag:*")]
    values = await w.redis.mget(keys)
    return dict(zip(keys, values, strict=True))


async def page_text(w: FragmentWriter, path: str) -> str:
    result = await FragmentReader(w.redis, w.namespace).page(path)
    assert result is not None
    return b"".join(result[1]).decode()


async def test_redelivery_writes_identical_bytes(writer: FragmentWriter) -> None:
    """Applying the same event twice leaves every fragment byte-identical."""
    await writer.article(revision(1, "First headline"))
    before = await snapshot(writer)
    assert await writer.article(revision(1, "First headline"))
    assert await snapshot(writer) == before


async def test_older_revision_never_overwrites_newer(writer: FragmentWriter) -> None:
    """Revision 3 arriving before revision 2 keeps the page at revision 3; revision 2 is skipped."""
    assert await writer.article(revision(3, "Third take"))
    assert not await writer.article(revision(2, "Second take"))
    text = await page_text(writer, "news/intel-falls-abc123")
    assert "Third take" in text
    assert "Second take" not in text


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
