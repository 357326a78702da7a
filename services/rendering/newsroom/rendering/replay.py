"""Applying the enriched topic to one namespace of the fragment store: the work of a fragments rebuild.

``newsroom rebuild fragments`` (:mod:`newsroom.cli.rebuild`) runs :func:`apply_articles` in its own
process and, through :func:`apply_in_worker`, in worker processes forked from a fork server that
imported this module once: so it imports what a worker runs, and nothing of the CLI or FastStream.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType
from typing import Any

from aiokafka import ConsumerRecord

from newsroom.common.events import ArticleEnriched, ArticleRetracted, unreadable_key_or_headers
from newsroom.common.mirror import ReplayDecoder
from newsroom.common.reading import read_topic
from newsroom.common.redis_client import connect
from newsroom.common.settings import Settings
from newsroom.common.store import Pointers
from newsroom.common.topics import ENRICHED
from newsroom.rendering.applying import Applied
from newsroom.rendering.domain import Renderer
from newsroom.rendering.writer import FragmentWriter


@dataclass
class ArticleCounts:
    """What applying (part of) the enriched topic did."""

    applied: Applied = field(default_factory=Applied)
    undecodable: int = 0

    def __add__(self, other: ArticleCounts) -> ArticleCounts:
        return ArticleCounts(self.applied + other.applied, self.undecodable + other.undecodable)


async def apply_articles(
    settings: Settings,
    writer: Any,
    partitions: list[int] | None,
    chunk: int,
    advance: Callable[[int], None],
    stopping: Callable[[], bool] = lambda: False,
) -> ArticleCounts:
    """Apply the enriched topic's ``partitions`` (None: all) through ``writer``, in log order.

    A chunk of events at a time: each chunk is one read and one atomic write. An article's events
    share a partition, so partitions can be applied apart. Returns early, between chunks, once
    ``stopping()``. Records are taken from the consumer a chunk at a time too: decoding thousands
    at once made every later step slower (a rebuild's events then no longer fit in the CPU caches).
    """
    counts = ArticleCounts()
    # Enriched revisions as msgspec mirrors: a quarter of pydantic's decoding time, and the renderer
    # reads them alike (the determinism tests compare rebuilt pages with live-rendered ones).
    decoder = ReplayDecoder(fast=(ArticleEnriched,), accepted=(ArticleEnriched, ArticleRetracted))
    batches = read_topic(settings, ENRICHED.name, max_records=chunk, partitions=partitions)
    with few_collections():
        async with contextlib.aclosing(batches):  # its consumer stops here, also on an early return
            async for batch in batches:
                if stopping():
                    break
                # at most a chunk: read_topic hands out no more at a time
                counts.applied += await writer.apply(decoded_events(batch, decoder, counts))
                advance(len(batch))
    return counts


def decoded_events(
    batch: Sequence[ConsumerRecord[Any, Any]], decoder: ReplayDecoder, counts: ArticleCounts
) -> list[Any]:
    """The article events of ``batch`` in order; the records that are none are counted in ``counts``.

    A record whose key or headers are not text is skipped as one (the live renderer dead-letters it)."""
    events: list[Any] = []
    for rec in batch:
        readable = unreadable_key_or_headers(rec.key, rec.headers) is None
        data = decoder.payload(rec.value) if readable else None
        if data is None:
            counts.undecodable += 1
        else:
            events.append(data)
    return events


_collections_made_rare = 0  # how many few_collections() blocks this process is in
_threshold_before = gc.get_threshold()


@contextlib.contextmanager
def few_collections(threshold: int = 50_000) -> Iterator[None]:
    """Cyclic garbage collection made rare while a replay holds batches of decoded events.

    Every few hundred allocations the collector walks the young objects, and now and then all of
    them: with a batch of events alive that made decoding an event up to three times slower. Inside,
    what lives already is frozen out of the collector's walks and it runs every ``threshold``
    allocations. Nested or overlapping uses (two replays in one process) restore it when the last ends.
    """
    global _collections_made_rare, _threshold_before
    if _collections_made_rare == 0:
        gc.collect()
        gc.freeze()
        _threshold_before = gc.get_threshold()
        gc.set_threshold(threshold, 20, 100)
    _collections_made_rare += 1
    try:
        yield
    finally:
        _collections_made_rare -= 1
        if _collections_made_rare == 0:
            gc.set_threshold(*_threshold_before)
            gc.unfreeze()


# Shared with the parent (set in each worker by start_worker): the records all workers have read,
# and whether to stop after the chunk in hand.
_progress: Synchronized[int] | None = None
_stop: EventType | None = None


def start_worker(progress: Synchronized[int], stop: EventType) -> None:
    """A worker process's initializer: ``progress`` counts the records all workers have read; once ``stop``
    is set, each stops after the chunk in hand."""
    global _progress, _stop
    _progress, _stop = progress, stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    # What the fork server imported lives on, unchanged: out of the collector's walks from the start. A
    # first full collection here took 0.1-0.2 s, writing to every page shared with the fork server.
    gc.freeze()


def _stop_set() -> bool:
    return _stop is not None and _stop.is_set()


def _advance_shared(n: int) -> None:
    if _progress is not None:
        with _progress.get_lock():
            _progress.value += n


def apply_in_worker(settings: Settings, namespace: str, partitions: list[int], chunk: int) -> ArticleCounts:
    """In a worker process (see :func:`start_worker`): apply ``partitions`` of the enriched topic into
    ``namespace``."""

    async def main() -> ArticleCounts:
        redis = connect(settings.redis_url)
        try:
            guard = Pointers(settings.template_version)  # stop if this rebuild's shadow pointer is gone
            writer = FragmentWriter(redis, namespace, Renderer.for_settings(settings), guard)
            return await apply_articles(settings, writer, partitions, chunk, _advance_shared, _stop_set)
        finally:
            await redis.aclose()

    return asyncio.run(main())
