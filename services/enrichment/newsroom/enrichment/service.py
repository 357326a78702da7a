"""The enrichment service: tags every article revision with the instruments it mentions.

Consumes the articles topic, publishes ``ArticleEnriched`` (and forwards retractions, in
order, under the same key) to the enriched topic. Its security master is built from the
securities topic, so new reference data is an event, not a deploy: a ``SecurityListed`` that
changes a listing rebuilds the tagger (off the event loop), and a replay of known listings
changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from faststream.asgi import AsgiFastStream

from newsroom.common.events import (
    ArticleContent,
    ArticleEnriched,
    ArticleRetracted,
    Envelope,
    SecurityListed,
    new_envelope,
)
from newsroom.common.health import Health, LogWatch, probes
from newsroom.common.lag import report_lag
from newsroom.common.logging import configure_logging
from newsroom.common.messaging import (
    Outgoing,
    Publisher,
    Record,
    batch_subscription,
    delivered_again_on_failure,
    group_less_subscription,
    make_broker,
    process_batch,
)
from newsroom.common.ops import ops_routes
from newsroom.common.settings import get_settings
from newsroom.common.tasks import in_background
from newsroom.common.text import html_text
from newsroom.common.topics import ARTICLES, ENRICHED, SECURITIES, ensure_topics
from newsroom.enrichment.master import build_master
from newsroom.enrichment.securities import published_securities, same_listing
from newsroom.enrichment.tagger import TAGGER_VERSION, Tagger

SERVICE = "enrichment"
settings = get_settings()
broker = make_broker(SERVICE, settings)
publisher = Publisher(broker, SERVICE, settings.publish_timeout_seconds)
log = structlog.get_logger(SERVICE)


class Enricher:
    """Holds the current tagger; rebuilt whenever the security master changes."""

    def __init__(self) -> None:
        self.securities: dict[str, SecurityListed] = {}
        self.tagger: Tagger | None = None
        self._updating = asyncio.Lock()

    async def update(self, securities: Iterable[SecurityListed]) -> int:
        """Take in listings; if any is new or changed (``as_of`` aside), rebuild the tagger.

        The tagger is built in a worker thread, so the event loop goes on serving meanwhile, and
        swapped in whole once built. Returns how many listings were new or changed.
        """
        async with self._updating:
            changed = 0
            for security in securities:
                current = self.securities.get(security.instrument_id)
                changed += current is None or (current != security and not same_listing(current, security))
                self.securities[security.instrument_id] = security
            if changed or self.tagger is None:
                self.tagger = await asyncio.to_thread(Tagger.from_master, list(self.securities.values()))
            return changed

    def enrich(self, envelope: Envelope) -> ArticleEnriched:
        assert isinstance(envelope.data, ArticleContent)
        return self.enrich_payload(envelope.data)

    def enrich_payload(self, article: ArticleContent, enrichment_revision: int = 1) -> ArticleEnriched:
        """Tag one article revision with the current security master."""
        if self.tagger is None:
            raise RuntimeError("security master not loaded")
        mapped = html_text(article.body_html)
        mentions = self.tagger.tag(mapped, article.body_html)
        tickers = self.tagger.summarize(mentions, mapped.text, headline=article.headline)
        return ArticleEnriched(
            article=ArticleContent.model_validate(article.model_dump()),
            enrichment_revision=enrichment_revision,
            tagger_version=TAGGER_VERSION,
            mentions=tuple(mentions),
            tickers=tickers,
        )


enricher = Enricher()


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


@broker.subscriber(ARTICLES.name, **batch_subscription(settings, "enrichment"))
async def on_articles(records: Any) -> None:
    async with delivered_again_on_failure():
        await process_batch(records, handle_article, publisher)


@broker.subscriber(SECURITIES.name, **group_less_subscription(settings, max_records=2000))
async def on_securities(records: Any) -> None:
    """Reference data arrived: every instance reads the whole topic, and a change rebuilds its tagger."""
    batch: list[Record] = records  # decoded by decode_batch
    updates = [r.envelope.data for r in batch if r.envelope and isinstance(r.envelope.data, SecurityListed)]
    if updates:
        changed = await enricher.update(updates)
        if changed:
            log.info("security master updated", changed=changed, instruments=len(enricher.securities))


async def _load_master() -> None:
    """Build the first tagger from the securities topic, or from the bundled data if it is empty."""
    securities = list((await published_securities(settings)).values())
    source = "securities topic"
    if not securities:
        securities, source = build_master(), "bundled reference data (securities topic empty)"
    await enricher.update(securities)
    log.info("security master loaded", instruments=len(enricher.securities), source=source)


async def _master_loaded() -> str | None:
    return None if enricher.tagger is not None else "the security master is not loaded yet"


health = Health()
ready, alive = probes(broker, health, _master_loaded)


@asynccontextmanager
async def lifespan(*_: Any) -> AsyncIterator[None]:
    configure_logging(SERVICE)
    await ensure_topics(settings.bootstrap_servers)
    await _load_master()
    watch = LogWatch(settings, broker, health)
    async with in_background(report_lag(settings, ["enrichment"]), watch.run()):
        yield
    log.info("enrichment stopped")


app = AsgiFastStream(broker, asgi_routes=ops_routes(ready, alive), lifespan=lifespan, logger=None)
