"""The quotes service: price ticks in, delayed per-instrument public snapshots out.

Ticks pass through the :class:`~newsroom.quotes.book.QuoteBook` delay line; every second (and after
every batch) the snapshots that became due are published, at most one per instrument per
coalescing interval. Poison ticks go to the dead-letter topic with their reason; duplicates and
out-of-order ticks are ignored by rule (and counted). :class:`~newsroom.quotes.engine.QuoteEngine`
does all that; this module only wires it to the broker.

Restart-safe: at start-up the book is rebuilt from the ticks the consumer group had already
committed (:mod:`newsroom.quotes.rebuild`), then the group resumes after them. Re-delivered ticks (a
crash between applying and committing, or a nacked batch) are duplicates of what the book holds, so
volume is never counted twice. A batch whose dead letters or snapshots could not be published is
nacked and re-delivered; its snapshots are marked to be published again.

Nothing is built at import: :func:`build` makes the parts, :func:`create_app` the ASGI app.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import ConsumerRecord
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.message import StreamMessage

from newsroom.common.admin import ensure_topics
from newsroom.common.health import Health, LogWatch, probes
from newsroom.common.lag import report_lag
from newsroom.common.logging import configure_logging
from newsroom.common.messaging import Publisher, delivered_again_on_failure, make_broker
from newsroom.common.ops import BATCH_SECONDS, ops_routes
from newsroom.common.records import batch_subscription
from newsroom.common.settings import Settings, get_settings
from newsroom.common.tasks import in_background
from newsroom.common.topics import TICKS
from newsroom.quotes.book import QuoteBook
from newsroom.quotes.engine import Clock, QuoteEngine, book_config, utcnow
from newsroom.quotes.rebuild import rebuild

SERVICE = "quotes"
GROUP = "quotes"
MAX_BATCH = 5000
FLUSH_INTERVAL_S = 1.0

log = structlog.get_logger(SERVICE)


async def raw_batch(message: StreamMessage[Any]) -> list[ConsumerRecord[Any, Any]]:
    """FastStream decoder: hand the consumed records over as they are (the engine decodes them fast)."""
    raw = message.raw_message
    return list(raw) if isinstance(raw, tuple | list) else [raw]


def router(settings: Settings, engine: QuoteEngine) -> KafkaRouter:
    """The ticks subscriber, feeding ``engine``."""
    router = KafkaRouter()
    batch_seconds = BATCH_SECONDS.labels(SERVICE)

    @router.subscriber(
        TICKS.name, **{**batch_subscription(settings, GROUP, max_records=MAX_BATCH), "decoder": raw_batch}
    )
    async def on_ticks(records: list[Any]) -> None:
        """Apply a batch of ticks, dead-letter its poison, publish what became due (nack if that fails)."""
        started = time.perf_counter()
        async with (
            delivered_again_on_failure()
        ):  # its applied ticks are duplicates then, which the book skips
            await engine.take(records)
        batch_seconds.observe(time.perf_counter() - started)

    return router


@dataclass
class Quotes:
    """The quotes service's parts, built and not started."""

    settings: Settings
    broker: KafkaBroker
    publisher: Publisher
    book: QuoteBook
    engine: QuoteEngine
    health: Health


def build(settings: Settings | None = None, *, clock: Clock = utcnow) -> Quotes:
    """The service's parts: the broker with the ticks subscriber, the book and its engine."""
    settings = settings or get_settings()
    broker = make_broker(SERVICE, settings)
    publisher = Publisher(broker, SERVICE, settings.publish_timeout_seconds)
    book = QuoteBook(**book_config(settings))
    engine = QuoteEngine(book, publisher, clock=clock)
    broker.include_router(router(settings, engine))
    return Quotes(settings, broker, publisher, book, engine, Health())


def create_app(settings: Settings | None = None) -> AsgiFastStream:
    """The service as an ASGI app: the book rebuilt at start, the flusher, the watch and ops routes."""
    svc = build(settings)
    ready, alive = probes(svc.broker, svc.health)

    @asynccontextmanager
    async def lifespan(*_: Any) -> AsyncIterator[None]:
        configure_logging(SERVICE)
        await ensure_topics(svc.settings)
        started = time.perf_counter()
        folded = await rebuild(svc.settings, svc.book, GROUP, clock=svc.engine.clock)
        log.info(
            "quote book rebuilt from committed ticks",
            ticks=folded,
            instruments=len(svc.book.instrument_ids),
            seconds=round(time.perf_counter() - started, 2),
        )
        watch = LogWatch(svc.settings, svc.broker, svc.health)
        async with in_background(
            svc.engine.flushing(FLUSH_INTERVAL_S), report_lag(svc.settings, [GROUP]), watch.run()
        ):
            yield
        log.info("quotes stopped")

    return AsgiFastStream(svc.broker, asgi_routes=ops_routes(ready, alive), lifespan=lifespan, logger=None)
