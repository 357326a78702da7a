"""Bad records go to the dead-letter topic with a reason, and the consumer moves on."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer

from newsroom.common.reading import read_topic
from newsroom.common.topics import ARTICLES, DEAD_LETTERS
from tests.conftest import RunningStack, apoll, publish_and_wait
from tests.fakes import new_article


async def _dead_letters(stack: RunningStack, key: bytes) -> list[dict[str, str]]:
    found = []
    async for batch in read_topic(stack.settings, DEAD_LETTERS.name):
        for rec in batch:
            if rec.key == key:
                found.append({k: v.decode() for k, v in rec.headers})
    return found


async def test_poison_article_event_is_dead_lettered_and_consumer_continues(stack: RunningStack) -> None:
    """Garbage on the articles topic lands in the DLQ with its reason; the next article still renders."""
    key = f"poison-{uuid.uuid4().hex}".encode()
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(ARTICLES.name, b'{"type": "ArticleSubmitted", "version": 2}', key=key)
        await producer.send_and_wait(ARTICLES.name, b"\xff not json", key=key)
    finally:
        await producer.stop()

    letters = await apoll(lambda: _dead_letters(stack, key), lambda found: len(found) >= 2)
    assert len(letters) == 2, letters
    reasons = sorted(h["dlq-reason"] for h in letters)
    assert reasons[0].startswith("event has no data object")
    assert reasons[1].startswith("not JSON")
    assert {h["dlq-service"] for h in letters} == {"enrichment"}
    assert {h["dlq-topic"] for h in letters} == {ARTICLES.name}

    publish_and_wait(stack, new_article())
