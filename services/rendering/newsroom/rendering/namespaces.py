"""The live renderer's namespaces: a :class:`~newsroom.rendering.writer.FragmentWriter` for each one
the site serves or a rebuild is filling, and a write done in every one of them.

State the service's handlers drive; no broker here, and the Redis client is given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
import structlog

from newsroom.common.store import NamespaceRetired, Pointers
from newsroom.rendering.domain import Renderer
from newsroom.rendering.writer import FragmentWriter

log = structlog.get_logger("rendering")
T = TypeVar("T")
KEPT_WRITERS = 4  # past this many, the writers of finished rebuilds' namespaces are let go


class Namespaces:
    """The writers of the live namespaces, made as the pointers name them and kept while they live."""

    def __init__(self, redis: aioredis.Redis, pointers: Pointers, renderer: Renderer) -> None:
        self.redis = redis
        self.pointers = pointers
        self.renderer = renderer
        self._writers: dict[str, FragmentWriter] = {}

    async def writers(self) -> list[FragmentWriter]:
        """The active namespace's writer, plus a rebuild's shadow namespace while one is running."""
        active, shadow = await self.pointers.read(self.redis)  # no active one: the store is rebuilt (healing)
        out = []
        for namespace in (active, shadow):
            if namespace is None:
                continue
            if namespace not in self._writers:
                if len(self._writers) > KEPT_WRITERS:  # namespaces of finished rebuilds
                    self._writers.clear()
                writer = FragmentWriter(self.redis, namespace, self.renderer, guard=self.pointers)
                try:
                    await writer.setup()
                except NamespaceRetired:
                    continue
                self._writers[namespace] = writer
            out.append(self._writers[namespace])
        return out

    async def to_each(self, write: Callable[[FragmentWriter], Awaitable[T]]) -> list[T]:
        """``write`` done in every namespace that is served or being rebuilt, the active one first.

        A namespace that a rebuild retires meanwhile is left (it is expiring), and the pointers are
        looked up again, so the write reaches every namespace that is live when it ends.
        """
        results: list[T] = []
        done: set[str] = set()
        pending = await self.writers()
        while pending:
            retired = False
            for w in pending:
                done.add(w.namespace)
                try:
                    results.append(await write(w))
                except NamespaceRetired:
                    retired = True
                    self._writers.pop(w.namespace, None)
                    log.info("namespace retired; no longer written", namespace=w.namespace)
            # Only a retirement means the pointers moved: then (only) look them up again.
            pending = [w for w in await self.writers() if w.namespace not in done] if retired else []
        return results
