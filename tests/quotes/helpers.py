"""Test ticks, a settable clock and a topic collector for the quotes tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage

from newsroom.common.events import TickReceived, encode, new_envelope
from newsroom.common.records import Record


def tick(
    price: str | Decimal,
    at: datetime,
    *,
    symbol: str = "AAPL",
    exchange: str = "NASDAQ",
    volume: int = 100,
    sequence: int | None = None,
    previous_close: str | Decimal | None = None,
) -> TickReceived:
    """A tick as a feed would send it (``source`` "test")."""
    return TickReceived(
        symbol=symbol,
        exchange=exchange,
        price=Decimal(price),
        volume=volume,
        exchange_time=at,
        source="test",
        sequence=sequence,
        previous_close=None if previous_close is None else Decimal(previous_close),
    )


class Clock:
    """A clock the test sets: what the service's engine takes for now."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _as_consumed(message: StreamMessage[Any]) -> Any:
    """FastStream decoder: the consumed record itself."""
    return message.raw_message


def collect(broker: KafkaBroker, topic: str) -> list[Record]:
    """Every record published to ``topic`` on ``broker`` from now on (subscribe before the broker starts)."""
    found: list[Record] = []

    @broker.subscriber(topic, decoder=_as_consumed)
    async def collector(rec: Any) -> None:
        found.append(Record.from_consumer_record(rec))

    return found


def encoded(tick: TickReceived) -> bytes:
    """A tick as its producer puts it on the ticks topic."""
    return encode(new_envelope(tick, producer="test"))
