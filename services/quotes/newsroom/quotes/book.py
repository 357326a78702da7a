"""The quote book: every instrument's state behind the delay line, fed ticks, giving public snapshots.

No I/O and no wall clock: every time comes in as an argument (``received_at``, ``now``).

:meth:`QuoteBook.apply` checks a tick by the rules of :mod:`newsroom.quotes.domain` and holds it on
the :class:`~newsroom.quotes.delay.DelayLine`; :meth:`QuoteBook.due` makes public every held tick
whose exchange time is at least its exchange's delay old and returns at most one snapshot per
instrument per coalescing interval. A public snapshot therefore only ever shows what was true
``delay_minutes`` ago. :meth:`QuoteBook.snapshot_state` and :meth:`QuoteBook.restore` carry the
whole book across a restart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from newsroom.common.events import QuoteUpdated, TickReceived

from .calendars import session_calendar
from .delay import DelayLine
from .domain import (
    DEFAULT_DELAY_MINUTES,
    HIGHEST_PRICE,
    LOWEST_PRICE,
    RejectCode,
    Rejection,
    SplitSpec,
    as_delay,
    iso,
    to_ts,
)
from .exchanges import DEFAULT_EXCHANGES, DEFAULT_INSTRUMENT_SPECS, ExchangeSpec
from .instrument import Instrument

__all__ = ["QuoteBook"]


class QuoteBook:
    """Per-instrument quote state behind a delay line; see the module docstring."""

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
        self.delay = as_delay(delay)
        self.delay_by_exchange = {k.upper(): as_delay(v) for k, v in (delay_by_exchange or {}).items()}
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
        self._by_key: dict[tuple[str, str], Instrument | RejectCode] = {}
        self._by_id: dict[str, Instrument] = {}
        self._line: DelayLine[Instrument] = DelayLine()
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
        return session_calendar(spec.mic).state(to_ts(at), spec.pre_open)

    @property
    def instrument_ids(self) -> list[str]:
        """Instruments the book has accepted ticks for."""
        return list(self._by_id)

    @property
    def pending_ticks(self) -> int:
        """Ticks accepted but not yet public (inside the delay line)."""
        return self._line.count

    # ------------------------------------------------------------------ ingest

    def _instrument(self, exchange: str, symbol: str) -> Instrument | RejectCode:
        """Resolve (and create on first sight) the state of an instrument, or why it is unknown."""
        ex, sym = exchange.strip().upper(), symbol.strip().upper()
        iid = f"{ex}:{sym}"
        found: Instrument | RejectCode | None = self._by_id.get(iid)
        if found is None:
            spec = self.spec_for(iid)
            if spec is None:
                found = RejectCode.UNKNOWN_EXCHANGE
            elif self._known is not None and not self._known(iid):
                found = RejectCode.UNKNOWN_INSTRUMENT
            else:
                inst = Instrument(
                    sym, ex, spec, session_calendar(spec.mic), self.delay_for(ex), self._splits.get(iid, [])
                )
                self._by_id[iid] = inst
                found = inst
        if len(self._by_key) > 100_000:  # bound the memory garbage symbols can take
            self._by_key = {k: v for k, v in self._by_key.items() if isinstance(v, Instrument)}
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
            to_ts(tick.exchange_time),
            tick.previous_close,
            tick.sequence,
            received_at if isinstance(received_at, float) else to_ts(received_at),
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
        if not isinstance(inst, Instrument):
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
                f"exchange time {iso(ts)} is more than {self._future_s:g}s "
                f"ahead of receipt {iso(received_ts)}",
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
                RejectCode.OUT_OF_ORDER, f"exchange time {iso(ts)} is before the newest accepted tick"
            )
        self._line.hold(inst, (ts, price, volume, previous_close))
        self.accepted += 1
        return None

    def _rejected(self, code: RejectCode, reason: str) -> tuple[RejectCode, str]:
        self.rejected[code] = self.rejected.get(code, 0) + 1
        return code, reason

    # ------------------------------------------------------------------ delay line -> public state

    def due(self, now: datetime) -> list[QuoteUpdated]:
        """Make public every held tick at least its exchange's delay old; return changed snapshots.

        At most one snapshot per instrument per coalescing interval (``now`` is the clock); a change
        held back by coalescing comes out of a later call. A change of market state (open -> lunch
        -> closed) also yields a snapshot.
        """
        now_ts = to_ts(now)
        self._line.release(now_ts, Instrument.publish)
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
                out.append(inst.snapshot(view_ts, state))
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
        view_ts = to_ts(now) - inst.delay_s
        return inst.snapshot(view_ts, inst.calendar.state(view_ts, inst.pre_open))

    # ------------------------------------------------------------------ restart safety

    def snapshot_state(self) -> dict[str, Any]:
        """A JSON-serialisable copy of all state (public view, delay buffer, dedup high-water marks)."""
        instruments = {iid: inst.to_doc() for iid, inst in self._by_id.items()}
        return {"version": 1, "accepted": self.accepted, "instruments": instruments}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace this book's instrument state with one taken by :meth:`snapshot_state`."""
        if state.get("version") != 1:
            raise ValueError(f"unsupported quote book state version {state.get('version')!r}")
        self._by_key.clear()
        self._by_id.clear()
        self._line.clear()
        self.accepted = int(state.get("accepted", 0))
        for doc in state["instruments"].values():
            found = self._instrument(doc["exchange"], doc["symbol"])
            if not isinstance(found, Instrument):
                continue  # no longer known under this configuration
            found.load_doc(doc)
            self._line.resume(found)

    @classmethod
    def restore(cls, state: Mapping[str, Any], **config: Any) -> QuoteBook:
        """A new book built with ``config`` (the constructor's keywords) holding ``state``."""
        book = cls(**config)
        book.load_state(state)
        return book
