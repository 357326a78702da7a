"""One instrument's state: its lane on the delay line, its de-duplication marks and its public view.

The public view is what due ticks made of it (:meth:`Instrument.publish`): the session, price,
previous close, day open/high/low and volume, by the rules of :mod:`newsroom.quotes.domain`.
:meth:`Instrument.snapshot` is that view as a public ``QuoteUpdated``; :meth:`Instrument.to_doc`
and :meth:`Instrument.load_doc` carry the whole state across a restart.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from newsroom.common.events import QuoteUpdated

from .calendars import Session, SessionCalendar
from .delay import Held, Lane
from .domain import CLOSE_GRACE_S, change_percent, split_adjusted, valid_hint
from .exchanges import ExchangeSpec

__all__ = ["Instrument"]


class Instrument(Lane):
    """Mutable state of one instrument: the delay lane it inherits and the public (delayed) view."""

    __slots__ = (
        "calendar",
        "close_price",
        "currency",
        "day_high",
        "day_low",
        "day_open",
        "delay_minutes",
        "dirty",
        "emitted_state",
        "exchange",
        "hw_keys",
        "hw_ts",
        "instrument_id",
        "last_emit",
        "last_ts",
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
        super().__init__(delay)
        self.symbol = symbol
        self.exchange = exchange
        self.instrument_id = f"{exchange}:{symbol}"
        self.currency = spec.currency
        self.pre_open = spec.pre_open
        self.calendar = calendar
        self.delay_minutes = int(self.delay_s // 60)  # "delayed at least N minutes"
        self.splits = splits
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

    def publish(self, tick: Held) -> None:
        """Move one due tick into the public view."""
        ts, price, volume, hint = tick
        session = self.calendar.day(ts).tick_session
        current = self.session
        if session is not current:
            prev_close: Decimal | None = None
            last_close = self.close_price if self.close_price is not None else self.price
            if (
                current is not None
                and last_close is not None
                and session.previous is not None
                and session.previous == current.date
            ):
                # (a split can round a tiny close to nothing: then no previous close, not a zero one)
                prev_close = valid_hint(split_adjusted(last_close, self.splits, current.date, session.date))
            if prev_close is None:
                prev_close = valid_hint(hint)
            self.session = session
            self.prev_close = prev_close
            self.day_open = self.day_high = self.day_low = price
            self.volume = volume
            self.close_price = None
        else:
            if price > self.day_high:  # type: ignore[operator]
                self.day_high = price
            elif price < self.day_low:  # type: ignore[operator]
                self.day_low = price
            self.volume += volume
            if self.prev_close is None and hint is not None:
                self.prev_close = valid_hint(hint)
        if ts <= session.close + CLOSE_GRACE_S or session.index < 0:
            self.close_price = price  # the session's close: its last price up to the close
        self.price = price
        self.last_ts = ts
        self.dirty = True

    def snapshot(self, view_ts: float, state: str) -> QuoteUpdated:
        """The public view as seen at ``view_ts`` (``now - delay``) in market state ``state``."""
        price = self.price
        assert price is not None
        prev = self.prev_close
        change = change_pct = None
        if prev is not None:
            change = price - prev
            change_pct = change_percent(change, prev)
        return QuoteUpdated(
            symbol=self.symbol,
            exchange=self.exchange,
            currency=self.currency,
            price=price,
            previous_close=prev,
            change=change,
            change_percent=change_pct,
            day_open=self.day_open,
            day_high=self.day_high,
            day_low=self.day_low,
            volume=self.volume,
            market_state=state,
            as_of=datetime.fromtimestamp(view_ts, UTC),
            delay_minutes=self.delay_minutes,
        )

    def to_doc(self) -> dict[str, Any]:
        """A JSON-serialisable copy of the state (public view, held ticks, de-duplication marks)."""
        return {
            "symbol": self.symbol,
            "exchange": self.exchange,
            "hw_ts": None if self.hw_ts == -math.inf else self.hw_ts,
            "hw_keys": [[str(p), s] for p, s in sorted(self.hw_keys, key=lambda k: (k[0], k[1] or 0))],
            "buffer": [[ts, str(p), v, _str(h)] for ts, p, v, h in self.held],
            "session": None if self.session is None else self.session.date.isoformat(),
            "price": _str(self.price),
            "prev_close": _str(self.prev_close),
            "close_price": _str(self.close_price),
            "day_open": _str(self.day_open),
            "day_high": _str(self.day_high),
            "day_low": _str(self.day_low),
            "volume": self.volume,
            "last_ts": None if self.last_ts == -math.inf else self.last_ts,
            "dirty": self.dirty,
            "last_emit": None if self.last_emit == -math.inf else self.last_emit,
            "emitted_state": self.emitted_state,
        }

    def load_doc(self, doc: Mapping[str, Any]) -> None:
        """Take the state of a :meth:`to_doc` copy (the lane is not yet visited by a line)."""
        self.hw_ts = -math.inf if doc["hw_ts"] is None else float(doc["hw_ts"])
        self.hw_keys = {(Decimal(p), s) for p, s in doc["hw_keys"]}
        self.held = deque((float(ts), Decimal(p), int(v), _dec(h)) for ts, p, v, h in doc["buffer"])
        if doc["session"] is not None:
            self.session = self.calendar.session_for_date(date.fromisoformat(doc["session"]))
        self.price = _dec(doc["price"])
        self.prev_close = _dec(doc["prev_close"])
        self.close_price = _dec(doc.get("close_price"))
        self.day_open = _dec(doc["day_open"])
        self.day_high = _dec(doc["day_high"])
        self.day_low = _dec(doc["day_low"])
        self.volume = int(doc["volume"])
        self.last_ts = -math.inf if doc["last_ts"] is None else float(doc["last_ts"])
        self.dirty = bool(doc["dirty"])
        self.last_emit = -math.inf if doc["last_emit"] is None else float(doc["last_emit"])
        self.emitted_state = doc["emitted_state"]


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
