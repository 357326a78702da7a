"""The quote book split by ticks partition, without a broker: ownership, checkpoints, snapshot records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from newsroom.common.events import QuoteStateChunked, QuoteStateSnapshotted, QuoteUpdated, decode
from newsroom.common.messaging import Publisher
from newsroom.common.settings import Settings
from newsroom.quotes import snapshots
from newsroom.quotes.book import QuoteBook
from newsroom.quotes.engine import QuoteEngine, book_config
from newsroom.quotes.snapshots import SnapshotWriter, pack, unpack
from tests.quotes.helpers import Clock, FakePublisher, consumed, tick

OPEN = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)  # 10:00 in New York: NASDAQ is open
SETTINGS = Settings(quote_delay_minutes=20)
LATER = OPEN + timedelta(minutes=30)


def engine(clock: Clock, publisher: FakePublisher, producer: str = "quotes@a") -> QuoteEngine:
    """An engine over books configured as the service's, publishing into ``publisher``."""
    config = book_config(SETTINGS)
    return QuoteEngine(
        lambda: QuoteBook(**config), cast(Publisher, publisher), clock=clock, producer=producer
    )


def published(publisher: FakePublisher) -> dict[str, tuple[QuoteUpdated, str]]:
    """The last snapshot per instrument among the published, with its producer."""
    out: dict[str, tuple[QuoteUpdated, str]] = {}
    for _, key, env in publisher.published:
        out[key] = (env.data, env.producer)
    return out


def trades(symbol: str, partition: int, prices: list[str], first_offset: int = 0) -> list[Any]:
    """Consumed ticks of one instrument on one partition, a minute apart from ``OPEN`` (by offset)."""
    return [
        consumed(tick(p, OPEN + timedelta(minutes=n), symbol=symbol, sequence=n), partition, n, OPEN)
        for n, p in enumerate(prices, start=first_offset)
    ]


async def test_a_revoked_partition_is_dropped_and_its_instruments_are_never_published_again() -> None:
    """After revocation the replica skips the partition's ticks and publishes none of its instruments."""
    clock, out = Clock(LATER), FakePublisher()
    eng = engine(clock, out)
    await eng.assign({0: None, 1: None})
    await eng.take(trades("AAPL", 0, ["10", "11"]) + trades("MSFT", 1, ["20", "21"]))
    assert set(published(out)) == {"NASDAQ:AAPL", "NASDAQ:MSFT"}
    [(partition, _, covers)] = await eng.revoke({1})
    assert (partition, covers) == (1, 1)
    out.published.clear()
    await eng.take(trades("MSFT", 1, ["22"], first_offset=2) + trades("AAPL", 0, ["12"], first_offset=2))
    clock.now += timedelta(minutes=5)  # a market-state change would publish every owned instrument again
    await eng.flush()
    assert set(published(out)) == {"NASDAQ:AAPL"}
    assert eng.skipped == 1


async def test_a_partition_restored_from_its_state_plus_the_tail_equals_one_replica_that_had_it_all() -> None:
    """State handed over at revocation, then the re-delivered tail, gives the single-replica snapshot."""
    ticks = trades("MSFT", 1, ["20", "21", "19.5", "22.25", "22"])
    single_out, moved_out = FakePublisher(), FakePublisher()
    single = engine(Clock(LATER), single_out)
    await single.take(ticks)
    first = engine(Clock(LATER), FakePublisher(), "quotes@a")
    await first.assign({1: None})
    await first.take(ticks[:3])
    [(_, state, covers)] = await first.revoke({1})
    second = engine(Clock(LATER + timedelta(seconds=2)), moved_out, "quotes@b")  # past the coalescing
    await second.assign({1: (unpack(pack(state)), covers)})
    await second.take(ticks[covers - 1 :])  # from before the covered offset: the duplicates are ignored
    want, _ = published(single_out)["NASDAQ:MSFT"]
    got, producer = published(moved_out)["NASDAQ:MSFT"]
    assert producer == "quotes@b"
    assert got.model_dump(exclude={"as_of"}) == want.model_dump(exclude={"as_of"})
    assert second.book(1).accepted == single.book(1).accepted


async def test_checkpoints_fall_due_after_n_ticks_or_t_seconds_and_restart_counting_once_written() -> None:
    """A partition's state is due after ``every_ticks`` ticks, or after ``every_s`` seconds with any tick."""
    eng = engine(Clock(LATER), FakePublisher())
    await eng.assign({0: None, 1: None})
    await eng.take(trades("AAPL", 0, ["10", "11", "12"]) + trades("MSFT", 1, ["20"]))
    due = await eng.checkpoints(every_ticks=3, every_s=3600)
    assert [(p, covers) for p, _, covers in due] == [(0, 2)]
    eng.checkpointed(due)
    assert await eng.checkpoints(every_ticks=3, every_s=3600) == []
    assert [p for p, _, _ in await eng.checkpoints(every_ticks=3, every_s=0)] == [1]
    assert [p for p, _, _ in await eng.checkpoints()] == [0, 1]


async def test_a_large_state_is_written_as_chunks_then_a_marker_naming_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A state over one record goes out as chunks, then a marker with the first chunk's offset and count."""
    monkeypatch.setattr(snapshots, "CHUNK_CHARS", 64)
    written: list[tuple[Any, int]] = []

    async def publish(value: bytes, partition: int, event_type: str) -> int:
        env = decode(value)
        assert env.type == event_type
        written.append((env.data, partition))
        return 100 + len(written) - 1

    state = {"version": 1, "accepted": 7, "instruments": {f"NASDAQ:S{i}": {"n": i} for i in range(40)}}
    count = await SnapshotWriter(publish, "quotes@a").write(4, state, covers=41)
    *chunks, (marker, _) = written
    assert count == len(written)
    assert len(chunks) > 1
    assert {p for _, p in written} == {4}
    assert isinstance(marker, QuoteStateSnapshotted)
    assert (marker.first_chunk, marker.chunks, marker.covers, marker.data) == (100, len(chunks), 41, None)
    assert all(isinstance(c, QuoteStateChunked) and c.snapshot_id == marker.snapshot_id for c, _ in chunks)
    assert unpack("".join(cast(QuoteStateChunked, c).data for c, _ in chunks)) == state


async def test_a_small_state_rides_inline_in_its_marker() -> None:
    """A state that fits one record is one marker holding it."""
    written: list[Any] = []

    async def publish(value: bytes, partition: int, event_type: str) -> None:
        written.append(decode(value).data)

    assert (
        await SnapshotWriter(publish, "quotes@a").write(0, {"version": 1, "instruments": {}}, covers=-1) == 1
    )
    [marker] = written
    assert isinstance(marker, QuoteStateSnapshotted)
    assert marker.chunks == 0
    assert unpack(marker.data or "") == {"version": 1, "instruments": {}}


async def test_a_snapshot_that_cannot_be_loaded_leaves_its_partition_owned_and_empty() -> None:
    """A partition whose state is unreadable is still owned (its ticks are taken), empty, and reported."""
    eng = engine(Clock(LATER), FakePublisher())
    assert await eng.assign({0: ({"version": 99}, 41), 1: None}) == {0}
    assert eng.book(0).instrument_ids == []
    assert eng.partitions[0].applied == -1
    await eng.take(trades("AAPL", 0, ["10"]))
    assert eng.book(0).instrument_ids == ["NASDAQ:AAPL"]
