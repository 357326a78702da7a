"""Snapshots of a ticks partition's book on ``newsroom.quotes.state``: written, and read back on assignment.

The snapshot of ticks partition ``p`` goes to partition ``p`` of the state topic, keyed by ``p`` (the
topic is compacted on Kafka; on the embedded broker it only grows, which is why a restore never reads
it from the start). A snapshot is the book's state (:meth:`QuoteBook.snapshot_state`, compressed) and
the last ticks offset it holds:

* a state that fits one record rides inline in its :class:`QuoteStateSnapshotted` marker;
* a larger one is cut into :class:`QuoteStateChunked` records, then the marker names the first
  chunk's offset and their count.

:func:`read_snapshot` reads the last record of the partition. A marker is the snapshot (its chunks
are read from ``first_chunk``); a chunk means a writer died mid-snapshot, and the marker before that
snapshot's first chunk is at ``offset - index - 1``: the walk back is a handful of reads. So a restore
costs the size of the state, not the length of history. No FastStream here: the writer is handed a
``publish`` function, the reader makes its own consumer.
"""

from __future__ import annotations

import base64
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from newsroom.common.events import (
    MAX_EVENT_BYTES,
    EventDecodeError,
    QuoteStateChunked,
    QuoteStateSnapshotted,
    decode,
    encode,
    new_envelope,
)
from newsroom.common.reading import log_ends, running
from newsroom.common.settings import Settings
from newsroom.common.topics import QUOTE_STATE

__all__ = ["CHUNK_CHARS", "Restored", "SnapshotWriter", "pack", "read_snapshot", "unpack"]

CHUNK_CHARS = MAX_EVENT_BYTES // 2
"""Characters of packed state per record (the rest of the limit is the envelope)."""
WALK_BACK_LIMIT = 64  # records looked at before giving up on finding a whole snapshot
FETCH_TIMEOUT_MS = 5_000

log = structlog.get_logger("quotes")

Publish = Callable[[bytes, int, str], Awaitable[int | None]]
"""Write one encoded record (value, state partition, event type); the offset it got (None where the
broker is a fake that says none)."""


def pack(state: dict[str, Any]) -> str:
    """A book's state as compact text: base64 of zlib-compressed JSON."""
    return base64.b64encode(zlib.compress(orjson.dumps(state), 1)).decode()


def unpack(text: str) -> dict[str, Any]:
    """The state :func:`pack` made."""
    state: dict[str, Any] = orjson.loads(zlib.decompress(base64.b64decode(text)))
    return state


@dataclass(frozen=True)
class Restored:
    """A snapshot read back: the state, the last ticks offset it holds, and what reading it cost."""

    state: dict[str, Any]
    covers: int
    records_read: int


class SnapshotWriter:
    """Writes snapshots through ``publish``, as the replica ``producer``."""

    def __init__(self, publish: Publish, producer: str) -> None:
        self.publish = publish
        self.producer = producer

    async def write(self, partition: int, state: dict[str, Any], covers: int) -> int:
        """Write the snapshot of ticks partition ``partition``; returns how many records it took."""
        text = pack(state)
        sid = uuid.uuid4().hex
        if len(text) <= CHUNK_CHARS:
            marker = QuoteStateSnapshotted(snapshot_id=sid, partition=partition, covers=covers, data=text)
            await self._send(marker, partition)
            return 1
        pieces = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)]
        first: int | None = None
        for index, piece in enumerate(pieces):
            chunk = QuoteStateChunked(snapshot_id=sid, partition=partition, index=index, data=piece)
            offset = await self._send(chunk, partition)
            first = offset if index == 0 else first
        marker = QuoteStateSnapshotted(
            snapshot_id=sid, partition=partition, covers=covers, chunks=len(pieces), first_chunk=first
        )
        await self._send(marker, partition)
        return len(pieces) + 1

    async def _send(self, payload: QuoteStateChunked | QuoteStateSnapshotted, partition: int) -> int | None:
        return await self.publish(
            encode(new_envelope(payload, producer=self.producer)), partition, payload.TYPE
        )


async def _record_at(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> Any:
    """The payload of the record at ``offset`` (None when it is no state event)."""
    consumer.seek(tp, offset)
    fetched = await consumer.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS, max_records=1)
    for rec in fetched.get(tp, []):
        try:
            return decode(rec.value or b"").data
        except EventDecodeError:
            return None
    raise TimeoutError(f"{tp.topic}[{tp.partition}] gave no record at offset {offset}")


async def _chunks(
    consumer: AIOKafkaConsumer, tp: TopicPartition, marker: QuoteStateSnapshotted
) -> str | None:
    """The marker's state text from its chunks, or None when they are not all there."""
    if marker.first_chunk is None:
        return None
    consumer.seek(tp, marker.first_chunk)
    pieces: list[str] = []
    while len(pieces) < marker.chunks:
        fetched = await consumer.getmany(
            tp, timeout_ms=FETCH_TIMEOUT_MS, max_records=marker.chunks - len(pieces)
        )
        recs = fetched.get(tp, [])
        if not recs:
            return None
        for rec in recs:
            chunk = decode(rec.value or b"").data
            if not isinstance(chunk, QuoteStateChunked) or chunk.snapshot_id != marker.snapshot_id:
                return None  # another writer's record in between: this snapshot is not whole here
            pieces.append(chunk.data)
    return "".join(pieces)


async def read_snapshot(settings: Settings, partition: int) -> Restored | None:
    """The last whole snapshot of ticks partition ``partition``, or None when it has none."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        fetch_max_bytes=4 * MAX_EVENT_BYTES,
        max_partition_fetch_bytes=2 * MAX_EVENT_BYTES,
        request_timeout_ms=5_000,  # a broker that lost its log answers slowly: fall back to history sooner
    )
    async with running(consumer):
        if partition not in (consumer.partitions_for_topic(QUOTE_STATE.name) or set()):
            log.error("no state partition for this ticks partition: history is replayed", partition=partition)
            return None
        tp = TopicPartition(QUOTE_STATE.name, partition)
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await log_ends(consumer, [tp]))[tp]
        consumer.assign([tp])
        at, read = end - 1, 0
        while at >= begin and read < WALK_BACK_LIMIT:
            found = await _record_at(consumer, tp, at)
            read += 1
            if isinstance(found, QuoteStateSnapshotted):
                text = found.data if found.chunks == 0 else await _chunks(consumer, tp, found)
                read += found.chunks
                if text is not None:
                    return Restored(unpack(text), found.covers, read)
                at -= 1
            elif isinstance(found, QuoteStateChunked):
                at -= found.index + 1  # the record before this snapshot's first chunk
            else:
                at -= 1
        return None
