"""The ingestion service: the HTTP API that turns submissions into article events.

It is the only writer of the articles topic. Its article registry (what de-duplication and revision
numbers are decided against) lives in Redis under ``ingest:``, shared by every replica and kept as a
projection of that topic: written through after each publish, and by the ``ingestion-registry``
consumer group applying every event (see :mod:`newsroom.ingestion.registry`). A start-up reads no
history unless the store was emptied. The ``newsroom feeds`` and ``newsroom ingest`` commands submit
through this API too (in batches, ``POST /v1/articles:batch``), so every article passes the same
rules in one place.

A thin shell, nothing built at import: :func:`build` makes the parts (the broker, the registry store,
the :class:`~newsroom.ingestion.engine.Ingestor` that decides and publishes, health), :func:`router`
the registry's consumer, :func:`serve` the ASGI app of built parts (the API of
:mod:`newsroom.ingestion.api`, the ops routes, the lifespan), and :func:`create_app` both, for
``newsroom run ingestion``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from faststream.kafka import KafkaBroker, KafkaRouter
from prometheus_client import make_asgi_app

from newsroom.common.admin import ensure_topics
from newsroom.common.health import Health, LogWatch, probes
from newsroom.common.logging import configure_logging
from newsroom.common.messaging import Publisher, delivered_again_on_failure, make_broker
from newsroom.common.records import Record, batch_subscription
from newsroom.common.redis_client import connect
from newsroom.common.settings import Settings, get_settings
from newsroom.common.tasks import in_background
from newsroom.common.topics import ARTICLES
from newsroom.ingestion import api
from newsroom.ingestion.domain import ArticleRegistry
from newsroom.ingestion.engine import SERVICE, Ingestor
from newsroom.ingestion.registry import MemoryRegistryStore, RedisRegistryStore, RegistryStore

GROUP = "ingestion-registry"  # the consumer group that projects the articles topic into the registry
REDIS_TIMEOUT_S = 2.0  # an unreachable store is a 503 within this, not a request that hangs

log = structlog.get_logger(SERVICE)


def router(ingestor: Ingestor, settings: Settings, group: str = GROUP) -> KafkaRouter:
    """The ``ingestion-registry`` consumer: every article event applied to the registry store, so an
    event published by a replica that died before writing it through is known all the same."""
    router = KafkaRouter()

    @router.subscriber(ARTICLES.name, **batch_subscription(settings, group))
    async def on_articles(records: list[Record]) -> None:
        async with delivered_again_on_failure():  # the store away: the batch comes again, uncommitted
            await ingestor.project(records)

    return router


@dataclass
class Ingestion:
    """The service's parts, built and not started."""

    settings: Settings
    broker: KafkaBroker
    publisher: Publisher
    store: RegistryStore
    ingestor: Ingestor
    health: Health


def build(
    settings: Settings | None = None,
    *,
    registry: ArticleRegistry | None = None,
    store: RegistryStore | None = None,
    group: str = GROUP,
) -> Ingestion:
    """The parts. The registry lives in Redis unless ``store`` is given, or ``registry``: then it is
    that registry, in this process's memory (a test's, fed as it likes; no Redis needed). ``group``
    is the registry consumer's group (a test's own, so that it joins no group earlier tests left)."""
    settings = settings or get_settings()
    broker = make_broker(SERVICE, settings)
    publisher = Publisher(broker, SERVICE, settings.publish_timeout_seconds)
    if store is None and registry is not None:
        store = MemoryRegistryStore(registry)
    if store is None:
        client = connect(
            settings.redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        store = RedisRegistryStore(client)
    ingestor = Ingestor(publisher, store, settings=settings)
    ingestor.ready = registry is not None  # a registry given is decided against from the start
    broker.include_router(router(ingestor, settings, group))
    return Ingestion(settings, broker, publisher, store, ingestor, Health())


def serve(svc: Ingestion) -> FastAPI:
    """The ASGI app of built parts: the API, ``/healthz``, ``/readyz``, ``/metrics`` and the lifespan that
    starts the broker, loads the registry and runs the log watch."""
    settings, broker, ingestor, health = svc.settings, svc.broker, svc.ingestor, svc.health

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        configure_logging(SERVICE)
        await ensure_topics(settings)
        await broker.start()
        await ingestor.start()  # reads no history unless the store is empty: then in the background
        log.info("ingestion started", registry_current=ingestor.ready)
        if not settings.api_keys:
            log.warning("no NEWSROOM_API_KEYS configured: every write will be refused")
        watch = LogWatch(settings, broker, health, on_log_lost=ingestor.log_lost)
        ingestor.gate = lambda: None if health.ok else health.describe()
        try:
            async with in_background(watch.run(), ingestor.watch()):
                yield
        finally:
            await ingestor.close()
            await broker.stop()
            if isinstance(svc.store, RedisRegistryStore):
                await svc.store.redis.aclose()
            log.info("ingestion stopped")

    app = FastAPI(title="Newsroom ingestion API", version="1", lifespan=lifespan)
    app.mount("/metrics", make_asgi_app())
    api.install(app, ingestor, settings)

    ready, _ = probes(broker, health, ingestor.problem)  # the same readiness as every other service's

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok\n"

    @app.get("/readyz", response_class=PlainTextResponse)
    async def readyz() -> PlainTextResponse:
        """Ready while the watch sees no problem, the broker answers and the registry store holds the log."""
        problem = await ready()
        if problem is None:
            return PlainTextResponse("ok\n")
        return PlainTextResponse(f"not ready: {problem}\n", status_code=503)

    return app


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service's ASGI app: :func:`serve` of :func:`build`."""
    return serve(build(settings))
