"""Quote snapshots: pure, deterministic logic that turns ticks into public ``QuoteUpdated`` snapshots.

No I/O and no wall clock: every time comes in as an argument (``received_at``, ``now``).

The :class:`QuoteBook` is a **delay line**. :meth:`QuoteBook.apply` validates a tick and buffers it;
:meth:`QuoteBook.due` moves every buffered tick whose exchange time is at least the exchange's delay
old into the public state and returns at most one snapshot per instrument per coalescing interval. A
public snapshot therefore only ever shows what was true ``delay_minutes`` ago.

Sessions come from ``exchange_calendars``, read once per calendar into plain arrays
(:class:`SessionCalendar`); per tick the book only compares floats against a cached local-day
window, so no calendar call happens on the hot path.

* The session of a tick is the calendar session of its local date (exchange time zone); a tick on a
  non-session date (weekend, holiday) belongs to the last session before it.
* Previous close = the last public price of the calendar's previous session up to its close (plus a
  five-minute grace for closing prints; a later after-hours price only when there is nothing earlier),
  divided by the ratio of every known split effective after that session and up to the current one.
  When that close is not known (first session seen, or a gap in the data) the tick's own
  ``previous_close`` is used.
* ``as_of`` of a snapshot is the public view time ``now - delay``; ``market_state`` is the calendar's
  state at that time: ``pre-open``, ``open``, ``lunch``, ``closed`` (``unknown`` outside the calendar).
"""

from __future__ import annotations

import bisect
import math
import warnings
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from newsroom.common.events import QuoteUpdated, TickReceived

__all__ = [
    "DEFAULT_DELAY_MINUTES",
    "DEFAULT_EXCHANGES",
    "DEFAULT_INSTRUMENT_SPECS",
    "CalendarDay",
    "ExchangeSpec",
    "QuoteBook",
    "RejectCode",
    "Rejection",
    "Session",
    "SessionCalendar",
    "SplitSpec",
    "session_calendar",
]

DEFAULT_DELAY_MINUTES = 20
CALENDAR_START = date(1990, 1, 1)
_CENT = Decimal("0.01")
_SPLIT_QUANTUM = Decimal("0.0001")
_HUNDRED = Decimal(100)
_CLOSE_GRACE_S = 300.0  # closing-auction prints stamped just after the close still make the close


# --------------------------------------------------------------------------- exchanges


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    """How an exchange code the site shows maps to a calendar and a currency."""

    mic: str
    """exchange_calendars code, e.g. ``XNYS``."""
    currency: str | None
    """ISO currency of prices (``None`` for index points)."""
    pre_open: timedelta = timedelta(hours=1)
    """How long before the open the market counts as ``pre-open`` (before that: ``closed``)."""
    close_time: time = time(16, 0)
    """Local close used by feeds when the calendar has no session for a date."""


_NYSE = ExchangeSpec("XNYS", "USD", pre_open=timedelta(hours=5, minutes=30), close_time=time(16, 0))
_NASDAQ = ExchangeSpec("XNAS", "USD", pre_open=timedelta(hours=5, minutes=30), close_time=time(16, 0))
_TYO = ExchangeSpec("XTKS", "JPY", pre_open=timedelta(hours=1), close_time=time(15, 0))

DEFAULT_EXCHANGES: Mapping[str, ExchangeSpec] = MappingProxyType(
    {"NYSE": _NYSE, "NASDAQ": _NASDAQ, "TYO": _TYO}
)
"""Exchange code as the site shows it -> calendar and currency."""

DEFAULT_INSTRUMENT_SPECS: Mapping[str, ExchangeSpec] = MappingProxyType(
    {
        "INDEX:N225": ExchangeSpec("XTKS", None, pre_open=timedelta(hours=1), close_time=time(15, 0)),
        "INDEX:GSPC": ExchangeSpec("XNYS", None, pre_open=timedelta(hours=5, minutes=30)),
        "INDEX:DJI": ExchangeSpec("XNYS", None, pre_open=timedelta(hours=5, minutes=30)),
        "INDEX:IXIC": ExchangeSpec("XNAS", None, pre_open=timedelta(hours=5, minutes=30)),
        "INDEX:NDX": ExchangeSpec("XNAS", None, pre_open=timedelta(hours=5, minutes=30)),
    }
)
"""Per-instrument overrides for instruments whose exchange code is not a venue (indices)."""


# --------------------------------------------------------------------------- calendars


class Session:
    """One trading session (times are UTC epoch seconds); ``previous`` is the calendar's previous session.

    ``index`` is -1 for a synthetic session outside the calendar's range (no open/close known).
    """

    __slots__ = ("break_end", "break_start", "close", "date", "index", "open", "previous")

    def __init__(
        self,
        day: date,
        index: int,
        open_: float,
        close: float,
        break_start: float | None,
        break_end: float | None,
        previous: date | None,
    ) -> None:
        self.date = day
        self.index = index
        self.open = open_
        self.close = close
        self.break_start = break_start
        self.break_end = break_end
        self.previous = previous

    @property
    def synthetic(self) -> bool:
        """True when the calendar does not cover this date."""
        return self.index < 0

    def __repr__(self) -> str:
        return f"Session({self.date.isoformat()}, previous={self.previous})"


class CalendarDay:
    """A local calendar day of one exchange: its UTC window and the sessions it resolves to."""

    __slots__ = ("end", "local_date", "session", "start", "tick_session")

    def __init__(
        self, local_date: date, start: float, end: float, session: Session | None, tick_session: Session
    ) -> None:
        self.local_date = local_date
        self.start = start
        self.end = end
        self.session = session
        """The session held on this date, or ``None`` (weekend, holiday, out of range)."""
        self.tick_session = tick_session
        """The session a tick on this date belongs to (this date's, else the last one before it)."""


def _epoch(value: Any) -> float | None:
    """A pandas timestamp (or NaT) as UTC epoch seconds."""
    if value is None or value != value:  # NaT compares unequal to itself
        return None
    return float(value.timestamp())


class SessionCalendar:
    """An exchange calendar read once into plain arrays; lookups are cached per local date."""

    def __init__(self, mic: str, *, start: date = CALENDAR_START) -> None:
        import exchange_calendars as xcals  # imported lazily: the import is slow

        with warnings.catch_warnings():  # pandas deprecation noise from inside exchange_calendars
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                cal = xcals.get_calendar(mic, start=start.isoformat())
            except ValueError:  # start before the calendar's bound: take the earliest it allows
                bound_min = xcals.get_calendar(mic).bound_min()
                cal = xcals.get_calendar(mic, start=bound_min)
            sched = cal.schedule
        self.mic = mic
        self.tz = ZoneInfo(str(cal.tz))
        self._dates: list[date] = [ts.date() for ts in sched.index]
        opens = [_epoch(v) for v in sched["open"]]
        closes = [_epoch(v) for v in sched["close"]]
        has_breaks = "break_start" in sched.columns
        bstarts = [_epoch(v) for v in sched["break_start"]] if has_breaks else [None] * len(opens)
        bends = [_epoch(v) for v in sched["break_end"]] if has_breaks else [None] * len(opens)
        self._sessions: dict[date, Session] = {}
        prev: date | None = None
        for i, day in enumerate(self._dates):
            o, c = opens[i], closes[i]
            if o is None or c is None:
                continue
            self._sessions[day] = Session(day, i, o, c, bstarts[i], bends[i], prev)
            prev = day
        self.first_date = self._dates[0]
        self.last_date = self._dates[-1]
        self._days: dict[date, CalendarDay] = {}
        self._last: CalendarDay | None = None

    # -- lookups

    def in_range(self, day: date) -> bool:
        """Whether the calendar covers ``day``."""
        return self.first_date <= day <= self.last_date

    def session(self, day: date) -> Session | None:
        """The session held on ``day``, if any."""
        return self._sessions.get(day)

    def session_for_date(self, day: date) -> Session:
        """The session a tick dated ``day`` (local) belongs to; synthetic outside the calendar's range."""
        return self.local_day(day).tick_session

    def previous_session(self, day: date) -> Session | None:
        """The last session strictly before ``day``."""
        i = bisect.bisect_left(self._dates, day) - 1
        return self._sessions[self._dates[i]] if i >= 0 and self.in_range(day) else None

    def local_day(self, day: date) -> CalendarDay:
        """The cached :class:`CalendarDay` of a local date."""
        cached = self._days.get(day)
        if cached is not None:
            return cached
        start = datetime.combine(day, time(0), tzinfo=self.tz).timestamp()
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz).timestamp()
        session = self._sessions.get(day)
        tick_session = session
        if tick_session is None:
            if self.in_range(day) and day > self.first_date:
                tick_session = self.previous_session(day)
            if tick_session is None:
                tick_session = Session(day, -1, math.nan, math.nan, None, None, None)
        cached = CalendarDay(day, start, end, session, tick_session)
        self._days[day] = cached
        return cached

    def day(self, ts: float) -> CalendarDay:
        """The local day holding UTC epoch second ``ts`` (one float compare when it is the last one)."""
        last = self._last
        if last is not None and last.start <= ts < last.end:
            return last
        local = datetime.fromtimestamp(ts, self.tz).date()
        found = self.local_day(local)
        self._last = found
        return found

    def state(self, ts: float, pre_open: timedelta) -> str:
        """Market state at UTC epoch second ``ts``: pre-open, open, lunch, closed or unknown."""
        day = self.day(ts)
        if not self.in_range(day.local_date):
            return "unknown"
        s = day.session
        if s is None or ts >= s.close:
            return "closed"
        if ts < s.open:
            return "pre-open" if ts >= s.open - pre_open.total_seconds() else "closed"
        if s.break_start is not None and s.break_end is not None and s.break_start <= ts < s.break_end:
            return "lunch"
        return "open"


@cache
def session_calendar(mic: str) -> SessionCalendar:
    """The shared :class:`SessionCalendar` of one exchange (built once per process)."""
    return SessionCalendar(mic)


# --------------------------------------------------------------------------- rejections


class RejectCode(StrEnum):
    """Machine-readable reasons a tick is not applied."""

    INVALID_PRICE = "invalid_price"
    NON_POSITIVE_PRICE = "non_positive_price"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    UNKNOWN_EXCHANGE = "unknown_exchange"
    FUTURE_TIMESTAMP = "future_timestamp"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A tick that was not applied, with a reason code and a human-readable explanation."""

    code: RejectCode
    reason: str
    instrument_id: str
    tick: TickReceived


# --------------------------------------------------------------------------- per-instrument state

SplitSpec = tuple[date, Decimal | int | float | str]
"""(first session on which the new share count trades, ratio new:old) — 5 for a 5:1 split."""

_Buffered = tuple[float, Decimal, int, Decimal | None]  # (exchange ts, price, volume, previous_close hint)


class _Instrument:
    """Mutable state of one instrument: the delay buffer and the public (delayed) view."""

    __slots__ = (
        "buffer",
        "calendar",
        "close_price",
        "currency",
        "day_high",
        "day_low",
        "day_open",
        "delay_minutes",
        "delay_s",
        "dirty",
        "emitted_state",
        "exchange",
        "hw_keys",
        "hw_ts",
        "instrument_id",
        "last_emit",
        "last_ts",
        "pending",
        "pre_open",
        "prev_close",
        "price",
        "session",
        "splits",
        "symbol",
        "volume",
    )

    def __init__(
        self,
        symbol: str,
        exchange: str,
        spec: ExchangeSpec,
        calendar: SessionCalendar,
        delay: timedelta,
        splits: list[tuple[date, Decimal]],
    ) -> None:
        self.symbol = symbol
        self.exchange = exchange
        self.instrument_id = f"{exchange}:{symbol}"
        self.currency = spec.currency
        self.pre_open = spec.pre_open
        self.calendar = calendar
        self.delay_s = delay.total_seconds()
        self.delay_minutes = int(self.delay_s // 60)  # "delayed at least N minutes"
        self.splits = splits
        self.buffer: deque[_Buffered] = deque()
        self.pending = False
        self.hw_ts = -math.inf
        self.hw_keys: set[tuple[Decimal, int | None]] = set()
        self.session: Session | None = None
        self.price: Decimal | None = None
        self.prev_close: Decimal | None = None
        self.close_price: Decimal | None = None
        self.day_open: Decimal | None = None
        self.day_high: Decimal | None = None
        self.day_low: Decimal | None = None
        self.volume = 0
        self.last_ts = -math.inf
        self.dirty = False
        self.last_emit = -math.inf
        self.emitted_state: str | None = None


def _as_delay(value: timedelta | int) -> timedelta:
    """A delay given as a timedelta or as whole minutes."""
    delay = value if isinstance(value, timedelta) else timedelta(minutes=value)
    if delay < timedelta(0):
        raise ValueError(f"delay must not be negative, got {value!r}")
    return delay


def _to_ts(value: datetime) -> float:
    """UTC epoch seconds of a datetime; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _iso(ts: float) -> str:
    """UTC epoch seconds as an ISO 8601 UTC timestamp."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


# Prices a quote can have: changes and percentages of any two of them fit decimal's 28 digits.
LOWEST_PRICE = Decimal("0.000001")
HIGHEST_PRICE = Decimal("1000000000")


def _valid_hint(value: Decimal | None) -> Decimal | None:
    """A usable previous-close hint (finite, within the prices a quote can have) or ``None``."""
    if value is None or not value.is_finite() or not LOWEST_PRICE <= value <= HIGHEST_PRICE:
        return None
    return value


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# --------------------------------------------------------------------------- the book


class QuoteBook:
    """Per-instrument quote state behind a delay line; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        delay: timedelta | int = timedelta(minutes=DEFAULT_DELAY_MINUTES),
        delay_by_exchange: Mapping[str, timedelta | int] | None = None,
        coalesce: timedelta = timedelta(seconds=1),
        instruments: Collection[str] | Callable[[str], bool] | None = None,
        splits: Mapping[str, Iterable[SplitSpec]] | None = None,
        exchanges: Mapping[str, ExchangeSpec] | None = None,
        instrument_specs: Mapping[str, ExchangeSpec] | None = None,
        future_tolerance: timedelta = timedelta(minutes=5),
    ) -> None:
        """Configure the book.

        ``delay`` is the default delay (a timedelta, or an int of minutes), ``delay_by_exchange``
        overrides it per exchange code;
        ``coalesce`` is the minimum interval between two snapshots of one instrument; ``instruments``
        is the set of known instrument ids (``"NASDAQ:AAPL"``) or a predicate on them (``None`` accepts
        any instrument of a known exchange); ``splits`` maps instrument ids to ``(effective session
        date, ratio)``; ``exchanges``/``instrument_specs`` map exchange codes / instrument ids to
        calendars and currencies; ticks more than ``future_tolerance`` ahead of ``received_at`` are
        rejected.
        """
        self.delay = _as_delay(delay)
        self.delay_by_exchange = {k.upper(): _as_delay(v) for k, v in (delay_by_exchange or {}).items()}
        self.coalesce = coalesce
        self._coalesce_s = coalesce.total_seconds()
        if instruments is None or callable(instruments):
            self._known: Callable[[str], bool] | None = instruments
        else:
            known = frozenset(i.upper() for i in instruments)
            self._known = known.__contains__
        self._splits: dict[str, list[tuple[date, Decimal]]] = {
            iid.upper(): sorted((d, Decimal(str(r))) for d, r in entries)
            for iid, entries in (splits or {}).items()
        }
        self._exchanges = dict(DEFAULT_EXCHANGES if exchanges is None else exchanges)
        specs = DEFAULT_INSTRUMENT_SPECS if instrument_specs is None else instrument_specs
        self._instrument_specs = {k.upper(): v for k, v in specs.items()}
        self._future_s = future_tolerance.total_seconds()
        self._by_key: dict[tuple[str, str], _Instrument | RejectCode] = {}
        self._by_id: dict[str, _Instrument] = {}
        self._pending: list[_Instrument] = []
        self.accepted = 0
        self.rejected: dict[str, int] = {}

    # ------------------------------------------------------------------ configuration lookups

    def delay_for(self, exchange: str) -> timedelta:
        """Delay of public snapshots for an exchange code."""
        return self.delay_by_exchange.get(exchange.upper(), self.delay)

    def spec_for(self, instrument_id: str) -> ExchangeSpec | None:
        """Calendar/currency spec of an instrument id, or ``None`` when its exchange is unknown."""
        iid = instrument_id.upper()
        spec = self._instrument_specs.get(iid)
        if spec is None:
            spec = self._exchanges.get(iid.partition(":")[0])
        return spec

    def market_state(self, exchange: str, at: datetime) -> str:
        """Calendar market state of an exchange code (or instrument id) at ``at``."""
        spec = self.spec_for(exchange if ":" in exchange else f"{exchange}:")
        if spec is None:
            return "unknown"
        return session_calendar(spec.mic).state(_to_ts(at), spec.pre_open)

    @property
    def instrument_ids(self) -> list[str]:
        """Instruments the book has accepted ticks for."""
        return list(self._by_id)

    @property
    def pending_ticks(self) -> int:
        """Ticks accepted but not yet public (inside the delay line)."""
        return sum(len(i.buffer) for i in self._by_id.values())

    # ------------------------------------------------------------------ ingest

    def _instrument(self, exchange: str, symbol: str) -> _Instrument | RejectCode:
        """Resolve (and create on first sight) the state of an instrument, or why it is unknown."""
        ex, sym = exchange.strip().upper(), symbol.strip().upper()
        iid = f"{ex}:{sym}"
        found: _Instrument | RejectCode | None = self._by_id.get(iid)
        if found is None:
            spec = self.spec_for(iid)
            if spec is None:
                found = RejectCode.UNKNOWN_EXCHANGE
            elif self._known is not None and not self._known(iid):
                found = RejectCode.UNKNOWN_INSTRUMENT
            else:
                inst = _Instrument(
                    sym, ex, spec, session_calendar(spec.mic), self.delay_for(ex), self._splits.get(iid, [])
                )
                self._by_id[iid] = inst
                found = inst
        if len(self._by_key) > 100_000:  # bound the memory garbage symbols can take
            self._by_key = {k: v for k, v in self._by_key.items() if isinstance(v, _Instrument)}
        self._by_key[(exchange, symbol)] = found
        return found

    def apply(self, tick: TickReceived, *, received_at: datetime | float) -> Rejection | None:
        """Validate a tick and put it on the delay line; return why it was rejected, else ``None``.

        ``received_at`` is when the tick arrived (a datetime, or UTC epoch seconds as a float).
        Rejected ticks change nothing. Duplicates (same instrument, exchange time, price and
        sequence) and ticks older than the newest accepted one are rejected, so re-applying
        already-seen ticks after a restart never double-counts volume.
        """
        found = self.apply_values(
            tick.exchange,
            tick.symbol,
            tick.price,
            tick.volume,
            _to_ts(tick.exchange_time),
            tick.previous_close,
            tick.sequence,
            received_at if isinstance(received_at, float) else _to_ts(received_at),
        )
        if found is None:
            return None
        code, reason = found
        return Rejection(code, reason, f"{tick.exchange}:{tick.symbol}".upper(), tick)

    def apply_values(
        self,
        exchange: str,
        symbol: str,
        price: Decimal,
        volume: int,
        ts: float,
        previous_close: Decimal | None,
        sequence: int | None,
        received_ts: float,
    ) -> tuple[RejectCode, str] | None:
        """:meth:`apply` on a tick's fields (times as UTC epoch seconds): the hot path of a consumer.

        Returns ``(code, reason)`` of a rejection (counted in :attr:`rejected`), else ``None``.
        ``volume`` must not be negative (``TickReceived`` guarantees it).
        """
        inst = self._by_key.get((exchange, symbol))
        if inst is None:
            inst = self._instrument(exchange, symbol)
        if not isinstance(inst, _Instrument):
            what = "exchange" if inst is RejectCode.UNKNOWN_EXCHANGE else "instrument"
            return self._rejected(inst, f"unknown {what} {exchange}:{symbol}")
        if not price.is_finite():
            return self._rejected(RejectCode.INVALID_PRICE, f"price {price} is not a finite number")
        if price <= 0:
            return self._rejected(RejectCode.NON_POSITIVE_PRICE, f"price {price} is not positive")
        if not LOWEST_PRICE <= price <= HIGHEST_PRICE:
            return self._rejected(
                RejectCode.INVALID_PRICE, f"price {price} is outside {LOWEST_PRICE}–{HIGHEST_PRICE}"
            )
        if ts > received_ts + self._future_s:
            return self._rejected(
                RejectCode.FUTURE_TIMESTAMP,
                f"exchange time {_iso(ts)} is more than {self._future_s:g}s "
                f"ahead of receipt {_iso(received_ts)}",
            )
        hw = inst.hw_ts
        key = (price, sequence)
        if ts == hw:
            if key in inst.hw_keys:
                return self._rejected(RejectCode.DUPLICATE, "same exchange time, price and sequence")
            inst.hw_keys.add(key)
        elif ts > hw:
            inst.hw_ts = ts
            inst.hw_keys = {key}
        else:
            return self._rejected(
                RejectCode.OUT_OF_ORDER, f"exchange time {_iso(ts)} is before the newest accepted tick"
            )
        inst.buffer.append((ts, price, volume, previous_close))
        if not inst.pending:
            inst.pending = True
            self._pending.append(inst)
        self.accepted += 1
        return None

    def _rejected(self, code: RejectCode, reason: str) -> tuple[RejectCode, str]:
        self.rejected[code] = self.rejected.get(code, 0) + 1
        return code, reason

    # ------------------------------------------------------------------ delay line -> public state

    def _adjusted_close(self, inst: _Instrument, close: Decimal, after: date, upto: date) -> Decimal:
        """Divide ``close`` (of session ``after``) by every split effective in (after, upto]."""
        adjusted = close
        for effective, ratio in inst.splits:
            if after < effective <= upto and ratio > 0:
                adjusted = adjusted / ratio
        if adjusted is not close and adjusted.as_tuple().exponent < -4:  # type: ignore[operator]
            adjusted = adjusted.quantize(_SPLIT_QUANTUM, rounding=ROUND_HALF_UP)
        return adjusted

    def _publish(
        self, inst: _Instrument, ts: float, price: Decimal, volume: int, hint: Decimal | None
    ) -> None:
        """Move one due tick into the public state of its instrument."""
        session = inst.calendar.day(ts).tick_session
        current = inst.session
        if session is not current:
            prev_close: Decimal | None = None
            last_close = inst.close_price if inst.close_price is not None else inst.price
            if (
                current is not None
                and last_close is not None
                and session.previous is not None
                and session.previous == current.date
            ):
                # (a split can round a tiny close to nothing: then no previous close, not a zero one)
                prev_close = _valid_hint(self._adjusted_close(inst, last_close, current.date, session.date))
            if prev_close is None:
                prev_close = _valid_hint(hint)
            inst.session = session
            inst.prev_close = prev_close
            inst.day_open = inst.day_high = inst.day_low = price
            inst.volume = volume
            inst.close_price = None
        else:
            if price > inst.day_high:  # type: ignore[operator]
                inst.day_high = price
            elif price < inst.day_low:  # type: ignore[operator]
                inst.day_low = price
            inst.volume += volume
            if inst.prev_close is None and hint is not None:
                inst.prev_close = _valid_hint(hint)
        if ts <= session.close + _CLOSE_GRACE_S or session.index < 0:
            inst.close_price = price  # the session's close: its last price up to the close
        inst.price = price
        inst.last_ts = ts
        inst.dirty = True

    def _snapshot(self, inst: _Instrument, view_ts: float, state: str) -> QuoteUpdated:
        price = inst.price
        assert price is not None
        prev = inst.prev_close
        change = change_pct = None
        if prev is not None:
            change = price - prev
            change_pct = (change * _HUNDRED / prev).quantize(_CENT, rounding=ROUND_HALF_UP)
        return QuoteUpdated(
            symbol=inst.symbol,
            exchange=inst.exchange,
            currency=inst.currency,
            price=price,
            previous_close=prev,
            change=change,
            change_percent=change_pct,
            day_open=inst.day_open,
            day_high=inst.day_high,
            day_low=inst.day_low,
            volume=inst.volume,
            market_state=state,
            as_of=datetime.fromtimestamp(view_ts, UTC),
            delay_minutes=inst.delay_minutes,
        )

    def due(self, now: datetime) -> list[QuoteUpdated]:
        """Make public every buffered tick at least its exchange's delay old; return changed snapshots.

        At most one snapshot per instrument per coalescing interval (``now`` is the clock); a change
        held back by coalescing comes out of a later call. A change of market state (open -> lunch
        -> closed) also yields a snapshot.
        """
        now_ts = _to_ts(now)
        if self._pending:
            still: list[_Instrument] = []
            for inst in self._pending:
                buf = inst.buffer
                cutoff = now_ts - inst.delay_s
                while buf and buf[0][0] <= cutoff:
                    ts, price, volume, hint = buf.popleft()
                    self._publish(inst, ts, price, volume, hint)
                if buf:
                    still.append(inst)
                else:
                    inst.pending = False
            self._pending = still
        out: list[QuoteUpdated] = []
        states: dict[tuple[str, float, timedelta], str] = {}
        coalesce = self._coalesce_s
        for inst in self._by_id.values():
            if inst.price is None:
                continue
            view_ts = now_ts - inst.delay_s
            skey = (inst.calendar.mic, view_ts, inst.pre_open)
            state = states.get(skey)
            if state is None:
                state = states[skey] = inst.calendar.state(view_ts, inst.pre_open)
            if (inst.dirty or state != inst.emitted_state) and now_ts - inst.last_emit >= coalesce:
                out.append(self._snapshot(inst, view_ts, state))
                inst.dirty = False
                inst.emitted_state = state
                inst.last_emit = now_ts
        return out

    def mark_dirty(self, instrument_ids: Iterable[str] | None = None) -> None:
        """Make the next :meth:`due` emit these instruments (all when ``None``) again, coalescing aside.

        For a snapshot that was taken but could not be published, and after a rebuild.
        """
        targets = (
            self._by_id.values()
            if instrument_ids is None
            else [i for i in (self._by_id.get(iid.upper()) for iid in instrument_ids) if i is not None]
        )
        for inst in targets:
            if inst.price is not None:
                inst.dirty = True
                inst.last_emit = -math.inf

    def snapshot(self, instrument_id: str, now: datetime) -> QuoteUpdated | None:
        """The current public snapshot of one instrument (ignores coalescing; does not advance the line)."""
        inst = self._by_id.get(instrument_id.upper())
        if inst is None or inst.price is None:
            return None
        view_ts = _to_ts(now) - inst.delay_s
        return self._snapshot(inst, view_ts, inst.calendar.state(view_ts, inst.pre_open))

    # ------------------------------------------------------------------ restart safety

    def snapshot_state(self) -> dict[str, Any]:
        """A JSON-serialisable copy of all state (public view, delay buffer, dedup high-water marks)."""
        instruments: dict[str, Any] = {}
        for iid, inst in self._by_id.items():
            instruments[iid] = {
                "symbol": inst.symbol,
                "exchange": inst.exchange,
                "hw_ts": None if inst.hw_ts == -math.inf else inst.hw_ts,
                "hw_keys": [[str(p), s] for p, s in sorted(inst.hw_keys, key=lambda k: (k[0], k[1] or 0))],
                "buffer": [[ts, str(p), v, _str(h)] for ts, p, v, h in inst.buffer],
                "session": None if inst.session is None else inst.session.date.isoformat(),
                "price": _str(inst.price),
                "prev_close": _str(inst.prev_close),
                "close_price": _str(inst.close_price),
                "day_open": _str(inst.day_open),
                "day_high": _str(inst.day_high),
                "day_low": _str(inst.day_low),
                "volume": inst.volume,
                "last_ts": None if inst.last_ts == -math.inf else inst.last_ts,
                "dirty": inst.dirty,
                "last_emit": None if inst.last_emit == -math.inf else inst.last_emit,
                "emitted_state": inst.emitted_state,
            }
        return {"version": 1, "accepted": self.accepted, "instruments": instruments}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace this book's instrument state with one taken by :meth:`snapshot_state`."""
        if state.get("version") != 1:
            raise ValueError(f"unsupported quote book state version {state.get('version')!r}")
        self._by_key.clear()
        self._by_id.clear()
        self._pending = []
        self.accepted = int(state.get("accepted", 0))
        for doc in state["instruments"].values():
            found = self._instrument(doc["exchange"], doc["symbol"])
            if not isinstance(found, _Instrument):
                continue  # no longer known under this configuration
            inst = found
            inst.hw_ts = -math.inf if doc["hw_ts"] is None else float(doc["hw_ts"])
            inst.hw_keys = {(Decimal(p), s) for p, s in doc["hw_keys"]}
            inst.buffer = deque((float(ts), Decimal(p), int(v), _dec(h)) for ts, p, v, h in doc["buffer"])
            if inst.buffer:
                inst.pending = True
                self._pending.append(inst)
            if doc["session"] is not None:
                inst.session = inst.calendar.session_for_date(date.fromisoformat(doc["session"]))
            inst.price = _dec(doc["price"])
            inst.prev_close = _dec(doc["prev_close"])
            inst.close_price = _dec(doc.get("close_price"))
            inst.day_open = _dec(doc["day_open"])
            inst.day_high = _dec(doc["day_high"])
            inst.day_low = _dec(doc["day_low"])
            inst.volume = int(doc["volume"])
            inst.last_ts = -math.inf if doc["last_ts"] is None else float(doc["last_ts"])
            inst.dirty = bool(doc["dirty"])
            inst.last_emit = -math.inf if doc["last_emit"] is None else float(doc["last_emit"])
            inst.emitted_state = doc["emitted_state"]

    @classmethod
    def restore(cls, state: Mapping[str, Any], **config: Any) -> QuoteBook:
        """A new book built with ``config`` (the constructor's keywords) holding ``state``."""
        book = cls(**config)
        book.load_state(state)
        return book
