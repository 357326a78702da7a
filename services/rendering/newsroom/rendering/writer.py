"""The fragment store's writer: applies rendering's events to one namespace, atomically.

Used by the rendering service for the live namespaces and by ``newsroom rebuild fragments``, whose
worker processes import this module, not the service (no broker, no ASGI app).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis

from newsroom.common.events import ArticleEnriched, ArticleRetracted, QuoteUpdated
from newsroom.common.store import GONE, Keys, Pointers, WriteBatch, transact
from newsroom.rendering.applying import (
    Applied,
    ArticleEvent,
    Stored,
    article_id_of,
    instrument_ids,
    instruments_to_write,
    outcome,
)
from newsroom.rendering.domain import Renderer


def meta_value(revision: int, erev: int, slug: str, tickers: Sequence[str], *, retracted: bool) -> bytes:
    """What ``meta:<id>`` holds about an article: the version written (revision, enrichment revision), its
    slug, its instruments and whether it is retracted (read back by :func:`stored_from_meta`)."""
    return orjson.dumps(
        {"rev": revision, "erev": erev, "slug": slug, "tickers": tickers, "retracted": retracted}
    )


def stored_from_meta(raw: bytes | str | None) -> Stored:
    """An article's :class:`Stored` state from ``meta:<id>`` (None: never written)."""
    if raw is None:
        return Stored(None)
    meta = orjson.loads(raw)
    return Stored((meta["rev"], meta["erev"]), meta["retracted"], tuple(meta["tickers"]))


class FragmentWriter:
    """Applies events to the fragment store of one namespace."""

    def __init__(
        self, redis: aioredis.Redis, namespace: str, renderer: Renderer, guard: Pointers | None = None
    ) -> None:
        """``guard``: write only while ``namespace`` is the active or the shadow one of these pointers
        (else :class:`~newsroom.common.store.NamespaceRetired`)."""
        self.redis = redis
        self.keys = Keys(namespace)
        self.namespace = namespace
        self.renderer = renderer
        self.guard = guard

    def _batch(self) -> WriteBatch:
        return WriteBatch(self.redis, self.keys, self.guard)

    def _put_instrument(self, batch: WriteBatch, iid: str, name: str, quote: QuoteUpdated | None) -> None:
        """An instrument's quote fragments and quote page, recorded as written (with its name)."""
        for frag, html in self.renderer.quote_fragments(iid, quote).items():
            batch.set_fragment(frag, html)
        page = self.renderer.quote_page(iid, name or None)
        batch.set_page(page.path, page.entries)
        batch.hset(self.keys.instruments, {iid: name})

    async def _quotes(self, iids: list[str], reader: Any = None) -> dict[str, QuoteUpdated | None]:
        if not iids:
            return {}
        raw = await (reader or self.redis).mget([self.keys.quote(i) for i in iids])
        return {i: QuoteUpdated.model_validate_json(r) if r else None for i, r in zip(iids, raw, strict=True)}

    async def setup(self) -> None:
        """Layout, assets, the home page and the watchlist rows (idempotent)."""
        batch = self._batch()
        for name, html in self.renderer.static_fragments().items():
            batch.set_fragment(name, html)
        home = self.renderer.home()
        batch.set_page(home.path, home.entries)
        for iid, quote in (await self._quotes(list(self.renderer.watchlist))).items():
            batch.set_fragment(f"qrow:{iid}", self.renderer.quote_row(iid, quote))
        await batch.execute()

    async def article(self, enriched: ArticleEnriched) -> bool:
        """Write an article revision's page; False when it is stale or retracted."""
        return (await self.apply([enriched])).rendered > 0

    async def retract(self, event: ArticleRetracted) -> None:
        """The article vanishes from every list; its URL answers 410 from now on."""
        await self.apply([event])

    async def apply(self, events: Sequence[ArticleEvent]) -> Applied:
        """Apply article events (in log order) as one atomic write: as if applied one by one.

        One round trip reads what the store holds for these articles and their instruments; each
        article's events are folded over that (:func:`~newsroom.rendering.applying.outcome`); only
        the pages they end with are rendered; one MULTI/EXEC writes them all, unless one of these
        articles was written meanwhile: then it reads and decides again (see
        :func:`~newsroom.common.store.transact`).
        """
        by_article: dict[str, list[ArticleEvent]] = {}
        for event in events:
            by_article.setdefault(article_id_of(event), []).append(event)
        named = sorted(
            {iid for evs in by_article.values() for e in evs if not isinstance(e, ArticleRetracted)
             for iid in instrument_ids(e)}
        )  # fmt: skip
        if not by_article:
            return Applied()
        meta_keys = [self.keys.meta(aid) for aid in by_article]
        applied = Applied()

        async def decide(reader: Any) -> WriteBatch:
            """Read what the store holds, fold the events over it, render what they end with."""
            nonlocal applied
            metas = await reader.mget(meta_keys)
            names = await reader.hmget(self.keys.instruments, named) if named else []
            known = {
                iid: v.decode() if isinstance(v, bytes) else v for iid, v in zip(named, names, strict=True)
            }
            outcomes = [
                outcome(stored_from_meta(meta), evs)
                for meta, evs in zip(metas, by_article.values(), strict=True)
            ]
            instruments = instruments_to_write(outcomes, known)
            if instruments:  # their quote fragments are written from the stored quotes: watch those too
                await reader.watch(*(self.keys.quote(iid) for iid in instruments))
            quotes = await self._quotes(list(instruments), reader)
            batch = self._batch()
            applied = Applied()
            for aid, o in zip(by_article, outcomes, strict=True):
                applied.rendered += len(o.applied)
                applied.skipped += o.skipped
                if o.retraction is not None:
                    applied.retracted += 1
                    self._put_retraction(batch, aid, o.stored, o.retraction)
                elif o.final is not None:
                    self._put_article(batch, o.stored, o.final)
            for iid, name in instruments.items():
                self._put_instrument(batch, iid, name, quotes[iid])
            return batch

        # The metas are watched: a write to one of these articles between the read and the write (the
        # live renderer and a rebuild both fill a shadow namespace) makes this decide again. Not the
        # instruments hash: parallel rebuild workers add to it all the time, and an instrument's page
        # written twice costs little (one written without its name gets it from the next article).
        await transact(self.redis, decide, watch=meta_keys, guard=self.guard, namespace=self.namespace)
        return applied

    def _put_article(self, batch: WriteBatch, stored: Stored, enriched: ArticleEnriched) -> None:
        a = enriched.article
        page = self.renderer.article(enriched)
        tickers = instrument_ids(enriched)
        score = a.published_at.timestamp()
        batch.set_page(page.path, page.entries)
        batch.set_fragment(f"item:{a.article_id}", page.item)
        batch.list_add("latest", a.article_id, score)
        for iid in set(stored.tickers) - set(tickers):
            batch.list_remove(f"ticker:{iid}", a.article_id)
        for iid in tickers:
            batch.list_add(f"ticker:{iid}", a.article_id, score)
        meta = meta_value(a.revision, enriched.enrichment_revision, a.slug, tickers, retracted=False)
        batch.set(self.keys.meta(a.article_id), meta)

    def _put_retraction(self, batch: WriteBatch, aid: str, stored: Stored, event: ArticleRetracted) -> None:
        for iid in stored.tickers:
            batch.list_remove(f"ticker:{iid}", aid)
        batch.list_remove("latest", aid)
        batch.delete_fragment(f"item:{aid}")
        batch.set_page(f"news/{event.slug}", [GONE])
        batch.set(self.keys.meta(aid), meta_value(event.revision, 0, event.slug, (), retracted=True))

    async def quotes(self, snapshots: list[QuoteUpdated]) -> int:
        """Re-render only the fragments that show these instruments; returns how many changed."""
        latest: dict[str, QuoteUpdated] = {}
        for s in snapshots:
            if s.instrument_id not in latest or s.as_of >= latest[s.instrument_id].as_of:
                latest[s.instrument_id] = s
        iids = list(latest)
        if not iids:
            return 0
        changed = 0

        async def decide(reader: Any) -> WriteBatch:
            """Compare with the quotes the store holds; write the newer ones and what shows them."""
            nonlocal changed
            stored = await self._quotes(iids, reader)
            known = dict(zip(iids, await reader.hmget(self.keys.instruments, iids), strict=True))
            batch = self._batch()
            changed = 0
            for iid, quote in latest.items():
                old = stored.get(iid)
                if old is not None and old.as_of > quote.as_of:
                    continue
                changed += 1
                batch.set(self.keys.quote(iid), quote.model_dump_json())
                if known[iid] is None:  # an instrument no article named yet still gets a quote page
                    self._put_instrument(batch, iid, "", quote)
                else:
                    for name, html in self.renderer.quote_fragments(iid, quote).items():
                        batch.set_fragment(name, html)
                batch.publish(self.keys.live_quotes, live_message(iid, quote))
            return batch

        # The stored quotes are watched from the read to the write: a newer one written meanwhile (a
        # rebuild and the live renderer both fill a shadow namespace) is never overwritten.
        watched = [*(self.keys.quote(iid) for iid in iids), self.keys.instruments]
        await transact(self.redis, decide, watch=watched, guard=self.guard, namespace=self.namespace)
        return changed


def live_message(iid: str, quote: QuoteUpdated) -> bytes:
    """What the browser's live-quote script needs, as JSON."""

    def num(value: Decimal | None) -> float | None:
        return float(value) if value is not None else None

    return orjson.dumps(
        {
            "id": iid,
            "price": num(quote.price),
            "change": num(quote.change),
            "change_percent": num(quote.change_percent),
        }
    )
