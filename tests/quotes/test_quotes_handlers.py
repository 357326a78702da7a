"""The quotes service's handlers under FastStream's in-memory TestKafkaBroker (no broker, no Redis).

The engine's clock is set by each test, so a tick's delay passes without waiting: the flush that
releases it is called explicitly, as the service's flusher does every second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from faststream.kafka import TestKafkaBroker

from newsroom.common import deadletters
from newsroom.common.events import QuoteUpdated
from newsroom.common.records import Record
from newsroom.common.settings import Settings
from newsroom.common.topics import DEAD_LETTERS, SNAPSHOTS, TICKS
from newsroom.quotes.service import Quotes, build
from tests.quotes.helpers import Clock, collect, encoded, tick

OPEN = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)  # 10:00 in New York: NASDAQ is open
SETTINGS = Settings(quote_delay_minutes=20)
DELAY = timedelta(minutes=20)


def service(clock: Clock) -> Quotes:
    """The service's parts on the in-memory broker's terms, its engine on ``clock``."""
    return build(SETTINGS, clock=clock)


def quotes(records: list[Record]) -> dict[str, QuoteUpdated]:
    """The last snapshot per instrument id among collected records."""
    out: dict[str, QuoteUpdated] = {}
    for rec in records:
        env = rec.envelope
        if env is not None and isinstance(env.data, QuoteUpdated):
            out[env.data.instrument_id] = env.data
    return out


async def test_a_tick_becomes_a_snapshot_on_the_snapshots_topic_once_its_delay_has_passed() -> None:
    """A tick is held while younger than the delay and published as a snapshot by the flush after it."""
    clock = Clock(OPEN + timedelta(minutes=1))
    svc = service(clock)
    snapshots = collect(svc.broker, SNAPSHOTS.name)
    async with TestKafkaBroker(svc.broker) as broker:
        await broker.publish(encoded(tick("187.25", OPEN, volume=300)), TICKS.name, key=b"NASDAQ:AAPL")
        assert snapshots == []
        assert svc.book.pending_ticks == 1

        clock.now = OPEN + DELAY
        assert await svc.engine.flush() == 1

    assert [rec.key for rec in snapshots] == ["NASDAQ:AAPL"]
    quote = quotes(snapshots)["NASDAQ:AAPL"]
    assert (quote.price, quote.volume, quote.day_open) == (Decimal("187.25"), 300, Decimal("187.25"))
    assert quote.as_of == OPEN
    assert quote.delay_minutes == 20
    assert quote.market_state == "open"
    assert svc.book.pending_ticks == 0


async def test_a_poison_tick_is_dead_lettered_alone_with_its_reason_while_its_neighbours_pass() -> None:
    """In one batch, a zero price and a non-JSON value are parked with their reasons; the others publish."""
    clock = Clock(OPEN + DELAY + timedelta(minutes=1))
    svc = service(clock)
    snapshots = collect(svc.broker, SNAPSHOTS.name)
    letters = collect(svc.broker, DEAD_LETTERS.name)
    zero = encoded(tick("0", OPEN, symbol="MSFT"))
    garbage = b"\xff not a tick"
    batch = [
        encoded(tick("187.25", OPEN)),
        zero,
        encoded(tick("415.10", OPEN, symbol="NVDA")),
        garbage,
        encoded(tick("187.50", OPEN + timedelta(seconds=1))),
    ]
    async with TestKafkaBroker(svc.broker) as broker:
        await broker.publish_batch(*batch, topic=TICKS.name)

    reasons = {rec.value: rec.header(deadletters.REASON) or "" for rec in letters}
    assert set(reasons) == {zero, garbage}
    assert reasons[zero].startswith("non_positive_price")
    assert reasons[garbage].startswith("not JSON")
    assert {rec.header(deadletters.SERVICE) for rec in letters} == {"quotes"}
    assert {rec.header(deadletters.TOPIC) for rec in letters} == {TICKS.name}
    published = quotes(snapshots)
    assert set(published) == {"NASDAQ:AAPL", "NASDAQ:NVDA"}
    assert published["NASDAQ:AAPL"].price == Decimal("187.50")
    assert published["NASDAQ:NVDA"].price == Decimal("415.10")


async def test_a_duplicate_tick_is_ignored_and_its_volume_not_counted_twice() -> None:
    """The same tick delivered again is neither applied nor dead-lettered: the snapshot counts it once."""
    clock = Clock(OPEN + timedelta(minutes=1))
    svc = service(clock)
    snapshots = collect(svc.broker, SNAPSHOTS.name)
    letters = collect(svc.broker, DEAD_LETTERS.name)
    same = encoded(tick("187.25", OPEN, volume=300, sequence=7))
    async with TestKafkaBroker(svc.broker) as broker:
        await broker.publish(same, TICKS.name, key=b"NASDAQ:AAPL")
        await broker.publish(same, TICKS.name, key=b"NASDAQ:AAPL")  # delivered again
        await broker.publish_batch(same, same, topic=TICKS.name)  # and twice in one batch
        clock.now = OPEN + DELAY
        await svc.engine.flush()

    assert letters == []
    assert svc.book.accepted == 1
    assert svc.book.rejected == {"duplicate": 3}
    assert quotes(snapshots)["NASDAQ:AAPL"].volume == 300


async def test_an_event_not_declared_on_the_ticks_topic_is_dead_lettered_with_the_topics_reason() -> None:
    """A snapshot sent to the ticks topic is parked with the registry's reason; a tick beside it passes."""
    clock = Clock(OPEN + DELAY + timedelta(minutes=1))
    svc = service(clock)
    snapshots = collect(svc.broker, SNAPSHOTS.name)
    letters = collect(svc.broker, DEAD_LETTERS.name)
    async with TestKafkaBroker(svc.broker) as broker:
        await broker.publish(encoded(tick("187.25", OPEN)), TICKS.name, key=b"NASDAQ:AAPL")
    stray = snapshots[0].value
    async with TestKafkaBroker(svc.broker) as broker:
        await broker.publish_batch(stray, encoded(tick("415.10", OPEN, symbol="NVDA")), topic=TICKS.name)

    assert [rec.value for rec in letters] == [stray]
    assert letters[0].header(deadletters.REASON) == TICKS.misplaced("QuoteUpdated")
    assert set(quotes(snapshots)) == {"NASDAQ:AAPL", "NASDAQ:NVDA"}
