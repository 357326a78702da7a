"""Ticks in time: the seeded simulator and replay pacing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from newsroom.common.events import TickReceived
from newsroom.quotes.book import QuoteBook
from newsroom.quotes.streams import paced, simulate


def test_simulator_is_seeded_plausible_and_on_tick_size() -> None:
    """The same seed gives the same walk; prices stay positive, near the start, in cents or in yen."""
    start = datetime(2025, 2, 18, 15, 0, tzinfo=UTC)
    last = {"NASDAQ:AAPL": Decimal("259.45"), "TYO:7203": Decimal("2850"), "NYSE:BAC": Decimal("51.94")}
    prev = {"NASDAQ:AAPL": Decimal("261.05")}
    a = list(simulate(last, seed=7, start=start, step=timedelta(seconds=1), previous_closes=prev, count=2000))
    b = list(simulate(last, seed=7, start=start, step=timedelta(seconds=1), previous_closes=prev, count=2000))
    c = list(simulate(last, seed=8, start=start, step=timedelta(seconds=1), previous_closes=prev, count=2000))
    assert a == b
    assert a != c
    assert len(a) == 6000
    assert a[-1].exchange_time == start + timedelta(seconds=1999)
    for t in a:
        start_price = last[f"{t.exchange}:{t.symbol}"]
        assert t.price > 0
        assert abs(t.price / start_price - 1) < Decimal("0.2")
        assert t.price == t.price.quantize(Decimal(1) if t.exchange == "TYO" else Decimal("0.01"))
    assert {t.previous_close for t in a if t.symbol == "AAPL"} == {Decimal("261.05")}
    assert {t.previous_close for t in a if t.symbol == "BAC"} == {Decimal("51.94")}

    book = QuoteBook(coalesce=timedelta(0))
    assert all(book.apply(t, received_at=t.exchange_time) is None for t in a)
    snaps = {s.instrument_id: s for s in book.due(a[-1].exchange_time + timedelta(minutes=20))}
    assert snaps["NASDAQ:AAPL"].previous_close == Decimal("261.05")
    assert snaps["TYO:7203"].currency == "JPY"


def test_paced_replay_waits_recorded_gaps_divided_by_speed() -> None:
    """Recorded pace at speed 60 turns one-minute gaps into one-second waits; speed 0 means no waits."""
    t0 = datetime(2016, 4, 15, 13, 30, tzinfo=UTC)
    ticks = [
        TickReceived(
            symbol="AAPL",
            exchange="NASDAQ",
            price=Decimal(1),
            exchange_time=t0 + timedelta(minutes=m),
            source="t",
        )
        for m in (0, 1, 3, 3, 600)
    ]
    assert [w for w, _ in paced(ticks, speed=60)] == [0.0, 1.0, 2.0, 0.0, 597.0]
    assert [w for w, _ in paced(ticks, speed=60, max_gap=5)] == [0.0, 1.0, 2.0, 0.0, 5.0]
    assert [w for w, _ in paced(ticks, speed=0)] == [0.0] * 5
    assert [t for _, t in paced(ticks, speed=float("inf"))] == ticks
