"""A record whose key or headers cannot be decoded is dead-lettered alone; its batch neighbours go on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from newsroom.common.events import ArticleSubmitted, Envelope, encode, new_envelope
from newsroom.common.reading import read_topic
from newsroom.common.topics import ARTICLES, DEAD_LETTERS, SNAPSHOTS, TICKS
from tests.conftest import RunningStack, apoll, poll

BAD_HEADER = [("x-a", b"\xff\xfe")]
ProducedRecord = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers


def submitted(tag: str, n: int) -> Envelope:
    article_id = f"{tag}-{n}"
    return new_envelope(
        ArticleSubmitted(
            article_id=article_id, revision=1, headline=f"Mixed batch {n}", body_html=f"<p>Story {n}.</p>",
            source="test", published_at=datetime(2026, 1, 5, tzinfo=UTC), content_hash=article_id,
            slug=f"mixed-batch-{article_id}",
        ),
        producer="test",
    )  # fmt: skip


async def one_batch(stack: RunningStack, topic: str, records: list[ProducedRecord]) -> None:
    """Produce ``records`` (key, value, headers) as one producer batch into partition 0 of ``topic``."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers, linger_ms=50)
    await producer.start()
    try:
        batch = producer.create_batch()
        for key, value, headers in records:
            assert batch.append(key=key, value=value, timestamp=None, headers=headers) is not None
        await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


async def dead_letters(stack: RunningStack, key: bytes) -> list[dict[str, str]]:
    """The headers of every dead letter under ``key`` (decoded leniently: they are ours to read)."""
    found = []
    async for batch in read_topic(stack.settings, DEAD_LETTERS.name):
        for rec in batch:
            if rec.key == key:
                found.append({k: (v or b"").decode("utf-8", "replace") for k, v in rec.headers})
    return found


@pytest.mark.parametrize(
    ("bad_key", "bad_headers", "reason"),
    [
        (b"bad-header-", BAD_HEADER, "header 'x-a' is not valid UTF-8"),
        (b"\xff\xfebad-key-", [], "key is not valid UTF-8"),
    ],
    ids=["header", "key"],
)
async def test_undecodable_record_is_parked_alone_and_its_batch_is_published(
    stack: RunningStack, bad_key: bytes, bad_headers: list[tuple[str, bytes]], reason: str
) -> None:
    """One undecodable record among 20 valid articles in one batch: the 20 are served, it is dead-lettered."""
    tag = uuid.uuid4().hex[:10]
    good = [(f"{tag}-{n}", submitted(tag, n)) for n in range(20)]
    key = bad_key + tag.encode()
    records: list[ProducedRecord] = [(article_id.encode(), encode(e), []) for article_id, e in good]
    records.insert(10, (key, encode(submitted(tag, 99)), bad_headers))
    await one_batch(stack, ARTICLES.name, records)

    for article_id, _ in good:
        poll(
            lambda a=article_id: httpx.get(f"{stack.web}/news/mixed-batch-{a}"),  # type: ignore[misc]
            lambda resp: resp.status_code == 200,
        )
    letters = await apoll(lambda: dead_letters(stack, key), lambda found: len(found) >= 1)
    assert len(letters) == 1, letters
    assert letters[0]["dlq-service"] == "enrichment"
    assert letters[0]["dlq-topic"] == ARTICLES.name
    assert letters[0]["dlq-reason"].startswith(reason), letters[0]


@pytest.mark.parametrize(("topic", "service"), [(TICKS, "quotes"), (SNAPSHOTS, "rendering")])
async def test_undecodable_header_is_parked_on_every_input_topic(
    stack: RunningStack, topic: object, service: str
) -> None:
    """A record with a non-UTF-8 header on any other topic a service reads is parked with its reason."""
    name: str = topic.name  # type: ignore[attr-defined]
    key = f"bad-header-{uuid.uuid4().hex}".encode()
    await one_batch(stack, name, [(key, b'{"not": "an event"}', BAD_HEADER)])

    letters = await apoll(lambda: dead_letters(stack, key), lambda found: len(found) >= 1)
    assert len(letters) == 1, letters
    assert letters[0]["dlq-service"] == service
    assert letters[0]["dlq-topic"] == name
    assert letters[0]["dlq-reason"].startswith("header 'x-a' is not valid UTF-8"), letters[0]
