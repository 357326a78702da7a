"""Behaviour of the QuoteBook: previous close per exchange calendar, the delay line, poison ticks, splits."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsroom.common.events import QuoteUpdated, TickReceived
from newsroom.quotes.book import QuoteBook
from newsroom.quotes.calendars import session_calendar
from newsroom.quotes.domain import RejectCode
from newsroom.quotes.feeds import read_intraday_bars, read_tse_daily, read_yahoo_daily
from tests.quotes.helpers import tick

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
QUOTES = DATA / "quotes"
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
DELAY = timedelta(minutes=20)


def data_file(relative: str) -> Path:
    path = QUOTES / relative
    if not path.is_file():
        pytest.skip(f"shared corpus file {path} is absent (it sits beside the checkout in this workspace)")
    return path


def replay(book: QuoteBook, ticks: Iterable[TickReceived], *, step_clock: bool = True) -> list[QuoteUpdated]:
    """Apply ticks as they arrive and advance the clock to each tick's time plus the delay."""
    out: list[QuoteUpdated] = []
    last: datetime | None = None
    for t in ticks:
        assert book.apply(t, received_at=t.exchange_time) is None
        last = t.exchange_time
        if step_clock:
            out += book.due(last + DELAY)
    if last is not None:
        out += book.due(last + DELAY + timedelta(hours=1))
    return out


# --------------------------------------------------------------------------- previous close, sessions


def test_aapl_first_two_sessions_change_is_session_close_difference() -> None:
    """Replaying AAPL's first two sessions gives a last change of session-2 close minus session-1 close."""
    ticks = list(read_intraday_bars(data_file("AAPL_INTRA_DAY.tsv")))
    days = sorted({t.exchange_time.astimezone(NEW_YORK).date() for t in ticks})[:2]
    first, second = ([t for t in ticks if t.exchange_time.astimezone(NEW_YORK).date() == d] for d in days)
    assert session_calendar("XNAS").session(days[1]).previous == days[0]  # type: ignore[union-attr]

    snapshots = replay(QuoteBook(coalesce=timedelta(0)), first + second)

    last = snapshots[-1]
    expected = second[-1].price - first[-1].price
    assert last.previous_close == first[-1].price
    assert last.change is not None
    assert last.change.quantize(Decimal("0.01")) == expected.quantize(Decimal("0.01"))
    assert last.change_percent == (expected * 100 / first[-1].price).quantize(Decimal("0.01"))
    assert last.day_open == second[0].price
    assert last.day_high == max(t.price for t in second)
    assert last.day_low == min(t.price for t in second)
    assert last.volume == sum(t.volume for t in second)
    assert (last.currency, last.delay_minutes, last.market_state) == ("USD", 20, "closed")


def test_whole_replay_in_one_step_gives_the_same_final_snapshot() -> None:
    """Releasing two AAPL sessions in one due() call yields one snapshot equal to the stepwise one."""
    ticks = list(read_intraday_bars(data_file("AAPL_INTRA_DAY.tsv")))
    days = sorted({t.exchange_time.astimezone(NEW_YORK).date() for t in ticks})[:2]
    two = [t for t in ticks if t.exchange_time.astimezone(NEW_YORK).date() in days]
    stepwise = replay(QuoteBook(coalesce=timedelta(seconds=30)), two)[-1]

    book = QuoteBook()
    for t in two:
        assert book.apply(t, received_at=t.exchange_time) is None
    (once,) = book.due(two[-1].exchange_time + DELAY + timedelta(hours=1))

    assert (once.price, once.previous_close, once.change, once.volume) == (
        stepwise.price,
        stepwise.previous_close,
        stepwise.change,
        stepwise.volume,
    )


def _closes_by_date(path: Path) -> dict[date, Decimal]:
    with path.open(newline="") as fh:
        return {date.fromisoformat(r["Date"][:10]): Decimal(r["Close"]) for r in csv.DictReader(fh)}


def test_first_session_after_us_holiday_compares_with_the_session_before_it() -> None:
    """On the first XNAS session after a weekday holiday, previous close is the session before's close."""
    path = data_file("yahoofinance-INTC-19950101-20040412.csv")
    closes = _closes_by_date(path)
    cal = session_calendar("XNAS")
    # pick from the calendar: sessions in the file whose previous session is more than one weekday back
    after_holiday = [
        d
        for d in sorted(closes)
        if (s := cal.session(d)) is not None
        and s.previous in closes
        and any((s.previous + timedelta(days=i)).weekday() < 5 for i in range(1, (d - s.previous).days))
    ]
    assert date(2004, 1, 20) in after_holiday  # the day after Martin Luther King Jr. Day 2004
    by_day: dict[date, QuoteUpdated] = {}
    for snap in replay(QuoteBook(coalesce=timedelta(0)), read_yahoo_daily(path)):
        by_day[snap.as_of.astimezone(NEW_YORK).date()] = snap
    for d in after_holiday:
        previous = cal.session(d).previous  # type: ignore[union-attr]
        assert previous is not None
        assert by_day[d].previous_close == closes[previous], d
        assert by_day[d].change == closes[d] - closes[previous], d


def test_first_tokyo_session_after_golden_week_compares_with_april_30() -> None:
    """The Nikkei 225 on 2010-05-06 (after Golden Week) compares against the 2010-04-30 close."""
    path = data_file("nikkei-2010-yahoofinance.csv")
    closes = _closes_by_date(path)
    assert session_calendar("XTKS").session(date(2010, 5, 6)).previous == date(2010, 4, 30)  # type: ignore[union-attr]
    by_day = {
        s.as_of.astimezone(TOKYO).date(): s
        for s in replay(QuoteBook(coalesce=timedelta(0)), read_yahoo_daily(path))
    }
    snap = by_day[date(2010, 5, 6)]
    assert snap.previous_close == closes[date(2010, 4, 30)]
    assert snap.change == closes[date(2010, 5, 6)] - closes[date(2010, 4, 30)]


def test_after_hours_and_holiday_ticks_do_not_move_the_previous_close() -> None:
    """After-hours and Memorial Day ticks belong to Friday, yet Tuesday compares with Friday's close."""
    book = QuoteBook(coalesce=timedelta(0))
    friday_close = datetime(2016, 5, 27, 16, 0, tzinfo=NEW_YORK)
    after_hours = datetime(2016, 5, 27, 18, 0, tzinfo=NEW_YORK)
    holiday = datetime(2016, 5, 30, 12, 0, tzinfo=NEW_YORK)
    tuesday = datetime(2016, 5, 31, 10, 0, tzinfo=NEW_YORK)
    ticks = [tick("100.00", friday_close), tick("100.50", after_hours), tick("101.00", holiday)]
    for t in [*ticks, tick("103.02", tuesday)]:
        assert book.apply(t, received_at=t.exchange_time) is None
    (on_holiday,) = book.due(holiday + DELAY)
    assert (on_holiday.price, on_holiday.market_state, on_holiday.volume) == (
        Decimal("101.00"),
        "closed",
        300,
    )
    (snap,) = book.due(tuesday + DELAY)
    assert (snap.previous_close, snap.change, snap.change_percent, snap.volume) == (
        Decimal("100.00"),
        Decimal("3.02"),
        Decimal("3.02"),
        100,
    )


def test_previous_close_hint_is_used_only_until_a_session_close_is_known() -> None:
    """A tick's previous_close fills the first session; the next session uses the observed close instead."""
    book = QuoteBook(coalesce=timedelta(0))
    monday = datetime(2025, 2, 18, 10, 0, tzinfo=NEW_YORK)  # Tuesday after Presidents' Day
    wednesday = datetime(2025, 2, 19, 10, 0, tzinfo=NEW_YORK)
    book.apply(tick("244.60", monday, previous_close="241.53"), received_at=monday)
    (first,) = book.due(monday + DELAY)
    assert (first.previous_close, first.change, first.change_percent) == (
        Decimal("241.53"),
        Decimal("3.07"),
        Decimal("1.27"),
    )
    book.apply(tick("250.00", wednesday, previous_close="1.00"), received_at=wednesday)
    (second,) = book.due(wednesday + DELAY)
    assert (second.previous_close, second.change) == (Decimal("244.60"), Decimal("5.40"))


# --------------------------------------------------------------------------- the delay line


def test_a_tick_becomes_public_only_when_twenty_minutes_old() -> None:
    """With a controllable clock a tick shows nowhere until it is 20 minutes old, then exactly as it was."""
    book = QuoteBook(coalesce=timedelta(0))
    t0 = datetime(2025, 2, 18, 15, 0, tzinfo=UTC)  # 10:00 New York
    assert book.apply(tick("100.00", t0, previous_close="99.00"), received_at=t0) is None
    assert (
        book.apply(tick("105.00", t0 + timedelta(minutes=1)), received_at=t0 + timedelta(minutes=1)) is None
    )

    for now in (t0, t0 + timedelta(minutes=19), t0 + timedelta(minutes=19, seconds=59)):
        assert book.due(now) == []
        assert book.snapshot("NASDAQ:AAPL", now) is None

    (snap,) = book.due(t0 + DELAY)
    assert (snap.price, snap.delay_minutes, snap.as_of) == (Decimal("100.00"), 20, t0)
    assert book.due(t0 + DELAY + timedelta(seconds=59)) == []  # the 105 tick is only 19m59s old
    (later,) = book.due(t0 + DELAY + timedelta(minutes=1))
    assert (later.price, later.as_of) == (Decimal("105.00"), t0 + timedelta(minutes=1))


def test_delay_is_configurable_per_exchange() -> None:
    """A per-exchange delay applies to that exchange only and is reported on its snapshots."""
    book = QuoteBook(coalesce=timedelta(0), delay_by_exchange={"TYO": 15})
    t0 = datetime(2025, 2, 18, 1, 0, tzinfo=UTC)  # 10:00 Tokyo, 20:00 New York the day before
    book.apply(tick("3000", t0, symbol="7203", exchange="TYO"), received_at=t0)
    book.apply(tick("100.00", t0), received_at=t0)
    (tokyo,) = book.due(t0 + timedelta(minutes=15))
    assert (tokyo.instrument_id, tokyo.delay_minutes) == ("TYO:7203", 15)
    (ny,) = book.due(t0 + timedelta(minutes=20))
    assert (ny.instrument_id, ny.delay_minutes) == ("NASDAQ:AAPL", 20)


def test_coalescing_gives_at_most_one_snapshot_per_interval_with_the_latest_state() -> None:
    """Due ticks within one coalescing interval yield one snapshot; the next interval brings the latest."""
    book = QuoteBook(coalesce=timedelta(seconds=5))
    t0 = datetime(2025, 2, 18, 15, 0, tzinfo=UTC)
    now = t0 + DELAY
    book.apply(tick("100.00", t0, sequence=1), received_at=t0)
    assert [s.price for s in book.due(now)] == [Decimal("100.00")]
    for i in range(1, 5):
        at = t0 + timedelta(seconds=i)
        book.apply(tick(f"10{i}.00", at, sequence=1 + i), received_at=at)
        assert book.due(now + timedelta(seconds=i)) == []
    (snap,) = book.due(now + timedelta(seconds=5))
    assert (snap.price, snap.volume) == (Decimal("104.00"), 500)
    assert book.due(now + timedelta(seconds=60)) == []  # nothing changed since


# --------------------------------------------------------------------------- Tokyo


def test_tokyo_prices_in_jpy_and_lunch_break_state() -> None:
    """A TYO instrument is quoted in JPY; its market state follows XTKS: pre-open, open, lunch, closed."""
    book = QuoteBook(coalesce=timedelta(0))
    day = date(2025, 2, 18)

    def jst(h: int, m: int) -> datetime:
        return datetime(day.year, day.month, day.day, h, m, tzinfo=TOKYO)

    for price, at in (("3000", jst(9, 0)), ("3010", jst(11, 29))):
        assert book.apply(tick(price, at, symbol="7203", exchange="TYO"), received_at=at) is None

    assert book.market_state("TYO", jst(8, 30)) == "pre-open"
    (opened,) = book.due(jst(9, 20))
    assert (opened.currency, opened.price, opened.market_state) == ("JPY", Decimal("3000"), "open")
    (before_lunch,) = book.due(jst(11, 49))
    assert (before_lunch.price, before_lunch.market_state) == (Decimal("3010"), "open")
    (lunch,) = book.due(jst(11, 50))  # public view time 11:30: the lunch break
    assert (lunch.price, lunch.market_state, lunch.currency) == (Decimal("3010"), "lunch", "JPY")
    assert book.due(jst(12, 40)) == []  # still lunch, nothing new
    (afternoon,) = book.due(jst(12, 50))
    assert afternoon.market_state == "open"
    (closed,) = book.due(jst(15, 50))  # XTKS closes at 15:30 since November 2024
    assert closed.market_state == "closed"
    assert book.market_state("NYSE", datetime(2025, 2, 17, 15, 0, tzinfo=UTC)) == "closed"  # Presidents' Day


# --------------------------------------------------------------------------- poison ticks


def test_poison_ticks_are_rejected_with_reasons_and_never_change_the_snapshot() -> None:
    """Zero, negative, NaN, unknown, far-future, duplicate and out-of-order ticks are never applied."""
    book = QuoteBook(coalesce=timedelta(0), instruments={"NASDAQ:AAPL", "TYO:7203"})
    t0 = datetime(2025, 2, 18, 15, 0, tzinfo=UTC)
    good = tick("100.00", t0, sequence=7, volume=300, previous_close="99.00")
    assert book.apply(good, received_at=t0) is None
    (before,) = book.due(t0 + DELAY)

    nan = TickReceived.model_construct(
        symbol="AAPL", exchange="NASDAQ", price=Decimal("NaN"), volume=1, exchange_time=t0, source="bad"
    )
    poison = {
        RejectCode.NON_POSITIVE_PRICE: [tick("0", t0 + timedelta(seconds=1)), tick("-5", t0)],
        RejectCode.INVALID_PRICE: [nan],
        RejectCode.UNKNOWN_INSTRUMENT: [tick("10.00", t0, symbol="ZZZZ")],
        RejectCode.UNKNOWN_EXCHANGE: [tick("10.00", t0, exchange="TOR")],
        RejectCode.FUTURE_TIMESTAMP: [tick("101.00", t0 + timedelta(days=2))],
        RejectCode.DUPLICATE: [good],
        RejectCode.OUT_OF_ORDER: [tick("90.00", t0 - timedelta(seconds=1), sequence=6)],
    }
    for code, bad_ticks in poison.items():
        for bad in bad_ticks:
            rejection = book.apply(bad, received_at=t0 + timedelta(seconds=2))
            assert rejection is not None, code
            assert rejection.code == code
            assert rejection.reason
            assert rejection.tick is bad
    assert book.rejected[RejectCode.NON_POSITIVE_PRICE] == 2

    after = book.snapshot("NASDAQ:AAPL", t0 + DELAY)
    assert after is not None
    assert (after.price, after.volume, after.previous_close, after.day_low, after.day_high) == (
        before.price,
        before.volume,
        before.previous_close,
        before.day_low,
        before.day_high,
    )
    assert book.instrument_ids == ["NASDAQ:AAPL"]
    assert book.pending_ticks == 0
    # the book keeps going after poison
    nxt = tick("100.50", t0 + timedelta(seconds=3), sequence=8)
    assert book.apply(nxt, received_at=t0 + timedelta(seconds=3)) is None
    assert book.snapshot("NASDAQ:AAPL", t0 + timedelta(seconds=3) + DELAY) is not None


def test_prices_out_of_any_quote_range_never_stop_the_book() -> None:
    """An absurd price is rejected and an absurd previous-close hint ignored; every other quote goes on."""
    book = QuoteBook(coalesce=timedelta(0), instruments={"NASDAQ:AAPL", "NASDAQ:MSFT"})
    t0 = datetime(2025, 2, 18, 15, 0, tzinfo=UTC)
    huge = book.apply(tick("1e12", t0, symbol="MSFT"), received_at=t0)
    assert huge is not None
    assert huge.code == RejectCode.INVALID_PRICE
    assert book.apply(tick("100.00", t0, previous_close="99.00"), received_at=t0) is None
    tiny_hint = tick("100.00", t0, symbol="MSFT", previous_close="0.00000000000000000000000001")
    assert book.apply(tiny_hint, received_at=t0) is None
    snapshots = {q.symbol: q for q in book.due(t0 + DELAY)}
    assert snapshots["AAPL"].change_percent == Decimal("1.01")
    assert snapshots["MSFT"].price == Decimal("100.00")
    assert snapshots["MSFT"].previous_close is None


def test_a_split_that_rounds_a_tiny_close_to_nothing_leaves_no_previous_close() -> None:
    """A sub-cent close halved by a 2:1 split rounds to zero: the next session shows no change, no crash."""
    split_day = date(2025, 2, 19)
    book = QuoteBook(coalesce=timedelta(0), splits={"NASDAQ:AAPL": [(split_day, 2)]})
    monday = datetime(2025, 2, 18, 15, 0, tzinfo=UTC)
    tuesday = datetime(2025, 2, 19, 15, 0, tzinfo=UTC)
    assert book.apply(tick("0.00004", monday), received_at=monday) is None
    assert book.apply(tick("0.00003", tuesday), received_at=tuesday) is None
    snapshots = book.due(tuesday + DELAY)
    assert snapshots[-1].price == Decimal("0.00003")
    assert snapshots[-1].previous_close is None
    assert snapshots[-1].change_percent is None


# --------------------------------------------------------------------------- splits


def test_shin_etsu_five_for_one_split_does_not_show_as_minus_80_percent() -> None:
    """With TSE 4063's 5:1 split known, 2023-03-29 shows +1.55% against the adjusted close, not -79.69%."""
    path = data_file("tse/4063-T-1d-bad-stock-split.csv")
    fixed = _closes_by_date(data_file("tse/4063-T-1d-bad-stock-split-fixed.csv"))
    ex_date = date(2023, 3, 29)  # first session trading without the split right (record date 2023-03-31)

    def on(book: QuoteBook) -> QuoteUpdated:
        snaps = replay(book, read_tse_daily(path))
        return next(s for s in snaps if s.as_of.astimezone(TOKYO).date() == ex_date)

    unadjusted = on(QuoteBook(coalesce=timedelta(0)))
    assert unadjusted.change_percent == Decimal("-79.69")  # what the raw data shows without the split

    snap = on(QuoteBook(coalesce=timedelta(0), splits={"TYO:4063": [(ex_date, 5)]}))
    assert snap.currency == "JPY"
    assert snap.previous_close == Decimal(20710) / 5 == fixed[date(2023, 3, 28)]
    assert (snap.price, snap.change, snap.change_percent) == (Decimal(4206), Decimal(64), Decimal("1.55"))
    assert snap.change_percent is not None
    assert snap.change_percent > Decimal(-20)


# --------------------------------------------------------------------------- restart safety


def test_restore_then_reapplying_all_ticks_does_not_double_count_volume() -> None:
    """A book restored from JSON ignores re-delivered ticks and continues like one that never stopped."""
    t0 = datetime(2025, 2, 18, 15, 0, tzinfo=UTC)
    ticks = [tick(f"{100 + i}.00", t0 + timedelta(minutes=i), sequence=i, volume=10) for i in range(30)]
    head, tail = ticks[:20], ticks[20:]
    clock = t0 + timedelta(minutes=25)  # ticks 0..5 are public, 6..19 wait in the delay line

    crashed = QuoteBook(coalesce=timedelta(0))
    for t in head:
        crashed.apply(t, received_at=t.exchange_time)
    crashed.due(clock)
    state = json.loads(json.dumps(crashed.snapshot_state()))

    restored = QuoteBook.restore(state, coalesce=timedelta(0))
    rejections = [restored.apply(t, received_at=clock) for t in head]  # redelivered after the crash
    assert all(
        r is not None and r.code in (RejectCode.DUPLICATE, RejectCode.OUT_OF_ORDER) for r in rejections
    )
    for t in tail:
        assert restored.apply(t, received_at=t.exchange_time) is None

    never_stopped = QuoteBook(coalesce=timedelta(0))
    for t in ticks:
        never_stopped.apply(t, received_at=t.exchange_time)
    end = t0 + timedelta(hours=1)
    (a,) = restored.due(end)
    (b,) = never_stopped.due(end)
    assert a == b
    assert a.volume == 300
