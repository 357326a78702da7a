"""The live renderer on the real broker and Redis: a burst of article events, a misplaced one among them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import partial

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from faststream.exceptions import NackMessage
from redis.exceptions import ConnectionError as RedisConnectionError

from newsroom.common import messaging
from newsroom.common.events import ArticleContent, ArticleEnriched, ArticleSubmitted, encode, new_envelope
from newsroom.common.reading import read_topic
from newsroom.common.topics import DEAD_LETTERS, ENRICHED
from newsroom.rendering import service
from tests.conftest import RunningStack, apoll, poll


def content(tag: str, i: int) -> dict[str, object]:
    return {
        "article_id": f"{tag}{i}",
        "revision": 1,
        "headline": f"Burst story {i}",
        "body_html": f"<p>Story {i} of a burst.</p>",
        "source": "test",
        "published_at": datetime.now(UTC),
        "content_hash": f"{tag}{i}",
        "slug": f"burst-{tag}-{i}",
    }


async def dead_letter_reasons(stack: RunningStack, key: bytes) -> list[dict[str, str]]:
    found = []
    async for batch in read_topic(stack.settings, DEAD_LETTERS.name):
        found += [{k: v.decode() for k, v in rec.headers} for rec in batch if rec.key == key]
    return found


async def test_a_burst_is_rendered_and_a_misplaced_event_in_it_is_dead_lettered_alone(
    stack: RunningStack,
) -> None:
    """Twenty articles sent in one burst are all served; an event that does not belong there is parked."""
    tag = uuid.uuid4().hex[:10]
    events = [
        ArticleEnriched(
            article=ArticleContent(**content(tag, i)), tagger_version="test", mentions=(), tickers=()
        )
        for i in range(20)
    ]
    misplaced = ArticleSubmitted(**content(tag, 99))
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.settings.bootstrap_servers, linger_ms=100, enable_idempotence=False
    )
    await producer.start()
    try:
        for i, event in enumerate(events):
            await producer.send(
                ENRICHED.name, encode(new_envelope(event, producer="test")), key=f"{tag}{i}".encode()
            )
            if i == 10:
                await producer.send(
                    ENRICHED.name, encode(new_envelope(misplaced, producer="test")), key=f"{tag}99".encode()
                )
        await producer.flush()
    finally:
        await producer.stop()

    for i in range(20):
        poll(partial(httpx.get, f"{stack.web}/news/burst-{tag}-{i}"), lambda r: r.status_code == 200)
    letters = await apoll(
        lambda: dead_letter_reasons(stack, f"{tag}99".encode()), lambda found: len(found) == 1
    )
    assert letters[0]["dlq-service"] == "rendering"
    assert letters[0]["dlq-reason"] == ENRICHED.misplaced("ArticleSubmitted")
    assert httpx.get(f"{stack.web}/news/burst-{tag}-99").status_code == 404
    metrics = httpx.get(
        f"http://127.0.0.1:{stack.settings.rendering_port}/metrics", follow_redirects=True
    ).text
    # parked when decoded, so the burst around it was still rendered in one go, not one by one
    assert 'newsroom_batch_fallbacks_total{service="rendering"}' not in metrics


async def test_a_store_outage_delivers_the_batch_again_instead_of_parking_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Redis connection error while rendering becomes a nack (delivered again), not a dead letter."""
    monkeypatch.setattr(messaging, "REDELIVERY_PAUSE_S", 0.0)
    with pytest.raises(NackMessage):
        async with service.redelivered_while_the_store_is_down():
            raise RedisConnectionError("Connection refused")
    with pytest.raises(ValueError, match="not a store problem"):
        async with service.redelivered_while_the_store_is_down():
            raise ValueError("not a store problem")
