"""The rendering service's subscribers under FastStream's in-memory broker: no broker or Redis needed.

What a namespace's writer does with the events is the writer's tests' subject (on a real Redis); here
the live namespaces are a recorder, and the subject is which events reach them and which are parked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from newsroom.common.events import (
    ArticleContent,
    ArticleEnriched,
    ArticleRetracted,
    ArticleSubmitted,
    QuoteUpdated,
    encode,
    new_envelope,
)
from newsroom.common.settings import Settings
from newsroom.common.topics import DEAD_LETTERS, ENRICHED, SNAPSHOTS
from newsroom.rendering.applying import Applied, ArticleEvent
from newsroom.rendering.service import build


@dataclass
class RecordingWriter:
    """Stands for every live namespace's writer: keeps what it is asked to write."""

    applied: list[list[ArticleEvent]] = field(default_factory=list)
    quoted: list[list[QuoteUpdated]] = field(default_factory=list)

    async def apply(self, events: list[ArticleEvent]) -> Applied:
        self.applied.append(list(events))
        return Applied()

    async def quotes(self, snapshots: list[QuoteUpdated]) -> int:
        self.quoted.append(list(snapshots))
        return len(snapshots)


@dataclass
class Harness:
    broker: Any  # the TestKafkaBroker-patched broker
    writer: RecordingWriter
    letters: list[tuple[bytes, dict[str, str]]]  # (value, headers) of each dead letter


@pytest.fixture
async def rendering(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    """The rendering service built as ``newsroom run`` builds it, its namespaces a recorder, its dead
    letters collected."""
    svc = build(Settings())
    writer = RecordingWriter()

    async def to_each(write: Callable[[Any], Awaitable[Any]]) -> list[Any]:
        return [await write(writer)]

    monkeypatch.setattr(svc.namespaces, "to_each", to_each)
    letters: list[tuple[bytes, dict[str, str]]] = []

    @svc.broker.subscriber(DEAD_LETTERS.name)
    async def parked(message: KafkaMessage) -> None:
        letters.append((message.body, dict(message.headers)))

    async with TestKafkaBroker(svc.broker) as broker:
        yield Harness(broker, writer, letters)


def article(i: int) -> dict[str, Any]:
    return {
        "article_id": f"a{i}",
        "revision": 1,
        "headline": f"Story {i}",
        "body_html": f"<p>Story {i}.</p>",
        "source": "test",
        "published_at": datetime(2026, 1, 13, 9, tzinfo=UTC),
        "content_hash": f"h{i}",
        "slug": f"story-{i}",
    }


def enriched(i: int) -> ArticleEnriched:
    return ArticleEnriched(article=ArticleContent(**article(i)), tagger_version="t", mentions=(), tickers=())


def quote(price: str) -> QuoteUpdated:
    return QuoteUpdated(symbol="INTC", exchange="NASDAQ", price=Decimal(price), as_of=datetime.now(UTC))


async def test_a_batch_of_article_events_is_applied_in_one_write(rendering: Harness) -> None:
    """Enriched articles and a retraction consumed together reach the namespaces as one write, in order."""
    retraction = ArticleRetracted(article_id="a0", revision=2, slug="story-0", reason="test")
    events = [enriched(1), enriched(2), retraction]
    await rendering.broker.publish_batch(
        *(encode(new_envelope(e, producer="test")) for e in events), topic=ENRICHED.name
    )
    assert rendering.writer.applied == [events]
    assert rendering.letters == []


async def test_a_misplaced_article_event_is_dead_lettered_alone_with_its_reason(rendering: Harness) -> None:
    """An event that is not an enriched article or a retraction is parked alone, naming why; its batch
    neighbours are still applied (each on its own, once the batch as a whole failed)."""
    misplaced = encode(new_envelope(ArticleSubmitted(**article(99)), producer="test"))
    values = [encode(new_envelope(enriched(1), producer="test")), misplaced, b"not json at all"]
    await rendering.broker.publish_batch(*values, topic=ENRICHED.name)
    assert [[e.article.article_id for e in w] for w in rendering.writer.applied] == [["a1"]]  # type: ignore[union-attr]
    reasons = {value: headers["dlq-reason"] for value, headers in rendering.letters}
    assert len(rendering.letters) == 2
    assert reasons[misplaced] == ENRICHED.misplaced("ArticleSubmitted")  # decided once, for every topic
    assert reasons[b"not json at all"]  # undecodable: parked with its decoder's reason
    assert {headers["dlq-service"] for _, headers in rendering.letters} == {"rendering"}
    assert {headers["dlq-topic"] for _, headers in rendering.letters} == {ENRICHED.name}


async def test_snapshots_are_written_and_anything_else_on_their_topic_is_parked(rendering: Harness) -> None:
    """Quote snapshots of a batch are written together; a record that is no snapshot is dead-lettered."""
    snapshots = [quote("20.1"), quote("20.2")]
    stray = encode(new_envelope(enriched(1), producer="test"))
    values = [encode(new_envelope(snapshots[0], producer="test")), stray]
    values.append(encode(new_envelope(snapshots[1], producer="test")))
    await rendering.broker.publish_batch(*values, topic=SNAPSHOTS.name)
    assert rendering.writer.quoted == [snapshots]
    [(value, headers)] = rendering.letters
    assert value == stray
    assert headers["dlq-reason"] == SNAPSHOTS.misplaced("ArticleEnriched")
