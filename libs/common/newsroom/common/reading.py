"""Reading a topic without a consumer group: replays, rebuilds, operator commands and tests.

Kept apart from :mod:`newsroom.common.messaging` (FastStream brokers and publishing): a rebuild's
worker processes import this, and nothing of FastStream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from newsroom.common.settings import Settings


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
                if high is not None:
                    ends[tp] = max(ends[tp], high)
                    pending.discard(tp)
    return ends


_PROBE_S = 10.0  # how long log_ends waits for the fetches that say where partitions end


async def read_topic(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = True,
    stop_at_end: bool = True,
    max_records: int = 2000,
    partitions: Collection[int] | None = None,
) -> AsyncGenerator[list[ConsumerRecord[Any, Any]], None]:
    """Read a topic (or only ``partitions`` of it) without a consumer group, batch by batch.

    Nothing is committed. With ``stop_at_end`` the iteration ends at each partition's end as the
    broker first reports it: records written after that are left alone.
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
        tps = [TopicPartition(topic, p) for p in sorted(found) if partitions is None or p in partitions]
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps) if stop_at_end else {}
        remaining = {tp for tp in tps if end.get(tp, 1) > 0} if stop_at_end else set(tps)
        if stop_at_end:
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        settled: set[TopicPartition] = set()
        while remaining or not stop_at_end:
            wanted = remaining if stop_at_end else set(tps)
            fetched = await consumer.getmany(*wanted, timeout_ms=500, max_records=max_records)
            for tp, recs in fetched.items():
                if stop_at_end:
                    if tp not in settled:
                        # The embedded broker's end offset is its last batch's first offset + 1, short
                        # of that batch's tail; the high watermark of the first fetch is exact.
                        end[tp] = max(end[tp], consumer.highwater(tp) or 0)
                        settled.add(tp)
                    if recs and recs[-1].offset >= end[tp]:  # written since: not this read's
                        recs = [r for r in recs if r.offset < end[tp]]
                if recs:
                    yield recs
                if stop_at_end and await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
