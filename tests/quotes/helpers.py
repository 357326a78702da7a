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


class FakePublisher:
    """What the engine publishes, kept instead of sent (a :class:`~newsroom.common.messaging.Publisher`)."""

    service = "quotes"

    def __init__(self) -> None:
        self.published: list[tuple[str, str, Any]] = []
        self.dead: list[tuple[Record, str]] = []

    async def publish(self, items: Any) -> int:
        batch = [(topic.name, key, env) for topic, key, env in items]
        self.published += batch
        return len(batch)

    async def dead_letter_many(self, items: Any) -> None:
        self.dead += list(items)


def consumed(tick: TickReceived, partition: int, offset: int, at: datetime) -> Any:
    """A tick as the consumer hands it over: a ``ConsumerRecord`` of the ticks topic."""
    from aiokafka import ConsumerRecord

    from newsroom.common.topics import TICKS

    key = f"{tick.exchange}:{tick.symbol}".encode()
    value = encoded(tick)
    stamp = int(at.timestamp() * 1000)
    return ConsumerRecord(TICKS.name, partition, offset, stamp, 0, key, value, None, len(key), len(value), [])


def old_ticks(
    n: int,
    *,
    instruments: int,
    seed: int,
    start_index: int = 0,
    base: datetime | None = None,
    step_ms: int = 10,
) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``n`` ticks over NASDAQ instruments ``R0000``…, round robin, ``step_ms`` apart from
    ``base`` (by default the hour two hours ago: public at once); ``start_index`` continues a call."""
    import random
    from datetime import UTC, timedelta

    rng = random.Random(seed)
    if base is None:
        base = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    out = []
    for i in range(start_index, start_index + n):
        j = i % instruments
        at = base + timedelta(milliseconds=step_ms * i)
        price = Decimal(rng.randint(1000, 50000)) / 100
        t = tick(price, at, symbol=f"R{j:04d}", volume=rng.randint(1, 500), sequence=i)
        out.append((f"NASDAQ:R{j:04d}".encode(), encoded(t)))
    return out
