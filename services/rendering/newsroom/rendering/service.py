"""The rendering service: the only writer of HTML fragments.

Consumes enriched articles (and forwarded retractions) and public quote snapshots, and
writes fragments and page manifests into Redis. Every page change is one MULTI/EXEC, so
a reader never sees a new body with an old manifest; re-delivered events write the same
bytes, and an older revision never overwrites a newer one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog
from faststream.asgi import AsgiFastStream

from newsroom.common.events import ArticleEnriched, ArticleRetracted, QuoteUpdated
from newsroom.common.logging import configure_logging
from newsroom.common.messaging import Publisher, Record, batch_subscription, make_broker, process_batch
from newsroom.common.ops import ops_routes
from newsroom.common.settings import get_settings
from newsroom.common.store import GONE, Keys, connect, namespace_for
from newsroom.common.topics import ENRICHED, SNAPSHOTS, ensure_topics
from newsroom.rendering.domain import Page, Renderer

SERVICE = "rendering"
settings = get_settings()
broker = make_broker(SERVICE, settings)
publisher = Publisher(broker, SERVICE)
log = structlog.get_logger(SERVICE)


class FragmentWriter:
    """Applies events to the fragment store of one namespace."""

    def __init__(self, redis: aioredis.Redis, namespace: str, renderer: Renderer) -> None:
        self.redis = redis
        self.keys = Keys(namespace)
        self.namespace = namespace
        self.renderer = renderer

    def _put_page(self, pipe: Any, page: Page) -> None:
        for name, html in page.fragments.items():
            pipe.set(self.keys.frag(name), html)
        pipe.delete(self.keys.page(page.path))
        pipe.rpush(self.keys.page(page.path), *page.manifest)

    async def _quotes(self, iids: list[str]) -> dict[str, QuoteUpdated | None]:
        if not iids:
            return {}
        raw = await self.redis.mget([self.keys.quote(i) for i in iids])
        return {i: QuoteUpdated.model_validate_json(r) if r else None for i, r in zip(iids, raw, strict=True)}

    async def setup(self) -> None:
        """Layout, assets, the home page and the watchlist rows (idempotent)."""
        pipe = self.redis.pipeline(transaction=True)
        for name, html in self.renderer.static_fragments().items():
            pipe.set(self.keys.frag(name), html)
        self._put_page(pipe, self.renderer.home())
        quotes = await self._quotes(list(self.renderer.watchlist))
        for iid, quote in quotes.items():
            pipe.set(self.keys.frag(f"qrow:{iid}"), self.renderer.quote_row(iid, quote))
        await pipe.execute()

    async def article(self, enriched: ArticleEnriched) -> bool:
        """Write an article revision's page; False when it is stale or retracted."""
        a = enriched.article
        meta = await self.redis.hgetall(self.keys.meta(a.article_id))
        if meta.get(b"retracted") == b"1":
            return False
        version = (a.revision, enriched.enrichment_revision)
        if meta and (int(meta[b"rev"]), int(meta[b"erev"])) > version:
            return False
        page = self.renderer.article(enriched)
        tickers = [f"{t.exchange}:{t.symbol}" for t in enriched.tickers]
        names = {f"{t.exchange}:{t.symbol}": t.name for t in enriched.tickers}
        old_frags = orjson.loads(meta[b"frags"]) if meta else []
        old_tickers = orjson.loads(meta[b"tickers"]) if meta else []
        quotes = await self._quotes(tickers)
        score = a.published_at.timestamp()

        pipe = self.redis.pipeline(transaction=True)
        self._put_page(pipe, page)
        for name in old_frags:
            if name not in page.fragments:
                pipe.delete(self.keys.frag(name))
        pipe.set(self.keys.frag(f"item:{a.article_id}"), self.renderer.item(a, enriched.tickers))
        pipe.zadd(self.keys.zlist("latest"), {a.article_id: score})
        for iid in set(old_tickers) - set(tickers):
            pipe.zrem(self.keys.zlist(f"ticker:{iid}"), a.article_id)
        for iid in tickers:
            pipe.zadd(self.keys.zlist(f"ticker:{iid}"), {a.article_id: score})
            for name, html in self.renderer.quote_fragments(iid, quotes[iid]).items():
                pipe.set(self.keys.frag(name), html)
            self._put_page(pipe, self.renderer.quote_page(iid, names[iid]))
        pipe.hset(
            self.keys.meta(a.article_id),
            mapping={
                "rev": a.revision,
                "erev": enriched.enrichment_revision,
                "slug": a.slug,
                "frags": orjson.dumps(sorted(page.fragments)),
                "tickers": orjson.dumps(tickers),
                "retracted": 0,
            },
        )
        await pipe.execute()
        return True

    async def retract(self, event: ArticleRetracted) -> None:
        """The article vanishes from every list; its URL answers 410 from now on."""
        meta = await self.redis.hgetall(self.keys.meta(event.article_id))
        pipe = self.redis.pipeline(transaction=True)
        for name in orjson.loads(meta[b"frags"]) if meta else []:
            pipe.delete(self.keys.frag(name))
        for iid in orjson.loads(meta[b"tickers"]) if meta else []:
            pipe.zrem(self.keys.zlist(f"ticker:{iid}"), event.article_id)
        pipe.zrem(self.keys.zlist("latest"), event.article_id)
        pipe.delete(self.keys.frag(f"item:{event.article_id}"))
        pipe.delete(self.keys.page(f"news/{event.slug}"))
        pipe.rpush(self.keys.page(f"news/{event.slug}"), GONE)
        pipe.hset(
            self.keys.meta(event.article_id),
            mapping={"rev": event.revision, "erev": 0, "slug": event.slug, "frags": b"[]",
                     "tickers": b"[]", "retracted": 1},
        )  # fmt: skip
        await pipe.execute()

    async def quotes(self, snapshots: list[QuoteUpdated]) -> int:
        """Re-render only the fragments that show these instruments; returns how many changed."""
        latest: dict[str, QuoteUpdated] = {}
        for s in snapshots:
            if s.instrument_id not in latest or s.as_of >= latest[s.instrument_id].as_of:
                latest[s.instrument_id] = s
        stored = await self._quotes(list(latest))
        pipe = self.redis.pipeline(transaction=True)
        changed = 0
        for iid, quote in latest.items():
            old = stored.get(iid)
            if old is not None and old.as_of > quote.as_of:
                continue
            changed += 1
            pipe.set(self.keys.quote(iid), quote.model_dump_json())
            for name, html in self.renderer.quote_fragments(iid, quote).items():
                pipe.set(self.keys.frag(name), html)
            if not await self.redis.exists(self.keys.page(f"quote/{quote.exchange}/{quote.symbol}")):
                self._put_page(pipe, self.renderer.quote_page(iid, None))
            pipe.publish(
                f"{self.namespace}:live",
                orjson.dumps(
                    {
                        "id": iid,
                        "price": float(quote.price),
                        "change": float(quote.change) if quote.change is not None else None,
                        "change_percent": float(quote.change_percent)
                        if quote.change_percent is not None
                        else None,
                    }
                ),
            )
        await pipe.execute()
        return changed


renderer = Renderer(watchlist=settings.watchlist, delay_minutes=settings.quote_delay_minutes)
redis = connect(settings.redis_url)
writer = FragmentWriter(redis, namespace_for(settings.template_version), renderer)


async def handle_enriched(record: Record, envelope: Any) -> list[Any]:
    data = envelope.data
    if isinstance(data, ArticleEnriched):
        wrote = await writer.article(data)
        log.info("article rendered" if wrote else "stale revision skipped", article_id=record.key)
    elif isinstance(data, ArticleRetracted):
        await writer.retract(data)
        log.info("article retracted", article_id=data.article_id)
    else:
        raise ValueError(f"{envelope.type} does not belong on {ENRICHED.name}")
    return []


@broker.subscriber(ENRICHED.name, **batch_subscription(settings, "rendering-articles"))
async def on_enriched(records: list[Record]) -> None:
    await process_batch(records, handle_enriched, publisher)


@broker.subscriber(SNAPSHOTS.name, **batch_subscription(settings, "rendering-quotes", max_records=2000))
async def on_snapshots(records: list[Record]) -> None:
    snapshots: list[QuoteUpdated] = []
    for record in records:
        if record.envelope and isinstance(record.envelope.data, QuoteUpdated):
            snapshots.append(record.envelope.data)
        else:
            await publisher.dead_letter(record, record.error or "not a quote snapshot")
    await writer.quotes(snapshots)


async def _ready() -> bool:
    return bool(await redis.ping()) and await broker.ping(timeout=2.0)


@asynccontextmanager
async def lifespan(*_: Any) -> AsyncIterator[None]:
    configure_logging(SERVICE)
    await ensure_topics(settings.bootstrap_servers)
    await writer.setup()
    yield
    await redis.aclose()
    log.info("rendering stopped")


app = AsgiFastStream(broker, asgi_routes=ops_routes(_ready), lifespan=lifespan, logger=None)
