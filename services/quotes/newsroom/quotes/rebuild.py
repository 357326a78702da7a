"""The quote book rebuilt at start-up from the ticks its consumer group had committed.

The group's committed offsets say which ticks the book had taken before it stopped: those are read
again from the ticks topic with the common reader (:func:`~newsroom.common.reading.read_topic`) and
folded by :func:`~newsroom.quotes.engine.ingest`, the same decisions as the first time (their poison
was dead-lettered then); the group then resumes after them. So the book after a restart is the book
before it, and ticks delivered again are duplicates it skips.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from newsroom.common.admin import group_offsets
from newsroom.common.reading import ReadStalled, read_topic
from newsroom.common.records import undecodable
from newsroom.common.settings import Settings
from newsroom.common.topics import TICKS

from .book import QuoteBook
from .engine import Clock, ingest, utcnow

__all__ = ["DRAIN_EVERY", "fold_ticks", "rebuild"]

DRAIN_EVERY = 100_000  # ticks folded between two drains of the delay line (published before the stop)
log = structlog.get_logger("quotes")


async def fold_ticks(
    settings: Settings, book: QuoteBook, upto: Mapping[int, int], *, clock: Clock = utcnow
) -> int:
    """Fold the ticks before ``upto`` (partition -> offset) into ``book``; returns how many were read.

    Every instrument is marked to be published once more afterwards (its current state).
    """
    folded = since_drain = 0
    try:
        async for batch in read_topic(settings, TICKS.name, upto=upto, max_records=10_000):
            ingest(book, [r for r in batch if undecodable(r) is None], clock().timestamp())  # as on_ticks
            folded += len(batch)
            since_drain += len(batch)
            if since_drain >= DRAIN_EVERY:  # keep the delay line short
                book.due(clock())
                since_drain = 0
    except ReadStalled as exc:  # what was folded stands; the group resumes after its commits anyway
        log.warning("rebuild stopped short of the committed offsets", error=str(exc))
    book.mark_dirty()
    return folded


async def rebuild(settings: Settings, book: QuoteBook, group: str, *, clock: Clock = utcnow) -> int:
    """Fold the ticks ``group`` had committed into ``book``; returns how many were read."""
    upto = await group_offsets(settings, group, TICKS.name)
    return await fold_ticks(settings, book, upto, clock=clock) if upto else 0
