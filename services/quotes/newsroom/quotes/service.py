"""The quotes service: price ticks in, delayed per-instrument public snapshots out.

Ticks pass through the :class:`QuoteBook` delay line; every second (and after every
batch) the snapshots that became due are published, at most one per instrument per
coalescing interval. Poison ticks go to the dead-letter topic with their reason;
duplicates and out-of-order ticks are ignored by rule (and counted).

Restart-safe: at start-up the book is rebuilt from the ticks the consumer group had
already committed (read from the ticks topic itself, with the same decisions as the first
time), then the group resumes after them. Re-delivered ticks (a crash between applying and
committing, or a nacked batch) are duplicates of what the book holds, so volume is never
counted twice. A batch whose dead letters or snapshots could not be published is nacked and
re-delivered; its snapshots are marked to be published again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream.asgi import AsgiFastStream
from faststream.message import StreamMessage
from prometheus_client import Counter

from newsroom.common.admin import ensure_topics
from newsroom.common.events import TickReceived, new_envelope
from newsroom.common.health import Health, LogWatch, probes
from newsroom.common.lag import report_lag
from newsroom.common.logging import configure_logging
from newsroom.common.messaging import (
    Publisher,
    Record,
    batch_subscription,
    delivered_again_on_failure,
    make_broker,
    undecodable,
)
from newsroom.common.ops import BATCH_SECONDS, EVENTS_FAILED, EVENTS_PROCESSED, ops_routes
from newsroom.common.reading import running
from newsroom.common.settings import Settings, get_settings
from newsroom.common.tasks import in_background
from newsroom.common.topics import SNAPSHOTS, TICKS
from newsroom.quotes.book import QuoteBook
from newsroom.quotes.engine import BatchOutcome, book_config, ingest

SERVICE = "quotes"
GROUP = "quotes"
MAX_BATCH = 5000
FLUSH_INTERVAL_S = 1.0
REBUILD_DRAIN_EVERY = 100_000  # ticks folded between two drains of the delay line while rebuilding

TICK_OUTCOMES = Counter("newsroom_quote_ticks_total", "Quote ticks consumed, by outcome", ["outcome"])
SNAPSHOTS_PUBLISHED = Counter("newsroom_quote_snapshots_total", "Public quote snapshots published")

settings = get_settings()
broker = make_broker(SERVICE, settings)
publisher = Publisher(broker, SERVICE, settings.publish_timeout_seconds)
log = structlog.get_logger(SERVICE)
book = QuoteBook(**book_config(settings))
lock = asyncio.Lock()

_APPLIED = TICK_OUTCOMES.labels("applied")
_PROCESSED = EVENTS_PROCESSED.labels(SERVICE, TickReceived.TYPE)
_BATCH = BATCH_SECONDS.labels(SERVICE)


def now() -> datetime:
    return datetime.now(UTC)


async def flush_due() -> int:
    """Publish every snapshot the delay line released; on failure they stay due for the next flush."""
    async with lock:
        snapshots = book.due(now())
        if snapshots:
            try:
                await publisher.publish(
                    (SNAPSHOTS, s.instrument_id, new_envelope(s, producer=SERVICE)) for s in snapshots
                )
            except BaseException:
                book.mark_dirty(s.instrument_id for s in snapshots)
                raise
            SNAPSHOTS_PUBLISHED.inc(len(snapshots))
    return len(snapshots)


def _count(outcome: BatchOutcome) -> None:
    """Add one batch's outcome to the metrics."""
    if outcome.applied:
        _APPLIED.inc(outcome.applied)
        _PROCESSED.inc(outcome.applied)
    for code, n in outcome.ignored.items():
        TICK_OUTCOMES.labels(code).inc(n)
        EVENTS_FAILED.labels(SERVICE, f"{TickReceived.TYPE}:{code}").inc(n)
    for code, n in outcome.rejected.items():
        TICK_OUTCOMES.labels(code).inc(n)


async def raw_batch(message: StreamMessage[Any]) -> list[ConsumerRecord[Any, Any]]:
    """FastStream decoder: hand the consumed records over as they are (the handler decodes them fast)."""
    raw = message.raw_message
    return list(raw) if isinstance(raw, tuple | list) else [raw]


@broker.subscriber(
    TICKS.name, **{**batch_subscription(settings, GROUP, max_records=MAX_BATCH), "decoder": raw_batch}
)
async def on_ticks(records: list[Any]) -> None:
    """Apply a batch of ticks, dead-letter its poison, publish what became due (nack if that fails)."""
    started = time.perf_counter()
    unreadable = [(rec, reason) for rec in records if (reason := undecodable(rec)) is not None]
    if unreadable:  # a key or header that is not text: parked alone, its neighbours applied
        records = [rec for rec in records if undecodable(rec) is None]
    async with delivered_again_on_failure():  # its applied ticks are duplicates then, which the book skips
        async with lock:
            outcome = ingest(book, records)
        _count(outcome)
        poison = [(Record.from_consumer_record(rec), reason) for rec, reason in unreadable]
        poison += [(Record.from_consumer_record(records[i]), reason) for i, reason in outcome.poison]
        if poison:
            await publisher.dead_letter_many(poison)
        await flush_due()
    _BATCH.observe(time.perf_counter() - started)


async def _ticker() -> None:
    """Release due snapshots every second, also while no ticks arrive."""
    while True:
        await asyncio.sleep(FLUSH_INTERVAL_S)
        try:
            await flush_due()
        except Exception:  # keep releasing snapshots; the next second retries
            log.exception("flushing due snapshots failed")


async def committed_offsets(cfg: Settings, group: str = GROUP) -> dict[TopicPartition, int]:
    """The consumer group's committed offset per ticks partition (partitions without one are left out)."""
    async with running(
        AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=group, enable_auto_commit=False)
    ) as consumer:
        out: dict[TopicPartition, int] = {}
        for p in sorted(consumer.partitions_for_topic(TICKS.name) or ()):
            tp = TopicPartition(TICKS.name, p)
            offset = await consumer.committed(tp)
            if offset:
                out[tp] = offset
        return out


async def fold_ticks(cfg: Settings, into: QuoteBook, upto: Mapping[TopicPartition, int]) -> int:
    """Fold the ticks below ``upto`` per partition into ``into`` (their poison was dead-lettered already)."""
    if not upto:
        return 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=cfg.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=cfg.fetch_max_wait_ms,
        max_poll_records=10_000,
    )
    await consumer.start()
    folded = since_drain = empty_polls = 0
    try:
        tps = list(upto)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if await consumer.position(tp) < upto[tp]}
        while remaining and empty_polls < 20:
            fetched = await consumer.getmany(*remaining, timeout_ms=500, max_records=10_000)
            empty_polls = 0 if fetched else empty_polls + 1
            for tp, recs in fetched.items():
                end = upto[tp]
                if recs and recs[-1].offset >= end:
                    recs = [r for r in recs if r.offset < end]
                ingest(into, [r for r in recs if undecodable(r) is None])  # as on_ticks decided
                folded += len(recs)
                since_drain += len(recs)
                if await consumer.position(tp) >= end:
                    remaining.discard(tp)
            if since_drain >= REBUILD_DRAIN_EVERY:  # keep the delay line short; published before the crash
                into.due(now())
                since_drain = 0
        if remaining:
            log.warning(
                "rebuild stopped short of the committed offsets", partitions=sorted(str(t) for t in remaining)
            )
    finally:
        await consumer.stop()
    into.mark_dirty()  # re-publish every instrument's current state once
    return folded


async def rebuild() -> int:
    """Fold the ticks the group had committed into the book; the group then resumes after them."""
    return await fold_ticks(settings, book, await committed_offsets(settings))


health = Health()
ready, alive = probes(broker, health)


@asynccontextmanager
async def lifespan(*_: Any) -> AsyncIterator[None]:
    configure_logging(SERVICE)
    await ensure_topics(settings)
    started = time.perf_counter()
    folded = await rebuild()
    log.info(
        "quote book rebuilt from committed ticks",
        ticks=folded,
        instruments=len(book.instrument_ids),
        seconds=round(time.perf_counter() - started, 2),
    )
    watch = LogWatch(settings, broker, health)
    async with in_background(_ticker(), report_lag(settings, [GROUP]), watch.run()):
        yield
    log.info("quotes stopped")


app = AsgiFastStream(broker, asgi_routes=ops_routes(ready, alive), lifespan=lifespan, logger=None)
