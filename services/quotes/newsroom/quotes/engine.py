"""The quotes service's engine, without Kafka clients: the book as configured, and batches into it.

* :func:`book_config` is the book's configuration: delays, coalescing, known instruments, splits.
* :func:`ingest` folds a batch of consumed records into a :class:`QuoteBook` (decoded by
  :mod:`newsroom.quotes.ticks`) and reports what happened to each record; a restored partition's
  tail is replayed through it like any batch, so the two agree.
* :class:`QuoteEngine` is what the handlers drive: a book per owned ticks partition, a batch in, the
  snapshots due out, and each partition's state out to be written (:mod:`newsroom.quotes.snapshots`).
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
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
    "Checkpoint",
    "Clock",
    "Partition",
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


@dataclass(slots=True)
class Partition:
    """The book of the instruments of one ticks partition, and the last ticks offset it holds."""

    book: QuoteBook
    applied: int = -1
    """The last ticks offset applied (-1: none)."""
    since_checkpoint: int = 0
    """Ticks applied since the state was last written out (at least 1 once snapshots were released:
    what was published is part of the state, lest a restore publish it again)."""
    checkpointed_at: float = field(default_factory=time.monotonic)


Checkpoint = tuple[int, dict[str, Any], int]
"""(ticks partition, its book's state, the last ticks offset the state holds)."""


class QuoteEngine:
    """The books of the owned ticks partitions and what the handlers do with them: batches of ticks in,
    due snapshots out, poison parked, and each partition's state handed out to be written.

    Ticks are keyed by instrument, so an instrument lives on one partition: each partition has a book
    of its own (made by ``make_book``), which moves between replicas whole. Once :meth:`assign` was
    called (a rebalance listener drives it), ticks of a partition not owned are skipped (its owner
    takes them); until then a partition's book is made on its first tick (one replica, tests).

    ``clock`` is the time the delay line is released at (tests drive it); the books are changed under
    ``lock`` only, so that a batch, the flusher and a rebalance never interleave. ``producer`` names
    this replica on every snapshot it publishes.
    """

    def __init__(
        self,
        make_book: Callable[[], QuoteBook],
        publisher: Publisher,
        *,
        clock: Clock = utcnow,
        producer: str | None = None,
    ) -> None:
        self.make_book = make_book
        self.publisher = publisher
        self.clock = clock
        self.producer = producer or publisher.service
        self.lock = asyncio.Lock()
        self.partitions: dict[int, Partition] = {}
        self.managed = False
        self.skipped = 0
        """Ticks not applied because their partition is not owned here."""
        service = publisher.service
        self._applied = TICK_OUTCOMES.labels("applied")
        self._processed = EVENTS_PROCESSED.labels(service, TickReceived.TYPE)

    def book(self, partition: int) -> QuoteBook:
        """The book of an owned ticks partition (``KeyError`` when it is not owned)."""
        return self.partitions[partition].book

    # ------------------------------------------------------------------ ownership

    async def assign(self, restored: Mapping[int, tuple[dict[str, Any], int] | None]) -> set[int]:
        """Own these partitions, each with its restored (state, covered offset), or empty; returns those
        whose state could not be loaded (they start empty: their whole history is to be replayed)."""
        unreadable: set[int] = set()
        async with self.lock:
            self.managed = True
            for p, found in restored.items():
                book, applied = self.make_book(), -1
                if found is not None:
                    try:
                        book.load_state(found[0])
                        applied = found[1]
                    except (ValueError, KeyError, TypeError):
                        log.exception("a partition's snapshot could not be loaded", partition=p)
                        book, applied = self.make_book(), -1
                        unreadable.add(p)
                self.partitions[p] = Partition(book, applied)
        return unreadable

    async def revoke(self, partitions: Collection[int]) -> list[Checkpoint]:
        """Give up these partitions: their books are dropped (none of their instruments is published by
        this replica any more); returns their states, to be written for the next owner."""
        async with self.lock:
            self.managed = True
            out: list[Checkpoint] = []
            for p in sorted(partitions):
                part = self.partitions.pop(p, None)
                if part is not None:
                    out.append((p, part.book.snapshot_state(), part.applied))
            return out

    async def checkpoints(
        self, every_ticks: int | None = None, every_s: float | None = None
    ) -> list[Checkpoint]:
        """The states to write now: of every partition that took ``every_ticks`` ticks or took any ticks
        ``every_s`` seconds after its last checkpoint (of all owned ones, without limits). Call
        :meth:`checkpointed` after writing them."""
        now = time.monotonic()
        async with self.lock:
            return [
                (p, part.book.snapshot_state(), part.applied)
                for p, part in sorted(self.partitions.items())
                if (every_ticks is None and every_s is None)
                or (every_ticks is not None and part.since_checkpoint >= every_ticks)
                or (every_s is not None and part.since_checkpoint and now - part.checkpointed_at >= every_s)
            ]

    def checkpointed(self, written: Iterable[Checkpoint]) -> None:
        """These states were written: their partitions count ticks since them afresh."""
        now = time.monotonic()
        for p, _, applied in written:
            part = self.partitions.get(p)
            if part is not None:
                part.since_checkpoint = max(0, part.applied - applied) if applied >= 0 else 0
                part.checkpointed_at = now

    # ------------------------------------------------------------------ batches

    async def take(self, records: Sequence[ConsumerRecord[Any, Any]]) -> BatchOutcome:
        """Apply a batch of ticks, dead-letter its poison, publish what became due.

        A record whose key or headers are not text is parked alone; its neighbours are applied. When
        the dead letters or snapshots are not taken by the broker this raises, and the batch is to be
        delivered again: its applied ticks are duplicates then, which the book skips.
        """
        by_partition: dict[int, list[ConsumerRecord[Any, Any]]] = {}
        for rec in records:
            by_partition.setdefault(rec.partition, []).append(rec)
        poison: list[tuple[Record, str]] = []
        total = BatchOutcome()
        async with self.lock:
            now = self.clock().timestamp()
            for p, recs in by_partition.items():
                part = self.partitions.get(p)
                if part is None:
                    if self.managed:  # revoked while in hand: its new owner takes these
                        self.skipped += len(recs)
                        continue
                    part = self.partitions[p] = Partition(self.make_book())
                readable = [rec for rec in recs if undecodable(rec) is None]
                poison += [(Record.from_consumer_record(r), why) for r in recs if (why := undecodable(r))]
                outcome = ingest(part.book, readable, now)
                poison += [(Record.from_consumer_record(readable[i]), why) for i, why in outcome.poison]
                part.applied = max(part.applied, recs[-1].offset)
                part.since_checkpoint += len(recs)
                self._count(outcome)
                total.applied += outcome.applied
                for code, n in outcome.ignored.items():
                    total.ignored[code] = total.ignored.get(code, 0) + n
                for code, n in outcome.rejected.items():
                    total.rejected[code] = total.rejected.get(code, 0) + n
        if poison:
            await self.publisher.dead_letter_many(poison)
        await self.flush()
        return total

    async def flush(self) -> int:
        """Publish every snapshot the delay line released by now; on failure they stay due for the next."""
        async with self.lock:
            now = self.clock()
            taken = [(part, part.book.due(now)) for part in self.partitions.values()]
            snapshots = [s for _, due in taken for s in due]
            if snapshots:
                try:
                    await self.publisher.publish(
                        (SNAPSHOTS, s.instrument_id, new_envelope(s, producer=self.producer))
                        for s in snapshots
                    )
                except BaseException:
                    for part, due in taken:
                        part.book.mark_dirty(s.instrument_id for s in due)
                    raise
                for part, due in taken:
                    if due:
                        part.since_checkpoint = max(part.since_checkpoint, 1)
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
