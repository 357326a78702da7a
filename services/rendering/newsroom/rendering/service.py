"""The rendering service: the only writer of HTML fragments.

Consumes enriched articles (and forwarded retractions) and public quote snapshots, and
writes fragments and page manifests into Redis through :class:`~newsroom.rendering.writer.FragmentWriter`.
Every page change is one MULTI/EXEC, so a reader never sees a new body with an old manifest;
re-delivered events write the same bytes, and an older revision never overwrites a newer one.

A thin shell, nothing built at import: :func:`router` holds the subscribers, :func:`build` makes the
parts (broker, publisher, Redis client, the live :class:`~newsroom.rendering.namespaces.Namespaces`,
health and the store watch), :func:`create_app` the ASGI app with its lifespan and ops routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker, KafkaRouter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from newsroom.common.admin import ensure_topics
from newsroom.common.events import ArticleEnriched, ArticleRetracted, QuoteUpdated
from newsroom.common.health import Health, LogWatch, probes
from newsroom.common.lag import report_lag
from newsroom.common.logging import configure_logging
from newsroom.common.messaging import (
    Publisher,
    bound_to,
    delivered_again_on_failure,
    make_broker,
    process_batch_at_once,
)
from newsroom.common.ops import ops_routes
from newsroom.common.records import Record, batch_subscription
from newsroom.common.redis_client import connect
from newsroom.common.settings import Settings, get_settings
from newsroom.common.store import Pointers
from newsroom.common.tasks import in_background
from newsroom.common.topics import ENRICHED, SNAPSHOTS
from newsroom.rendering.applying import Applied, ArticleEvent
from newsroom.rendering.domain import Renderer
from newsroom.rendering.healing import StoreWatch
from newsroom.rendering.namespaces import Namespaces

SERVICE = "rendering"
ARTICLES_GROUP = "rendering-articles"
QUOTES_GROUP = "rendering-quotes"
log = structlog.get_logger(SERVICE)


def redelivered_while_the_store_is_down() -> AbstractAsyncContextManager[None]:
    """A Redis outage is not the events' fault: the batch is delivered again (after a pause), not parked."""
    return delivered_again_on_failure((RedisConnectionError, RedisTimeoutError))


def article_event(envelope: Any) -> ArticleEvent:
    """The envelope's article event, or ValueError for an event that does not belong on the topic."""
    if not isinstance(envelope.data, ArticleEnriched | ArticleRetracted):
        raise ValueError(f"{envelope.type} does not belong on {ENRICHED.name}")
    return envelope.data


def router(settings: Settings, publisher: Publisher, namespaces: Namespaces) -> KafkaRouter:
    """The subscribers: article events and quote snapshots, written to every live namespace."""
    router = KafkaRouter()

    async def handle_enriched_batch(decoded: list[tuple[Record, Any]]) -> list[Any]:
        """A batch of article events applied as one write per namespace (see FragmentWriter.apply)."""
        events = [article_event(envelope) for _, envelope in decoded]
        async with redelivered_while_the_store_is_down():
            results = await namespaces.to_each(lambda w: w.apply(events))
        applied = results[0] if results else Applied()
        for record, envelope in decoded:
            with bound_to(envelope):
                log.info("article event handled", article_id=record.key, type=envelope.type)
        log.info("batch applied", events=len(events), rendered=applied.rendered, skipped=applied.skipped,
                 retracted=applied.retracted)  # fmt: skip
        return []

    async def handle_enriched(record: Record, envelope: Any) -> list[Any]:
        """One article event alone (when its batch failed: see process_batch_at_once)."""
        event = article_event(envelope)
        async with redelivered_while_the_store_is_down():
            await namespaces.to_each(lambda w: w.apply([event]))
        log.info("article event handled alone", article_id=record.key, type=envelope.type)
        return []

    @router.subscriber(ENRICHED.name, **batch_subscription(settings, ARTICLES_GROUP))
    async def on_enriched(records: list[Record]) -> None:
        async with delivered_again_on_failure():
            await process_batch_at_once(records, handle_enriched_batch, handle_enriched, publisher)

    @router.subscriber(SNAPSHOTS.name, **batch_subscription(settings, QUOTES_GROUP, max_records=2000))
    async def on_snapshots(records: list[Record]) -> None:
        snapshots: list[QuoteUpdated] = []
        misplaced: list[tuple[Record, str]] = []
        for record in records:
            if record.envelope and isinstance(record.envelope.data, QuoteUpdated):
                snapshots.append(record.envelope.data)
            else:
                misplaced.append((record, record.error or "not a quote snapshot"))
        async with delivered_again_on_failure():  # a Redis outage too: no snapshot is parked for it
            await publisher.dead_letter_many(misplaced)  # one burst, one wait for the broker
            await namespaces.to_each(lambda w: w.quotes(snapshots))

    return router


@dataclass
class Rendering:
    """The service's parts, built and not started."""

    settings: Settings
    broker: KafkaBroker
    publisher: Publisher
    redis: aioredis.Redis
    pointers: Pointers
    namespaces: Namespaces
    health: Health
    store_watch: StoreWatch


def build(settings: Settings | None = None) -> Rendering:
    """The parts, with the subscribers on the broker (the Redis client connects when first used)."""
    settings = settings or get_settings()
    broker = make_broker(SERVICE, settings)
    publisher = Publisher(broker, SERVICE, settings.publish_timeout_seconds)
    redis = connect(settings.redis_url)
    pointers = Pointers(settings.template_version)
    namespaces = Namespaces(redis, pointers, Renderer.for_settings(settings))
    health = Health()
    broker.include_router(router(settings, publisher, namespaces))
    store_watch = StoreWatch(redis, pointers, health)
    return Rendering(settings, broker, publisher, redis, pointers, namespaces, health, store_watch)


def create_app(settings: Settings | None = None) -> AsgiFastStream:
    """The service's ASGI app: the broker's subscribers, ``/healthz``, ``/readyz``, ``/metrics``, and a
    lifespan that runs the lag report, the log watch and the store watch beside them."""
    svc = build(settings)

    async def store_reachable() -> str | None:
        return None if await svc.redis.ping() else "Redis does not answer"

    ready, alive = probes(svc.broker, svc.health, store_reachable)

    @asynccontextmanager
    async def lifespan(*_: Any) -> AsyncIterator[None]:
        configure_logging(SERVICE)
        await ensure_topics(svc.settings)
        await svc.namespaces.writers()
        watch = LogWatch(svc.settings, svc.broker, svc.health)
        lag = report_lag(svc.settings, [ARTICLES_GROUP, QUOTES_GROUP])
        async with in_background(lag, watch.run(), svc.store_watch.run()):
            yield
        await svc.redis.aclose()
        log.info("rendering stopped")

    return AsgiFastStream(svc.broker, asgi_routes=ops_routes(ready, alive), lifespan=lifespan, logger=None)
