"""Where ingestion's article registry lives: a :class:`RegistryStore` shared by every replica.

The registry is a projection of the articles topic (see :class:`~newsroom.ingestion.domain.ArticleRegistry`
for the rules); the store keeps it, and the claims that let one replica at a time decide about the
keys a submission could match. :class:`RedisRegistryStore` is the one the service runs on; its
layout, under the prefix ``ingest:`` of the shared redis-server (none of the renderer's namespaces)::

    ingest:registry           STRING  the marker: present while the store holds the whole log's projection
    ingest:a:<article id>     HASH    revision, retracted (0/1), known (JSON: hash, slug, source, source id)
    ingest:src:<source>\\0<id> STRING  article id known by that source's item id
    ingest:url:<canonical>    STRING  article id known by that URL
    ingest:hash:<sha256>      STRING  article id one of whose versions has that text
    ingest:claim:<key>        STRING  a decider's token, with a time to live (``SET NX PX``)

An event is applied by one Lua call that replaces an article only with a higher revision, so
concurrent writers (the write-through and the ``ingestion-registry`` consumer) cannot move it back.
:class:`MemoryRegistryStore` is the same in one process, for tests with no Redis.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Protocol

import orjson
import redis.asyncio as aioredis

from newsroom.common.events import ArticleContent, ArticleRetracted, Payload
from newsroom.ingestion.domain import ArticleRegistry, Known, index_keys

PREFIX = "ingest:"
MARKER = PREFIX + "registry"
IndexKey = tuple[str, str]  # (kind, value): ("src", source key), ("url", canonical URL), ("hash", sha256)


class RegistryStore(Protocol):
    """The registry shared by the replicas, and the claims that serialise their decisions."""

    async def current(self) -> bool:
        """Whether the store holds the projection of the whole log (its marker is there)."""
        ...

    async def mark_current(self) -> None:
        """Say the store now holds the projection of the whole log."""
        ...

    async def clear(self) -> None:
        """Forget every article (the marker first, so that no replica decides meanwhile)."""
        ...

    async def claim(self, names: Sequence[str], token: str, ttl_ms: int) -> bool:
        """Claim every name for ``token`` (already ours counts), or none of them."""
        ...

    async def release(self, names: Sequence[str], token: str) -> None:
        """Drop the claims among ``names`` that ``token`` holds."""
        ...

    async def read(self, keys: Iterable[IndexKey], ids: Iterable[str]) -> tuple[ArticleRegistry, bool]:
        """The part of the registry that ``keys`` and ``ids`` reach (as an :class:`ArticleRegistry` the
        domain decides against), and whether the store is current."""
        ...

    async def apply(self, payloads: Sequence[Payload]) -> None:
        """Fold article events into the registry, in order; an older revision changes nothing."""
        ...


def claim_name(kind: str, value: str) -> str:
    """The claim on an index key (``src``, ``url``, ``hash``) or an article id (``id``)."""
    return f"{PREFIX}claim:{kind}:{value}"


def _view(hits: dict[IndexKey, str], known: dict[str, Known]) -> ArticleRegistry:
    """An :class:`ArticleRegistry` of what was read: index entries only to articles read with them."""
    view = ArticleRegistry(by_id=known)
    fields = {"src": view.by_source_id, "url": view.by_url, "hash": view.by_hash}
    for (kind, value), article_id in hits.items():
        if article_id in known:
            fields[kind][value] = article_id
    return view


class MemoryRegistryStore:
    """The store in this process's memory: for tests over FastStream's in-memory broker."""

    def __init__(self, registry: ArticleRegistry | None = None, *, current: bool = True) -> None:
        self.registry = registry if registry is not None else ArticleRegistry()
        self.claims: dict[str, tuple[str, float]] = {}
        self.marker = current

    async def current(self) -> bool:
        return self.marker

    async def mark_current(self) -> None:
        self.marker = True

    async def clear(self) -> None:
        self.marker = False
        self.registry = ArticleRegistry()

    async def claim(self, names: Sequence[str], token: str, ttl_ms: int) -> bool:
        now = time.monotonic()
        held = {n: t for n, (t, until) in self.claims.items() if until > now}
        if any(held.get(n, token) != token for n in names):
            return False
        self.claims.update((n, (token, now + ttl_ms / 1000)) for n in names)
        return True

    async def release(self, names: Sequence[str], token: str) -> None:
        for name in names:
            if self.claims.get(name, ("", 0.0))[0] == token:
                del self.claims[name]

    async def read(self, keys: Iterable[IndexKey], ids: Iterable[str]) -> tuple[ArticleRegistry, bool]:
        r = self.registry
        fields = {"src": r.by_source_id, "url": r.by_url, "hash": r.by_hash}
        hits = {key: hit for key in keys if (hit := fields[key[0]].get(key[1]))}
        wanted = {*ids, *hits.values()}
        known = {i: replace(r.by_id[i]) for i in wanted if i in r.by_id}  # copies: the caller folds into them
        return _view(hits, known), self.marker

    async def apply(self, payloads: Sequence[Payload]) -> None:
        for payload in payloads:
            self.registry.apply(payload)


# KEYS: the names; ARGV[1] the token, ARGV[2] the time to live (ms). All claimed, or none.
_CLAIM = """
for i = 1, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if holder and holder ~= ARGV[1] then return 0 end
end
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
return 1
"""
_RELEASE = """
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 0
"""
# KEYS[1] the article's hash, KEYS[2..] its index keys (content only).
# ARGV: kind ("content" or "retracted"), revision, article id, the JSON of what is known of it.
_APPLY = """
local current = redis.call('HGET', KEYS[1], 'revision')
local revision = tonumber(ARGV[2])
if ARGV[1] == 'retracted' then
  if not current then return 0 end
  redis.call('HSET', KEYS[1], 'retracted', '1')
  if revision > tonumber(current) then redis.call('HSET', KEYS[1], 'revision', ARGV[2]) end
  return 1
end
if current and tonumber(current) >= revision then return 0 end
redis.call('HSET', KEYS[1], 'revision', ARGV[2], 'retracted', '0', 'known', ARGV[4])
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[3]) end
return 1
"""


def _index_name(kind: str, value: str) -> str:
    return f"{PREFIX}{kind}:{value}"


def _article_name(article_id: str) -> str:
    return f"{PREFIX}a:{article_id}"


class RedisRegistryStore:
    """The store in Redis, shared by every replica (see the module's docstring for its layout)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._apply = redis.register_script(_APPLY)

    async def current(self) -> bool:
        return bool(await self.redis.exists(MARKER))

    async def mark_current(self) -> None:
        await self.redis.set(MARKER, orjson.dumps({"built_at": time.time()}))

    async def clear(self) -> None:
        await self.redis.delete(MARKER)
        for kind in ("a", "src", "url", "hash"):
            batch: list[bytes] = []
            async for name in self.redis.scan_iter(match=f"{PREFIX}{kind}:*", count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    await self.redis.unlink(*batch)
                    batch = []
            if batch:
                await self.redis.unlink(*batch)

    async def claim(self, names: Sequence[str], token: str, ttl_ms: int) -> bool:
        return bool(await self._claim(keys=list(names), args=[token, ttl_ms]))

    async def release(self, names: Sequence[str], token: str) -> None:
        if names:
            await self._release(keys=list(names), args=[token])

    async def read(self, keys: Iterable[IndexKey], ids: Iterable[str]) -> tuple[ArticleRegistry, bool]:
        keys, ids = list(keys), list(ids)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.exists(MARKER)
            for kind, value in keys:
                pipe.get(_index_name(kind, value))
            for article_id in ids:
                pipe.hgetall(_article_name(article_id))
            marker, *rest = await pipe.execute()
        hits = {key: hit.decode() for key, hit in zip(keys, rest[: len(keys)], strict=True) if hit}
        known = {i: _known(i, entry) for i, entry in zip(ids, rest[len(keys) :], strict=True) if entry}
        missing = [i for i in set(hits.values()) if i not in known]
        if missing:  # articles the index reaches that were not asked for by id
            async with self.redis.pipeline(transaction=False) as pipe:
                for article_id in missing:
                    pipe.hgetall(_article_name(article_id))
                entries = await pipe.execute()
            known.update({i: _known(i, e) for i, e in zip(missing, entries, strict=True) if e})
        return _view(hits, known), bool(marker)

    async def apply(self, payloads: Sequence[Payload]) -> None:
        if not payloads:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for payload in payloads:
                if isinstance(payload, ArticleContent):
                    known = [payload.content_hash, payload.slug, payload.source, payload.source_id]
                    names = [_index_name(kind, value) for kind, value in index_keys(payload)]
                    await self._apply(
                        keys=[_article_name(payload.article_id), *names],
                        args=["content", payload.revision, payload.article_id, orjson.dumps(known)],
                        client=pipe,
                    )
                elif isinstance(payload, ArticleRetracted):
                    await self._apply(
                        keys=[_article_name(payload.article_id)],
                        args=["retracted", payload.revision, payload.article_id, b""],
                        client=pipe,
                    )
            await pipe.execute()


def _known(article_id: str, entry: dict[bytes, bytes]) -> Known:
    hash_, slug, source, source_id = orjson.loads(entry[b"known"])
    return Known(
        article_id,
        int(entry[b"revision"]),
        hash_,
        slug,
        source,
        source_id,
        retracted=entry.get(b"retracted") == b"1",
    )
