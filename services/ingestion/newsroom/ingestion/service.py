"""The ingestion service: the HTTP API that turns submissions into article events.

It is the only writer of the articles topic. At start-up it replays that topic into an
:class:`~newsroom.ingestion.domain.ArticleRegistry`, so de-duplication and revision numbers survive
restarts. The ``newsroom feeds`` and ``newsroom ingest`` commands submit through this API too (in
batches, ``POST /v1/articles:batch``), so every article passes the same rules in one place.

A thin shell, nothing built at import: :func:`build` makes the parts (the broker, the
:class:`~newsroom.ingestion.engine.Ingestor` that decides and publishes, health), :func:`serve` the
ASGI app of built parts (the API of :mod:`newsroom.ingestion.api`, the ops routes, the lifespan),
and :func:`create_app` both, for ``newsroom run ingestion``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from faststream.kafka import KafkaBroker
from prometheus_client import make_asgi_app

from newsroom.common.admin import ensure_topics
from newsroom.common.health import Health, LogWatch, probes
from newsroom.common.logging import configure_logging
from newsroom.common.messaging import Publisher, make_broker
from newsroom.common.settings import Settings, get_settings
from newsroom.common.tasks import in_background
from newsroom.ingestion import api
from newsroom.ingestion.domain import ArticleRegistry
from newsroom.ingestion.engine import SERVICE, Ingestor

log = structlog.get_logger(SERVICE)


@dataclass
class Ingestion:
    """The service's parts, built and not started."""

    settings: Settings
    broker: KafkaBroker
    publisher: Publisher
    ingestor: Ingestor
    health: Health


def build(settings: Settings | None = None, *, registry: ArticleRegistry | None = None) -> Ingestion:
    """The parts. With ``registry`` the ingestor decides against it as loaded, and start-up does not
    read the articles topic into one (a test's registry, fed as it likes)."""
    settings = settings or get_settings()
    broker = make_broker(SERVICE, settings)
    publisher = Publisher(broker, SERVICE, settings.publish_timeout_seconds)
    ingestor = Ingestor(publisher, settings=settings, registry=registry)
    return Ingestion(settings, broker, publisher, ingestor, Health())


def serve(svc: Ingestion) -> FastAPI:
    """The ASGI app of built parts: the API, ``/healthz``, ``/readyz``, ``/metrics`` and the lifespan that
    starts the broker, loads the registry and runs the log watch."""
    settings, broker, ingestor, health = svc.settings, svc.broker, svc.ingestor, svc.health

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        configure_logging(SERVICE)
        await ensure_topics(settings)
        await broker.start()
        loaded = 0 if ingestor.ready else await ingestor.load(settings)  # a registry given to build is kept
        log.info("ingestion ready", articles_in_log=loaded, known_articles=len(ingestor.registry.by_id))
        if not settings.api_keys:
            log.warning("no NEWSROOM_API_KEYS configured: every write will be refused")
        watch = LogWatch(settings, broker, health, on_log_lost=ingestor.log_lost)
        ingestor.gate = lambda: None if health.ok else health.describe()
        try:
            async with in_background(watch.run()):
                yield
        finally:
            await ingestor.close()
            await broker.stop()
            log.info("ingestion stopped")

    app = FastAPI(title="Newsroom ingestion API", version="1", lifespan=lifespan)
    app.mount("/metrics", make_asgi_app())
    api.install(app, ingestor, settings)

    async def registry_current() -> str | None:
        return None if ingestor.ready else "the article registry is being rebuilt from the log"

    ready, _ = probes(broker, health, registry_current)  # the same readiness as every other service's

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok\n"

    @app.get("/readyz", response_class=PlainTextResponse)
    async def readyz() -> PlainTextResponse:
        """Ready while the watch sees no problem, the broker answers and the registry matches the log."""
        problem = await ready()
        if problem is None:
            return PlainTextResponse("ok\n")
        return PlainTextResponse(f"not ready: {problem}\n", status_code=503)

    return app


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service's ASGI app: :func:`serve` of :func:`build`."""
    return serve(build(settings))
