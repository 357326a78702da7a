"""A batch's output that the broker does not take: delivered again, or parked when it can never go."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError
from faststream.exceptions import NackMessage

from newsroom.common import messaging
from newsroom.common.events import MAX_EVENT_BYTES, Envelope, decode, encode, new_envelope
from newsroom.common.messaging import EventTooLarge, Outgoing, Publisher, make_broker, process_batch
from newsroom.common.reading import read_topic
from newsroom.common.records import Record, batch_subscription
from newsroom.common.topics import ARTICLES, DEAD_LETTERS, ENRICHED
from tests.conftest import RunningStack, apoll, publish_and_wait
from tests.fakes import FailingBroker, new_article, submit_too_rich, submitted


def record_of(envelope: Envelope, offset: int = 0) -> Record:
    value = encode(envelope)
    return Record(ARTICLES.name, 0, offset, 0, "k", value, (), envelope, None)


async def test_publish_sends_nothing_when_one_event_is_too_large() -> None:
    """A burst with one event over the size limit is refused whole, before anything is sent."""
    sent: list[bytes] = []

    class Recording:
        async def publish(self, value: bytes, *args: Any, **kwargs: Any) -> Any:
            sent.append(value)
            return asyncio.sleep(0)

    publisher = Publisher(Recording(), "test")  # type: ignore[arg-type]  # records what it is given
    small = (ENRICHED, "a", submitted("a", "<p>small</p>"))
    large = (ENRICHED, "b", submitted("b", "<p>" + "x" * MAX_EVENT_BYTES + "</p>"))
    with pytest.raises(EventTooLarge, match=r"ArticleSubmitted for 'b' is .* bytes encoded"):
        await publisher.publish([small, large])
    assert sent == []
    assert await publisher.publish([small]) == 1
    assert len(sent) == 1


async def test_batch_whose_output_fails_is_delivered_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the broker does not take a batch's output, the batch is nacked (delivered again), not acked."""
    monkeypatch.setattr(messaging, "REDELIVERY_PAUSE_S", 0.0)
    publisher = Publisher(FailingBroker(), "test")  # type: ignore[arg-type]  # fails like a broker that is down

    async def handle(record: Record, envelope: Envelope) -> list[Outgoing]:
        return [(ENRICHED, "k", envelope)]

    with pytest.raises(NackMessage):
        await process_batch([record_of(submitted("a", "<p>a</p>"))], handle, publisher)


async def test_output_failure_redelivers_over_the_real_broker(infra: RunningStack) -> None:
    """A batch whose output failed once is handled again, its output published, and only then committed."""
    key = f"redeliver-{uuid.uuid4().hex}"
    group = f"test-redeliver-{uuid.uuid4().hex[:8]}"
    broker = make_broker("test-redeliver", infra.settings)
    publisher = Publisher(broker, "test-redeliver")
    real_publish = publisher.publish
    attempts: list[int] = []

    async def failing_once(items: Any) -> int:
        if len(attempts) == 1:
            raise KafkaConnectionError("the broker is unreachable")
        return await real_publish(items)

    publisher.publish = failing_once  # type: ignore[method-assign]  # the first output fails

    async def handle(record: Record, envelope: Envelope) -> list[Outgoing]:
        attempts.append(record.offset)
        return [(ENRICHED, key, new_envelope(envelope.data, producer="test-redeliver"))]

    @broker.subscriber(ARTICLES.name, **batch_subscription(infra.settings, group))
    async def on_articles(records: list[Record]) -> None:
        # only this test's record: the others (other tests') are not this consumer's to dead-letter
        await process_batch([r for r in records if r.key == key], handle, publisher)

    producer = AIOKafkaProducer(bootstrap_servers=infra.settings.bootstrap_servers)
    await producer.start()
    try:
        value = encode(submitted(key, "<p>x</p>"))
        sent = await producer.send_and_wait(ARTICLES.name, value, key=key.encode())
    finally:
        await producer.stop()
    await broker.start()
    try:
        # (the enrichment service, when running, publishes its own output for this article too)
        await apoll(lambda: _outputs(infra, key, producer="test-redeliver"), lambda found: len(found) >= 1)
        assert attempts[:2] == [sent.offset, sent.offset]  # handled, its output failed, handled again
        tp = TopicPartition(ARTICLES.name, sent.partition)
        committed = await apoll(lambda: _committed(infra, group, tp), lambda c: (c or 0) > sent.offset)
        assert committed is not None
        assert committed > sent.offset
    finally:
        await broker.stop()


async def test_too_large_output_is_dead_lettered_and_the_consumer_moves_on(stack: RunningStack) -> None:
    """An article whose enriched event no broker takes is parked with the reason; the next one renders."""
    key = await submit_too_rich(stack)

    letters = await apoll(lambda: _dead_letters(stack, key), lambda found: len(found) >= 1)
    assert letters[0]["dlq-service"] == "enrichment"
    assert letters[0]["dlq-reason"].startswith(f"EventTooLarge: ArticleEnriched for '{key}' is ")
    assert await _outputs(stack, key) == []

    publish_and_wait(stack, new_article())


async def _outputs(stack: RunningStack, key: str, producer: str | None = None) -> list[Envelope]:
    found = []
    async for batch in read_topic(stack.settings, ENRICHED.name):
        found += [decode(rec.value) for rec in batch if rec.key == key.encode()]
    return [e for e in found if producer is None or e.producer == producer]


async def _dead_letters(stack: RunningStack, key: str) -> list[dict[str, str]]:
    found = []
    async for batch in read_topic(stack.settings, DEAD_LETTERS.name):
        found += [{k: v.decode() for k, v in rec.headers} for rec in batch if rec.key == key.encode()]
    return found


async def _committed(stack: RunningStack, group: str, tp: TopicPartition) -> int | None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.settings.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return await consumer.committed(tp)
    finally:
        await consumer.stop()
