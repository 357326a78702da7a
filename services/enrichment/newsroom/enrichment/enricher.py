"""The enrichment service's state: the tagger in use, rebuilt whenever the security master changes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

from newsroom.common.events import ArticleContent, ArticleEnriched, Envelope, SecurityListed
from newsroom.common.settings import Settings
from newsroom.enrichment.domain import enriched, merged, shrinks, valid_master
from newsroom.enrichment.master import build_master
from newsroom.enrichment.securities import published_securities
from newsroom.enrichment.tagger import Tagger

log = structlog.get_logger("enrichment")


class Enricher:
    """Holds the current tagger; rebuilt whenever the security master changes.

    The master is the bundled reference data (:func:`~newsroom.enrichment.master.build_master`, the
    floor) with the valid listings of the securities topic on top (see :meth:`load`); a listing that
    fails :func:`~newsroom.enrichment.securities.listing_problem` never enters it, and a change that
    would shrink it sharply (:func:`~newsroom.enrichment.domain.shrinks`) is refused with a log line,
    the previous master kept.
    """

    def __init__(self) -> None:
        self.securities: dict[str, SecurityListed] = {}
        self.tagger: Tagger | None = None
        self._updating = asyncio.Lock()

    async def load(self, floor: Iterable[SecurityListed], published: Iterable[SecurityListed]) -> None:
        """Start from ``floor`` with the ``published`` listings on top (whichever this held before).

        If the listings on top would shrink the floor sharply, the floor alone is used.
        """
        base = valid_master(floor)
        candidate = merged(base, published)[0]
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
        changed (0 when the change was refused: see :func:`~newsroom.enrichment.domain.shrinks`).
        """
        async with self._updating:
            candidate, changed = merged(self.securities, securities)
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
        return enriched(self.tagger, article, enrichment_revision)


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
