"""The quotes service's engine, without Kafka clients: the book as configured, and batches into it.

* :func:`book_config` is the book's configuration: delays, coalescing, known instruments, splits.
* :func:`ingest` folds a batch of consumed records into a :class:`QuoteBook` (decoded by
  :mod:`newsroom.quotes.ticks`) and reports what happened to each record; it is used both live and
  for the start-up rebuild, so the two agree.
* :class:`QuoteEngine` is what the handlers drive: the book, a batch in, the snapshots due out.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

import structlog
from aiokafka import ConsumerRecord
from prometheus_client import Counter

from newsroom.common.events import TickReceived, new_envelope
from newsroom.common.messaging import Publisher
from newsroom.common.ops import EVENTS_FAILED, EVENTS_PROCESSED
from newsroom.common.records import Record, undecodable
from newsroom.common.settings import Settings
from newsroom.common.topics import SNAPSHOTS

from .book import QuoteBook
from .domain import IGNORED_BY_RULE, SplitSpec
from .exchanges import known_instrument
from .ticks import decode_tick, fast_tick_fields, tick_fields

__all__ = [
    "COALESCE",
    "DELAY_BY_EXCHANGE_MINUTES",
    "KNOWN_SPLITS_FILE",
    "BatchOutcome",
    "Clock",
    "QuoteEngine",
    "book_config",
    "ingest",
    "load_splits",
    "utcnow",
]

KNOWN_SPLITS_FILE = Path(__file__).with_name("splits.csv")
"""Bundled known splits (``instrument_id,effective,ratio``); ``TYO:4063`` 5:1 on 2023-03-29."""

DELAY_BY_EXCHANGE_MINUTES: Mapping[str, int] = {}
"""Per-exchange delay overrides in minutes (the default is ``Settings.quote_delay_minutes``)."""

log = structlog.get_logger("quotes")

COALESCE = timedelta(seconds=1)
"""At most one public snapshot per instrument per this interval."""


class ConsumedRecord(Protocol):
    """The parts of an aiokafka ``ConsumerRecord`` the engine reads."""

    @property
    def value(self) -> bytes | None: ...

    @property
    def timestamp(self) -> int: ...


# --------------------------------------------------------------------------- configuration


def load_splits(path: Path | str) -> dict[str, list[SplitSpec]]:
    """Known splits per instrument id from a CSV (``instrument_id,effective,ratio``; ``#`` comments)."""
    out: dict[str, list[SplitSpec]] = {}
    with Path(path).open(newline="") as fh:
        rows = csv.DictReader(line for line in fh if line.strip() and not line.lstrip().startswith("#"))
        for row in rows:
            try:
                iid = row["instrument_id"].strip().upper()
                effective = date.fromisoformat(row["effective"].strip())
                ratio = Decimal(row["ratio"].strip())
            except (KeyError, AttributeError, ValueError, InvalidOperation) as exc:
                raise ValueError(f"bad split row {row!r} in {path}: {exc}") from exc
            if not ratio.is_finite() or ratio <= 0:
                raise ValueError(f"bad split ratio {ratio} for {iid} in {path}")
            out.setdefault(iid, []).append((effective, ratio))
    return out


def book_config(settings: Settings) -> dict[str, Any]:
    """The :class:`QuoteBook` keywords the service runs with.

    Reads ``quote_delay_by_exchange`` (minutes per exchange code), ``quote_coalesce_seconds`` and
    ``quote_splits_file`` from the settings when they exist there, else the module defaults.
    """
    by_exchange: Mapping[str, int] = (
        getattr(settings, "quote_delay_by_exchange", None) or DELAY_BY_EXCHANGE_MINUTES
    )
    coalesce_s: float | None = getattr(settings, "quote_coalesce_seconds", None)
    splits_file: str | Path | None = getattr(settings, "quote_splits_file", None)
    return {
        "delay": timedelta(minutes=settings.quote_delay_minutes),
        "delay_by_exchange": {k.upper(): timedelta(minutes=v) for k, v in by_exchange.items()},
        "coalesce": COALESCE if coalesce_s is None else timedelta(seconds=coalesce_s),
        "instruments": known_instrument,
        "splits": load_splits(splits_file or KNOWN_SPLITS_FILE),
    }


# --------------------------------------------------------------------------- ingest


@dataclass(slots=True)
class BatchOutcome:
    """What one batch did: ticks applied, rejections by code, and the records to dead-letter."""

    applied: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    poison: list[tuple[int, str]] = field(default_factory=list)
    """(index in the batch, reason) of every record to dead-letter."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Dead-letter reasons by code (``undecodable`` for records that are not ticks)."""


def ingest(book: QuoteBook, records: Sequence[ConsumedRecord], now: float | None = None) -> BatchOutcome:
    """Apply every record of a batch to ``book`` (in order) and say what happened to each.

    A tick counts as received at its record's timestamp (never later than ``now``), so replaying the
    topic after a restart takes the same decisions as the first time did (the future-time rule).
    """
    now_ts = time.time() if now is None else now
    now_ms = now_ts * 1000.0
    out = BatchOutcome()
    apply = book.apply_values
    ignored = out.ignored
    for i, rec in enumerate(records):
        value = rec.value
        fields = fast_tick_fields(value)
        if fields is None:
            tick = decode_tick(value)
            if isinstance(tick, str):
                out.poison.append((i, tick))
                out.rejected["undecodable"] = out.rejected.get("undecodable", 0) + 1
                continue
            fields = tick_fields(tick)
        stamp = rec.timestamp
        rejection = apply(*fields, stamp / 1000.0 if 0 < stamp < now_ms else now_ts)
        if rejection is None:
            out.applied += 1
            continue
        code, reason = rejection
        if code in IGNORED_BY_RULE:
            ignored[code] = ignored.get(code, 0) + 1
        else:
            out.poison.append((i, f"{code}: {reason}"))
            out.rejected[code] = out.rejected.get(code, 0) + 1
    return out


# --------------------------------------------------------------------------- the engine

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


TICK_OUTCOMES = Counter("newsroom_quote_ticks_total", "Quote ticks consumed, by outcome", ["outcome"])
SNAPSHOTS_PUBLISHED = Counter("newsroom_quote_snapshots_total", "Public quote snapshots published")


class QuoteEngine:
    """The book and what the handlers do with it: batches of ticks in, due snapshots out, poison parked.

    ``clock`` is the time the delay line is released at (tests drive it); the book is changed under
    ``lock`` only, so that a batch and the flusher never interleave.
    """

    def __init__(self, book: QuoteBook, publisher: Publisher, *, clock: Clock = utcnow) -> None:
        self.book = book
        self.publisher = publisher
        self.clock = clock
        self.lock = asyncio.Lock()
        service = publisher.service
        self._applied = TICK_OUTCOMES.labels("applied")
        self._processed = EVENTS_PROCESSED.labels(service, TickReceived.TYPE)

    async def take(self, records: Sequence[ConsumerRecord[Any, Any]]) -> BatchOutcome:
        """Apply a batch of ticks, dead-letter its poison, publish what became due.

        A record whose key or headers are not text is parked alone; its neighbours are applied. When
        the dead letters or snapshots are not taken by the broker this raises, and the batch is to be
        delivered again: its applied ticks are duplicates then, which the book skips.
        """
        unreadable = [(rec, reason) for rec in records if (reason := undecodable(rec)) is not None]
        if unreadable:
            records = [rec for rec in records if undecodable(rec) is None]
        async with self.lock:
            outcome = ingest(self.book, records, self.clock().timestamp())
        self._count(outcome)
        poison = [(Record.from_consumer_record(rec), reason) for rec, reason in unreadable]
        poison += [(Record.from_consumer_record(records[i]), reason) for i, reason in outcome.poison]
        if poison:
            await self.publisher.dead_letter_many(poison)
        await self.flush()
        return outcome

    async def flush(self) -> int:
        """Publish every snapshot the delay line released by now; on failure they stay due for the next."""
        async with self.lock:
            snapshots = self.book.due(self.clock())
            if snapshots:
                service = self.publisher.service
                try:
                    await self.publisher.publish(
                        (SNAPSHOTS, s.instrument_id, new_envelope(s, producer=service)) for s in snapshots
                    )
                except BaseException:
                    self.book.mark_dirty(s.instrument_id for s in snapshots)
                    raise
                SNAPSHOTS_PUBLISHED.inc(len(snapshots))
        return len(snapshots)

    async def flushing(self, interval: float) -> None:
        """Release due snapshots every ``interval`` seconds, also while no ticks arrive (until cancelled)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception:  # keep releasing snapshots; the next round retries
                log.exception("flushing due snapshots failed")

    def _count(self, outcome: BatchOutcome) -> None:
        """Add one batch's outcome to the metrics."""
        if outcome.applied:
            self._applied.inc(outcome.applied)
            self._processed.inc(outcome.applied)
        service = self.publisher.service
        for code, n in outcome.ignored.items():
            TICK_OUTCOMES.labels(code).inc(n)
            EVENTS_FAILED.labels(service, f"{TickReceived.TYPE}:{code}").inc(n)
        for code, n in outcome.rejected.items():
            TICK_OUTCOMES.labels(code).inc(n)
