"""Reading a topic without a consumer group: replays, rebuilds, operator commands and tests.

Kept apart from :mod:`newsroom.common.messaging` (FastStream brokers and publishing): a rebuild's
worker processes import this, and nothing of FastStream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from newsroom.common.events import EventDecodeError, decode_payload
from newsroom.common.settings import Settings
from newsroom.common.topics import BY_NAME


@contextlib.asynccontextmanager
async def running(consumer: AIOKafkaConsumer) -> AsyncIterator[AIOKafkaConsumer]:
    """``consumer`` started for the block and stopped after it.

    The loop turns once after the start: a consumer without a group, stopped before its own
    committed-offsets task first ran, raises ``CancelledError`` out of ``stop()`` (aiokafka 0.14), which
    ended commands on a missing topic with a traceback.
    """
    try:
        await consumer.start()
        await asyncio.sleep(0)
        yield consumer
    finally:  # also after a failed start: it leaves connections behind
        await consumer.stop()


async def log_ends(consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
    """Each partition's end: the offset its next record gets (assigns ``tps`` to ``consumer``).

    Asked for end offsets, the embedded broker answers its last batch's first offset + 1, short of
    that batch's tail. A fetch from that offset returns the partition's high watermark, which is the
    end; on Kafka the two agree.
    """
    if not tps:
        return {}
    reported = await consumer.end_offsets(list(tps))
    begin = await consumer.beginning_offsets(list(tps))
    probed = [tp for tp in tps if reported[tp] > begin[tp]]
    ends = dict(reported)
    if probed:
        consumer.assign(probed)
        for tp in probed:
            consumer.seek(tp, reported[tp] - 1)
        pending = set(probed)
        deadline = asyncio.get_running_loop().time() + _PROBE_S
        while pending and asyncio.get_running_loop().time() < deadline:
            await consumer.getmany(*pending, timeout_ms=200, max_records=1)
            for tp in list(pending):
                high = consumer.highwater(tp)
                if high is not None:  # the end, also when the reported one is past it (a produce that
                    ends[tp] = high  # failed on a just-restarted embedded broker still counted an offset)
                    pending.discard(tp)
    return ends


@dataclass(frozen=True)
class Span:
    """A partition's first offset and its end (the offset its next record gets)."""

    begin: int
    end: int

    @property
    def approx_count(self) -> int:
        return max(0, self.end - self.begin)


async def spans(consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]) -> dict[TopicPartition, Span]:
    """Start and end offsets of the given partitions (see :func:`~newsroom.common.reading.log_ends`)."""
    if not tps:
        return {}
    begin = await consumer.beginning_offsets(list(tps))
    end = await log_ends(consumer, tps)
    return {tp: Span(begin[tp], end[tp]) for tp in tps}


_PROBE_S = 10.0  # how long log_ends waits for the fetches that say where partitions end


READ_STALL_S = 15.0  # a read short of its end that fetches nothing this long has stalled


class ReadStalled(RuntimeError):
    """A bounded read fetched nothing for :data:`READ_STALL_S` before reaching the end it began with:
    the records it waits for are gone (the broker lost its log) or the broker is away."""


class TopicNotFound(LookupError):
    """The broker has no such topic (see :func:`read_topic`'s ``required``)."""


def to_ms(moment: datetime) -> int:
    """A time as Kafka's record timestamps count it: milliseconds since 1970."""
    return int(moment.timestamp() * 1000)


async def read_topic(
    settings: Settings,
    topic: str,
    *,
    start: str | datetime = "earliest",
    follow: bool = False,
    max_records: int = 2000,
    partitions: Collection[int] | None = None,
    upto: Mapping[int, int] | None = None,
    required: bool = False,
) -> AsyncGenerator[list[ConsumerRecord[Any, Any]], None]:
    """Read a topic (or only ``partitions`` of it) without a consumer group, batch by batch.

    From ``start``: ``earliest``, ``latest`` or the first record at or after a time. Nothing is
    committed. Without ``follow`` the iteration ends at each partition's end when the read began
    (:func:`log_ends`): records written after that are left alone. With ``upto`` (partition ->
    offset) only those partitions are read, each up to the record before that offset at the most (a
    consumer group's committed offsets, say). A topic the broker lacks reads as empty, or raises
    :class:`TopicNotFound` when ``required``.
    """
    async with running(
        AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            max_poll_records=max_records,
        )
    ) as consumer:
        found = consumer.partitions_for_topic(topic) or set()
        if not found and required:
            raise TopicNotFound(f"no topic {topic} on {settings.broker_url}")
        if upto is not None:
            partitions = [p for p in upto if partitions is None or p in partitions]
        tps = [TopicPartition(topic, p) for p in sorted(found) if partitions is None or p in partitions]
        end = await log_ends(consumer, tps)
        if upto is not None:
            end = {tp: min(offset, upto[tp.partition]) for tp, offset in end.items()}
        consumer.assign(tps)
        since = to_ms(start) if isinstance(start, datetime) else None
        if start == "earliest":
            await consumer.seek_to_beginning(*tps)
        elif since is not None:
            hits = await consumer.offsets_for_times({tp: since for tp in tps})
            for tp in tps:
                hit = hits.get(tp)  # nothing that recent: Kafka answers None, the embedded broker -1
                consumer.seek(tp, hit.offset if hit is not None and hit.timestamp >= 0 else end[tp])
        else:
            for tp in tps:
                consumer.seek(tp, end[tp])
        remaining = {tp for tp in tps if await consumer.position(tp) < end[tp]}
        loop = asyncio.get_running_loop()
        progressed = loop.time()
        while follow or remaining:
            fetched = await consumer.getmany(*(tps if follow else remaining), timeout_ms=500)
            if fetched or follow:
                progressed = loop.time()
            elif loop.time() - progressed > READ_STALL_S:
                short = [
                    f"[{tp.partition}] at {await consumer.position(tp)} of {end[tp]}" for tp in remaining
                ]
                raise ReadStalled(
                    f"{topic}: nothing fetched for {READ_STALL_S:g} s short of the end the read began with "
                    f"({', '.join(short)}); the broker lost its log or is away"
                )
            for tp, recs in fetched.items():
                if not follow and recs and recs[-1].offset >= end[tp]:  # written since: not this read's
                    recs = [r for r in recs if r.offset < end[tp]]
                if since is not None:  # a time can find the start of a batch holding older records too
                    recs = [r for r in recs if r.timestamp >= since]
                if recs:
                    yield recs
                if not follow and await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)


def decoded_payloads(batch: Sequence[ConsumerRecord[Any, Any]]) -> Iterator[Any]:
    """Each record's event payload, or None for a record that is not a valid event or whose type its topic
    does not declare (what a replay folds: the consumers park both, see ``Record``)."""
    for rec in batch:
        try:
            payload = decode_payload(rec.value or b"")
        except EventDecodeError:
            yield None
            continue
        declared = BY_NAME.get(rec.topic)
        yield None if declared is not None and declared.misplaced(payload.TYPE) else payload
