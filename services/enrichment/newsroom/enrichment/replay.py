"""Enrichment replayed from the log: re-tag every live article with the current tagger and master.

:func:`rebuild_enrichment` folds the articles and enriched topics (:func:`read_state`) into each
article's latest revision, its highest enrichment revision, its last tickers and whether it was
retracted; then it re-tags the latest revision of every article that is not retracted and publishes
``ArticleEnriched`` with an enrichment revision one above the highest the enriched topic holds for that
article (the renderer then picks the new revisions up). An enriched event too large for the broker is
left out, and its article keeps the enrichment it has. The ``newsroom rebuild enrichment`` command
(``newsroom.cli.rebuild``) drives it and prints its :class:`EnrichmentSummary`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from newsroom.common.events import ArticleContent, ArticleEnriched, ArticleRetracted, new_envelope
from newsroom.common.messaging import Outgoing, Publisher, fitting, make_broker
from newsroom.common.reading import decoded_payloads, read_topic
from newsroom.common.settings import Settings
from newsroom.common.topics import ARTICLES, ENRICHED
from newsroom.enrichment.enricher import Enricher, load_master

log = structlog.get_logger("rebuild")
PRODUCER = "rebuild"


@dataclass
class EnrichmentSummary:
    """What an enrichment rebuild did."""

    articles: int = 0
    retagged: int = 0
    changed: int = 0
    retracted: int = 0
    too_large: int = 0
    seconds: float = 0.0
    published: bool = False


@dataclass
class LogState:
    """Per article: its latest content revision, highest enrichment revision, last tickers, retraction."""

    latest: dict[str, ArticleContent] = field(default_factory=dict)
    enrichment_revision: dict[str, int] = field(default_factory=dict)
    tickers: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    retracted: set[str] = field(default_factory=set)


async def read_state(settings: Settings) -> LogState:
    """Fold the articles and enriched topics into what ``rebuild enrichment`` needs."""
    state = LogState()
    best: dict[str, tuple[int, int]] = {}
    async for batch in read_topic(settings, ENRICHED.name):
        for data in decoded_payloads(batch):
            if isinstance(data, ArticleEnriched):
                aid = data.article.article_id
                erev = data.enrichment_revision
                state.enrichment_revision[aid] = max(erev, state.enrichment_revision.get(aid, 0))
                version = (data.article.revision, erev)
                if version >= best.get(aid, (0, 0)):
                    best[aid] = version
                    state.tickers[aid] = tuple(sorted((t.exchange, t.symbol) for t in data.tickers))
            elif isinstance(data, ArticleRetracted):
                state.retracted.add(data.article_id)
    async for batch in read_topic(settings, ARTICLES.name):
        for data in decoded_payloads(batch):
            if isinstance(data, ArticleContent):
                current = state.latest.get(data.article_id)
                if current is None or data.revision >= current.revision:
                    state.latest[data.article_id] = data
            elif isinstance(data, ArticleRetracted):
                state.retracted.add(data.article_id)
    return state


def _unreported(done: int, total: int) -> None:
    pass


async def rebuild_enrichment(
    settings: Settings,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] = _unreported,
    burst: int = 500,
) -> EnrichmentSummary:
    """Re-tag every live article and publish the new enrichment revisions (unless ``dry_run``).

    ``progress(done, total)`` is told how many articles are re-tagged of how many, after each burst.
    """
    started = time.perf_counter()
    summary = EnrichmentSummary(published=not dry_run)
    state = await read_state(settings)
    enricher = Enricher()
    await load_master(enricher, settings)  # the bundled data with the topic's valid listings on top
    summary.articles = len(state.latest)
    todo = [a for aid, a in state.latest.items() if aid not in state.retracted]
    summary.retracted = summary.articles - len(todo)
    broker = None if dry_run else make_broker(PRODUCER, settings)
    if broker is not None:
        await broker.start()
    try:
        publisher = Publisher(broker, PRODUCER) if broker is not None else None
        progress(0, len(todo))
        for i in range(0, len(todo), burst):
            out: list[Outgoing] = []
            for article in todo[i : i + burst]:
                erev = state.enrichment_revision.get(article.article_id, 0) + 1
                enriched = enricher.enrich_payload(article, enrichment_revision=erev)
                tickers = tuple(sorted((t.exchange, t.symbol) for t in enriched.tickers))
                summary.changed += tickers != state.tickers.get(article.article_id)
                out.append((ENRICHED, article.article_id, new_envelope(enriched, producer=PRODUCER)))
            groups = [(item, [item]) for item in out]
            if publisher is None:
                refused = fitting(groups)[1]
            else:
                refused = await publisher.publish_fitting(groups)
            for _, reason in refused:  # its article keeps the enrichment it has
                log.warning("enriched event too large to publish; its article keeps its own", why=reason)
            summary.too_large += len(refused)
            summary.retagged += len(out) - len(refused)
            progress(summary.retagged, len(todo))
    finally:
        if broker is not None:
            await broker.stop()
    summary.seconds = time.perf_counter() - started
    return summary
