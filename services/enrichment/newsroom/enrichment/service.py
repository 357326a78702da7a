"""The enrichment service: tags every article revision with the instruments it mentions.

Consumes the articles topic, publishes ``ArticleEnriched`` (and forwards retractions, in
order, under the same key) to the enriched topic. Its security master is the bundled reference
data with the securities topic on top, so new reference data is an event, not a deploy: a
``SecurityListed`` that changes a listing rebuilds the tagger (off the event loop), and a replay
of known listings changes nothing. A record on the securities topic that is no valid listing
(undecodable, or failing ``listing_problem``) never reaches the tagger; the consumer group
``enrichment-securities`` dead-letters it, once whatever the number of instances.

A thin shell: :func:`router` (the subscribers), :func:`build` (the parts, not started) and
:func:`create_app` (the parts with their lifespan and ops routes). Nothing is built at import.
The rules are in :mod:`~newsroom.enrichment.domain`, the state in :mod:`~newsroom.enrichment.enricher`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker, KafkaRouter

from newsroom.common.admin import ensure_topics
from newsroom.common.events import ArticleContent, ArticleRetracted, Envelope, new_envelope
from newsroom.common.health import Health, LogWatch, probes
from newsroom.common.lag import report_lag
from newsroom.common.logging import configure_logging
from newsroom.common.messaging import (
    Outgoing,
    Publisher,
    delivered_again_on_failure,
    make_broker,
    process_batch,
)
from newsroom.common.ops import ops_routes
from newsroom.common.records import Record, batch_subscription, group_less_subscription
from newsroom.common.settings import Settings, get_settings
from newsroom.common.tasks import in_background
from newsroom.common.topics import ARTICLES, ENRICHED, SECURITIES
from newsroom.enrichment.enricher import Enricher, load_master
from newsroom.enrichment.securities import valid_listing

SERVICE = "enrichment"
ARTICLES_GROUP = "enrichment"
SECURITIES_GROUP = "enrichment-securities"  # dead-letters bad listings; see on_securities_checked
log = structlog.get_logger(SERVICE)


def router(settings: Settings, enricher: Enricher, publisher: Publisher) -> KafkaRouter:
    """The service's subscribers: articles to enrich, and the securities topic (read and checked)."""
    router = KafkaRouter()

    async def handle_article(record: Record, envelope: Envelope) -> list[Outgoing]:
        """An article revision becomes an enriched article; a retraction is forwarded as is."""
        key = record.key or ""
        if isinstance(envelope.data, ArticleRetracted):
            forwarded = new_envelope(envelope.data, producer=SERVICE, causation=envelope)
            return [(ENRICHED, envelope.data.article_id, forwarded)]
        if isinstance(envelope.data, ArticleContent):
            enriched = enricher.enrich(envelope)
            log.info("article enriched", article_id=key, tickers=[t.symbol for t in enriched.tickers])
            event = new_envelope(enriched, producer=SERVICE, causation=envelope)
            return [(ENRICHED, envelope.data.article_id, event)]
        raise ValueError(f"{envelope.type} does not belong on {ARTICLES.name}")

    @router.subscriber(ARTICLES.name, **batch_subscription(settings, ARTICLES_GROUP))
    async def on_articles(records: list[Record]) -> None:
        async with delivered_again_on_failure():
            await process_batch(records, handle_article, publisher)

    @router.subscriber(SECURITIES.name, **group_less_subscription(settings, max_records=2000))
    async def on_securities(records: list[Record]) -> None:
        """Reference data arrived: every instance reads the whole topic, and a change rebuilds its tagger.

        A record that is no valid listing is skipped here: :func:`on_securities_checked` dead-letters it.
        """
        updates = [security for r in records if (security := valid_listing(r)[0]) is not None]
        if updates:
            changed = await enricher.update(updates)
            if changed:
                log.info("security master updated", changed=changed, instruments=len(enricher.securities))

    @router.subscriber(SECURITIES.name, **batch_subscription(settings, SECURITIES_GROUP, max_records=2000))
    async def on_securities_checked(records: list[Record]) -> None:
        """Dead-letter what the securities topic holds that is no valid listing, with the reason.

        Every instance reads the whole topic without a group (:func:`on_securities`) and skips such a
        record; this group's consumer, which one instance holds whatever the replicas, parks it, so that
        it is dead-lettered once, not once per instance.
        """
        bad = [(r, reason) for r in records if (reason := valid_listing(r)[1]) is not None]
        async with delivered_again_on_failure():
            await publisher.dead_letter_many(bad)

    return router


@dataclass
class Enrichment:
    """The enrichment service's parts, built and not started (what tests drive)."""

    settings: Settings
    broker: KafkaBroker
    publisher: Publisher
    enricher: Enricher
    health: Health = field(default_factory=Health)


def build(settings: Settings | None = None) -> Enrichment:
    """The service's parts: a broker with the subscribers on it, its publisher and an empty enricher
    (its master is loaded by :func:`create_app`'s lifespan, or by the caller: see
    :func:`~newsroom.enrichment.enricher.load_master`)."""
    settings = settings or get_settings()
    broker = make_broker(SERVICE, settings)
    publisher = Publisher(broker, SERVICE, settings.publish_timeout_seconds)
    enricher = Enricher()
    broker.include_router(router(settings, enricher, publisher))
    return Enrichment(settings, broker, publisher, enricher)


def create_app(settings: Settings | None = None) -> AsgiFastStream:
    """The service as an ASGI app: its parts, a lifespan that loads the master, and the ops routes."""
    svc = build(settings)

    async def master_loaded() -> str | None:
        return None if svc.enricher.tagger is not None else "the security master is not loaded yet"

    @asynccontextmanager
    async def lifespan(*_: Any) -> AsyncIterator[None]:
        configure_logging(SERVICE)
        await ensure_topics(svc.settings)
        await load_master(svc.enricher, svc.settings)
        watch = LogWatch(svc.settings, svc.broker, svc.health)
        async with in_background(report_lag(svc.settings, [ARTICLES_GROUP]), watch.run()):
            yield
        log.info("enrichment stopped")

    ready, alive = probes(svc.broker, svc.health, master_loaded)
    return AsgiFastStream(svc.broker, asgi_routes=ops_routes(ready, alive), lifespan=lifespan, logger=None)
