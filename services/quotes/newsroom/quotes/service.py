"""The quotes service: price ticks in, delayed per-instrument public snapshots out.

Ticks pass through the :class:`QuoteBook` delay line; every second (and after every
batch) the snapshots that became due are published, at most one per instrument per
coalescing interval. Poison ticks go to the dead-letter topic with their reason;
duplicates and out-of-order ticks are ignored by rule (and counted).

Restart-safe: at start-up the book is rebuilt from the ticks topic itself, so ticks the
consumer group sees again after a crash are recognised as duplicates and volume is never
counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from faststream.asgi import AsgiFastStream

from newsroom.common.events import Envelope, TickReceived, new_envelope
from newsroom.common.logging import configure_logging
from newsroom.common.messaging import Publisher, Record, batch_subscription, make_broker, read_topic
from newsroom.common.ops import DEAD_LETTERS, EVENTS_FAILED, EVENTS_PROCESSED, ops_routes
from newsroom.common.settings import get_settings
from newsroom.common.topics import SNAPSHOTS, TICKS, ensure_topics
from newsroom.quotes.domain import QuoteBook, RejectCode

SERVICE = "quotes"
settings = get_settings()
broker = make_broker(SERVICE, settings)
publisher = Publisher(broker, SERVICE)
log = structlog.get_logger(SERVICE)
book = QuoteBook(delay=timedelta(minutes=settings.quote_delay_minutes))
lock = asyncio.Lock()
IGNORED_BY_RULE = frozenset({RejectCode.DUPLICATE, RejectCode.OUT_OF_ORDER})


def now() -> datetime:
    return datetime.now(UTC)


async def flush_due() -> int:
    """Publish every snapshot the delay line released."""
    async with lock:
        snapshots = book.due(now())
        if snapshots:
            await publisher.publish(
                (SNAPSHOTS, s.instrument_id, new_envelope(s, producer=SERVICE)) for s in snapshots
            )
    return len(snapshots)


@broker.subscriber(TICKS.name, **batch_subscription(settings, "quotes", max_records=5000))
async def on_ticks(records: list[Record]) -> None:
    received_at = now()
    async with lock:
        for record in records:
            envelope: Envelope | None = record.envelope
            if envelope is None or not isinstance(envelope.data, TickReceived):
                await publisher.dead_letter(record, record.error or f"not a tick: {envelope and envelope.type}")
                DEAD_LETTERS.labels(SERVICE).inc()
                continue
            rejection = book.apply(envelope.data, received_at=received_at)
            if rejection is None:
                EVENTS_PROCESSED.labels(SERVICE, envelope.type).inc()
            elif rejection.code in IGNORED_BY_RULE:
                EVENTS_FAILED.labels(SERVICE, f"{envelope.type}:{rejection.code}").inc()
            else:
                await publisher.dead_letter(record, f"{rejection.code}: {rejection.reason}")
                DEAD_LETTERS.labels(SERVICE).inc()
    await flush_due()


async def _ticker() -> None:
    while True:
        await asyncio.sleep(1.0)
        try:
            await flush_due()
        except Exception:  # keep releasing snapshots; the next second retries
            log.exception("flushing due snapshots failed")


_tasks: list[asyncio.Task[None]] = []


async def rebuild() -> int:
    """Fold every tick already on the topic into the book (rejections were dealt with the first time)."""
    applied = 0
    async for batch in read_topic(settings, TICKS.name, max_records=10_000):
        received_at = now()
        for rec in batch:
            envelope = Record.from_consumer_record(rec).envelope
            if envelope and isinstance(envelope.data, TickReceived):
                applied += book.apply(envelope.data, received_at=received_at) is None
    return applied


async def _ready() -> bool:
    return await broker.ping(timeout=2.0)


@asynccontextmanager
async def lifespan(*_: Any) -> AsyncIterator[None]:
    configure_logging(SERVICE)
    await ensure_topics(settings.bootstrap_servers)
    log.info("quote book rebuilt from the ticks topic", ticks=await rebuild(), instruments=len(book.instrument_ids))
    _tasks.append(asyncio.create_task(_ticker()))
    yield
    for task in _tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    log.info("quotes stopped")


app = AsgiFastStream(broker, asgi_routes=ops_routes(_ready), lifespan=lifespan, logger=None)
