"""A record whose event type its topic does not declare is dead-lettered alone, with that reason."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaRouter, TestKafkaBroker

from newsroom.common import deadletters
from newsroom.common.events import ArticleRetracted, Envelope, QuoteUpdated, encode, new_envelope
from newsroom.common.messaging import Outgoing, Publisher, make_broker, process_batch
from newsroom.common.reading import decoded_payloads
from newsroom.common.records import Record, batch_subscription
from newsroom.common.settings import Settings
from newsroom.common.topics import ALL_TOPICS, ARTICLES, DEAD_LETTERS, ENRICHED, Topic


def retraction() -> Envelope:
    return new_envelope(ArticleRetracted(article_id="a1", revision=2, slug="a-1"), producer="test")


def quote() -> Envelope:
    return new_envelope(
        QuoteUpdated(symbol="INTC", exchange="NASDAQ", price=Decimal("20.5"), as_of=datetime.now(UTC)),
        producer="test",
    )


@pytest.mark.parametrize("topic", [t for t in ALL_TOPICS if t.events], ids=lambda t: t.name)
def test_every_declared_topic_names_what_does_not_belong_on_it(topic: Topic) -> None:
    """Each topic admits exactly the event types it declares and names the others as misplaced."""
    assert all(topic.misplaced(kind) is None for kind in topic.events)
    reason = topic.misplaced("SomethingElse")
    assert reason is not None
    assert topic.name in reason
    assert "SomethingElse" in reason


def test_the_dead_letter_topic_holds_any_kind() -> None:
    """The dead-letter topic declares no events, so nothing on it is misplaced."""
    assert DEAD_LETTERS.misplaced("QuoteUpdated") is None


async def test_a_misplaced_event_is_dead_lettered_alone_and_its_neighbours_pass() -> None:
    """A quote snapshot on the articles topic never reaches the handler; the article events around it do."""
    settings = Settings()
    broker = make_broker("test", settings)
    publisher = Publisher(broker, "test", 5)
    router = KafkaRouter()
    handled: list[str] = []
    letters: list[tuple[str | None, str | None]] = []

    async def handle(record: Record, envelope: Envelope) -> list[Outgoing]:
        handled.append(envelope.type)
        return [(ENRICHED, record.key or "", envelope)]

    @router.subscriber(ARTICLES.name, **batch_subscription(settings, "misplaced-test"))
    async def on_articles(records: list[Record]) -> None:
        await process_batch(records, handle, publisher)

    @router.subscriber(DEAD_LETTERS.name, **batch_subscription(settings, "misplaced-letters"))
    async def on_letters(records: list[Record]) -> None:
        letters.extend(
            (r.header(deadletters.TOPIC) or "", r.header(deadletters.REASON) or "") for r in records
        )

    broker.include_router(router)
    async with TestKafkaBroker(broker) as br:
        for envelope in (retraction(), quote(), retraction()):
            await br.publish(
                encode(envelope), ARTICLES.name, key=b"a1", headers={"event-type": envelope.type}
            )
    assert handled == ["ArticleRetracted", "ArticleRetracted"]
    assert letters == [(ARTICLES.name, ARTICLES.misplaced("QuoteUpdated"))]


def consumed(topic: str, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, 0, 0, 0, 0, b"k", value, None, 1, len(value), ())


def test_a_replay_passes_over_a_misplaced_event_as_the_consumers_park_it() -> None:
    """The payloads a replay folds leave out an event its topic does not declare, keeping the others."""
    batch = [consumed(ARTICLES.name, encode(e)) for e in (retraction(), quote(), retraction())]
    kinds = [type(p).__name__ if p is not None else None for p in decoded_payloads(batch)]
    assert kinds == ["ArticleRetracted", None, "ArticleRetracted"]
