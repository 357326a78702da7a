"""Exchange calendars read once into plain arrays, so that a tick's session is a float compare.

Sessions come from ``exchange_calendars``, read once per calendar (:class:`SessionCalendar`); per
tick the book only compares floats against a cached local-day window, so no calendar call happens
on the hot path. Times are UTC epoch seconds.

* The session of a tick is the calendar session of its local date (exchange time zone); a tick on a
  non-session date (weekend, holiday) belongs to the last session before it.
* The market state at a time is ``pre-open``, ``open``, ``lunch``, ``closed`` (``unknown`` outside
  the calendar).
"""

from __future__ import annotations

import bisect
import math
import warnings
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["CALENDAR_START", "CalendarDay", "Session", "SessionCalendar", "session_calendar"]

CALENDAR_START = date(1990, 1, 1)


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
