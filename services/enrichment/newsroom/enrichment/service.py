"""The enrichment service: tags every article revision with the instruments it mentions.

Consumes the articles topic, publishes ``ArticleEnriched`` (and forwards retractions, in
order, under the same key) to the enriched topic. Its security master is the bundled reference
data with the securities topic on top, so new reference data is an event, not a deploy: a
``SecurityListed`` that changes a listing rebuilds the tagger (off the event loop), and a replay
of known listings changes nothing. A record on the securities topic that is no valid listing
(undecodable, or failing ``listing_problem``) never reaches the tagger; the consumer group
``enrichment-securities`` dead-letters it, once whatever the number of instances.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import structlog
from faststream.asgi import AsgiFastStream
from pydantic import BaseModel

from newsroom.common.admin import ensure_topics
from newsroom.common.events import (
    ENVELOPE_BYTES,
    MAX_EVENT_BYTES,
    ArticleContent,
    ArticleEnriched,
    ArticleRetracted,
    Envelope,
    SecurityListed,
    TaggedTicker,
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
from newsroom.common.settings import Settings, get_settings
from newsroom.common.tasks import in_background
from newsroom.common.text import html_text
from newsroom.common.topics import ARTICLES, ENRICHED, SECURITIES
from newsroom.enrichment.master import build_master
from newsroom.enrichment.securities import listing_problem, published_securities, same_listing, valid_listing
from newsroom.enrichment.tagger import TAGGER_VERSION, Tagger

SERVICE = "enrichment"
SECURITIES_GROUP = "enrichment-securities"  # dead-letters bad listings; see on_securities_checked
settings = get_settings()
broker = make_broker(SERVICE, settings)
publisher = Publisher(broker, SERVICE, settings.publish_timeout_seconds)
log = structlog.get_logger(SERVICE)


MAX_SHRINK = 0.10
"""The share of its instruments, or of their names (aliases), that one change to the security master
may take away; a change that takes more is refused (the master in use stays), whatever its source."""


def _size(securities: Mapping[str, SecurityListed]) -> tuple[int, int]:
    """How many instruments a master holds, and how many names (aliases) they have."""
    return len(securities), sum(len(s.aliases) for s in securities.values())


def shrinks(before: Mapping[str, SecurityListed], after: Mapping[str, SecurityListed]) -> str | None:
    """Why ``after`` must not replace ``before`` (it is sharply smaller: see :data:`MAX_SHRINK`), or None."""
    for what, old, new in zip(("instruments", "names"), _size(before), _size(after), strict=True):
        if old and new < old * (1 - MAX_SHRINK):
            return f"its {what} would fall from {old:,} to {new:,}"
    return None


class Enricher:
    """Holds the current tagger; rebuilt whenever the security master changes.

    The master is the bundled reference data (:func:`~newsroom.enrichment.master.build_master`, the
    floor) with the valid listings of the securities topic on top (see :meth:`load`); a listing that
    fails :func:`~newsroom.enrichment.securities.listing_problem` never enters it, and a change that
    would shrink it sharply (:func:`shrinks`) is refused with a log line, the previous master kept.
    """

    def __init__(self) -> None:
        self.securities: dict[str, SecurityListed] = {}
        self.tagger: Tagger | None = None
        self._updating = asyncio.Lock()

    async def load(self, floor: Iterable[SecurityListed], published: Iterable[SecurityListed]) -> None:
        """Start from ``floor`` with the ``published`` listings on top (whichever this held before).

        If the listings on top would shrink the floor sharply, the floor alone is used.
        """
        base = {s.instrument_id: s for s in floor if listing_problem(s) is None}
        candidate = dict(base)
        candidate.update((s.instrument_id, s) for s in published if listing_problem(s) is None)
        refusal = shrinks(base, candidate)
        if refusal is not None:
            log.error("security master refused", reason=refusal, kept="bundled reference data")
            candidate = base
        async with self._updating:
            self.tagger = await asyncio.to_thread(Tagger.from_master, list(candidate.values()))
            self.securities = candidate

    async def update(self, securities: Iterable[SecurityListed]) -> int:
        """Take in listings; if any is new or changed (``as_of`` aside), rebuild the tagger.

        An invalid listing is left out. The tagger is built in a worker thread, so the event loop goes
        on serving meanwhile, and swapped in whole once built. Returns how many listings were new or
        changed (0 when the change was refused: see :func:`shrinks`).
        """
        async with self._updating:
            candidate = dict(self.securities)
            changed = 0
            for security in securities:
                if listing_problem(security) is not None:
                    continue
                current = candidate.get(security.instrument_id)
                changed += current is None or (current != security and not same_listing(current, security))
                candidate[security.instrument_id] = security
            if not changed and self.tagger is not None:
                self.securities = candidate  # as_of alone: nothing to rebuild
                return 0
            refusal = shrinks(self.securities, candidate)
            if refusal is not None:
                log.error(
                    "security master refused", reason=refusal, changed=changed,
                    kept=f"the master in use ({len(self.securities):,} instruments)",
                )  # fmt: skip
                return 0
            self.tagger = await asyncio.to_thread(Tagger.from_master, list(candidate.values()))
            self.securities = candidate
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
        return fitted(
            ArticleEnriched(
                article=ArticleContent.model_validate(article.model_dump()),
                enrichment_revision=enrichment_revision,
                tagger_version=TAGGER_VERSION,
                mentions=tuple(mentions),
                tickers=tickers,
            )
        )


def _json_bytes(model: BaseModel) -> int:
    return len(model.__pydantic_serializer__.to_json(model))


_MAX_ITEM_BYTES = 1_500  # a mention or ticker in JSON, at most: a name of 200 characters, 6 bytes each


def _surely_fits(enriched: ArticleEnriched, budget: int) -> bool:
    """Whether ``enriched`` fits in ``budget`` bytes by a bound, without encoding it (the usual case):
    JSON spells no character in more than six bytes."""
    a = enriched.article
    optional = (a.byline, a.dateline, a.url, a.source_id, *a.ticker_hints)
    chars = sum(map(len, (a.body_html, a.headline, a.source, a.slug, a.article_id, a.content_hash)))
    chars += sum(len(text) for text in optional if text)
    items = len(enriched.mentions) + len(enriched.tickers)
    return 6 * chars + _MAX_ITEM_BYTES * items + ENVELOPE_BYTES <= budget


def fitted(enriched: ArticleEnriched) -> ArticleEnriched:
    """``enriched``, or as much of it as fits in an event a broker takes (:data:`MAX_EVENT_BYTES`).

    An article the API accepted always leaves room for its tickers and some mentions, but a body dense
    with names can have more mentions than fit. Then the rule is: the tickers, most relevant first
    (each still counting all its mentions), as many as fit; then each kept ticker's first mention,
    in text order; then the other mentions in text order, as many as fit. The page links only the
    mentions kept. An article too large even without any (written to the log by another producer)
    is left whole, to be dead-lettered as too large.
    """
    budget = MAX_EVENT_BYTES - ENVELOPE_BYTES
    if _surely_fits(enriched, budget) or _json_bytes(enriched) <= budget:
        return enriched
    bare = enriched.model_copy(update={"mentions": (), "tickers": ()})
    room = budget - _json_bytes(bare)
    if room < 0:
        return enriched
    tickers: list[TaggedTicker] = []
    for ticker in enriched.tickers:
        cost = _json_bytes(ticker) + 1  # and a comma
        if cost > room:
            break
        room -= cost
        tickers.append(ticker)
    named = {(t.exchange, t.symbol) for t in tickers}
    firsts: list[int] = []
    others: list[int] = []
    seen: set[tuple[str, str]] = set()
    for i, mention in enumerate(enriched.mentions):
        key = (mention.exchange, mention.symbol)
        if key in named:
            (others if key in seen else firsts).append(i)
            seen.add(key)
    kept: list[int] = []
    for i in (*firsts, *others):
        cost = _json_bytes(enriched.mentions[i]) + 1
        if cost <= room:
            room -= cost
            kept.append(i)
    log.warning(
        "mentions left out to fit the enriched event",
        article_id=enriched.article.article_id,
        mentions=len(enriched.mentions),
        kept=len(kept),
        tickers=len(enriched.tickers),
        tickers_kept=len(tickers),
    )
    mentions = tuple(enriched.mentions[i] for i in sorted(kept))
    return enriched.model_copy(update={"mentions": mentions, "tickers": tuple(tickers)})


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
async def on_securities(records: list[Record]) -> None:
    """Reference data arrived: every instance reads the whole topic, and a change rebuilds its tagger.

    A record that is no valid listing is skipped here: :func:`on_securities_checked` dead-letters it.
    """
    updates = [security for r in records if (security := valid_listing(r)[0]) is not None]
    if updates:
        changed = await enricher.update(updates)
        if changed:
            log.info("security master updated", changed=changed, instruments=len(enricher.securities))


@broker.subscriber(SECURITIES.name, **batch_subscription(settings, SECURITIES_GROUP, max_records=2000))
async def on_securities_checked(records: list[Record]) -> None:
    """Dead-letter what the securities topic holds that is no valid listing, with the reason.

    Every instance reads the whole topic without a group (:func:`on_securities`) and skips such a
    record; this group's consumer, which one instance holds whatever the replicas, parks it, so that
    it is dead-lettered once, not once per instance.
    """
    bad = [(r, reason) for r in records if (reason := valid_listing(r)[1]) is not None]
    async with delivered_again_on_failure():
        await publisher.dead_letter_many(bad)


async def load_master(into: Enricher, cfg: Settings) -> None:
    """Build ``into``'s first master: the bundled reference data, with the securities topic's valid
    listings on top (a poisoned or half-empty topic cannot shrink it)."""
    floor = await asyncio.to_thread(build_master)
    published = await published_securities(cfg)
    await into.load(floor, published.values())
    log.info(
        "security master loaded",
        instruments=len(into.securities),
        bundled=len(floor),
        from_topic=len(published),
    )


async def _load_master() -> None:
    await load_master(enricher, settings)


async def _master_loaded() -> str | None:
    return None if enricher.tagger is not None else "the security master is not loaded yet"


health = Health()
ready, alive = probes(broker, health, _master_loaded)


@asynccontextmanager
async def lifespan(*_: Any) -> AsyncIterator[None]:
    configure_logging(SERVICE)
    await ensure_topics(settings)
    await _load_master()
    watch = LogWatch(settings, broker, health)
    async with in_background(report_lag(settings, ["enrichment"]), watch.run()):
        yield
    log.info("enrichment stopped")


app = AsgiFastStream(broker, asgi_routes=ops_routes(ready, alive), lifespan=lifespan, logger=None)
