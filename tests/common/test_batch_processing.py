"""A batch of records is handled in one call; a bad event in it still is dead-lettered alone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import pytest
from faststream.exceptions import NackMessage
from faststream.kafka import KafkaBroker

from newsroom.common.events import ArticleRetracted, Envelope, encode, new_envelope
from newsroom.common.messaging import Outgoing, Publisher, process_batch_at_once
from newsroom.common.records import Record


class RecordingPublisher(Publisher):
    """A publisher that keeps what it would send (the broker is never started)."""

    def __init__(self) -> None:
        super().__init__(KafkaBroker(), "test")
        self.letters: list[tuple[int, str]] = []
        self.published: list[Outgoing] = []

    async def dead_letter_many(self, items: Sequence[tuple[Record, str]]) -> None:
        self.letters += [(record.offset, reason) for record, reason in items]

    async def publish(self, items: Iterable[Outgoing]) -> int:
        batch = list(items)
        self.published += batch
        return len(batch)


def record(offset: int, envelope: Envelope | None) -> Record:
    return Record(
        topic="t",
        partition=0,
        offset=offset,
        timestamp_ms=int(datetime.now(UTC).timestamp() * 1000),
        key=f"k{offset}",
        value=encode(envelope) if envelope else b"garbage",
        headers=(),
        envelope=envelope,
        error=None if envelope else "not JSON",
    )


def retraction(n: int) -> Envelope:
    return new_envelope(ArticleRetracted(article_id=f"a{n}", revision=1, slug=f"s{n}"), producer="test")


async def test_decodable_records_go_to_the_batch_handler_in_one_call() -> None:
    """Decodable records reach one batch call, the undecodable one is dead-lettered, none goes alone."""
    publisher = RecordingPublisher()
    calls: list[list[int]] = []
    alone: list[int] = []

    async def handle_all(decoded: list[tuple[Record, Envelope]]) -> list[Outgoing]:
        calls.append([r.offset for r, _ in decoded])
        return []

    async def handle(rec: Record, envelope: Envelope) -> list[Outgoing]:
        alone.append(rec.offset)
        return []

    records = [record(0, retraction(0)), record(1, None), record(2, retraction(2))]
    handled = await process_batch_at_once(records, handle_all, handle, publisher)

    assert handled == 2
    assert calls == [[0, 2]]
    assert alone == []
    assert publisher.letters == [(1, "not JSON")]


async def test_when_the_batch_fails_each_record_is_handled_alone_and_only_the_bad_one_dead_lettered() -> None:
    """A failing batch call falls back to one record at a time: good ones handled, the bad one parked."""
    publisher = RecordingPublisher()
    alone: list[int] = []

    async def handle_all(decoded: list[tuple[Record, Envelope]]) -> list[Outgoing]:
        raise ValueError("one of these is bad")

    async def handle(rec: Record, envelope: Envelope) -> list[Outgoing]:
        if rec.offset == 1:
            raise ValueError("this one is bad")
        alone.append(rec.offset)
        return []

    records = [record(0, retraction(0)), record(1, retraction(1)), record(2, retraction(2))]
    handled = await process_batch_at_once(records, handle_all, handle, publisher)

    assert handled == 2
    assert alone == [0, 2]
    assert publisher.letters == [(1, "ValueError: this one is bad")]


async def test_a_failure_that_is_not_the_events_fault_delivers_the_batch_again() -> None:
    """A nack (a store is down) parks nothing and handles nothing alone: the whole batch comes again."""
    publisher = RecordingPublisher()
    alone: list[int] = []

    async def handle_all(decoded: list[tuple[Record, Envelope]]) -> list[Outgoing]:
        raise NackMessage()

    async def handle(rec: Record, envelope: Envelope) -> list[Outgoing]:
        alone.append(rec.offset)
        return []

    with pytest.raises(NackMessage):
        await process_batch_at_once(
            [record(0, retraction(0)), record(1, None)], handle_all, handle, publisher
        )
    assert alone == []
    assert publisher.letters == []
