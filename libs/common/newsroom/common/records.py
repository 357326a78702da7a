"""What a consumer is handed: each record with its event, or why it has none, and the subscription
settings every batch consumer uses (FastStream's parser given headers it can decode).

A record whose key or headers are not text, whose value is no valid event, or whose event its topic
does not declare (:meth:`~newsroom.common.topics.Topic.misplaced`) carries its ``error``; the batch
handlers in :mod:`newsroom.common.messaging` dead-letter it alone.
"""

from __future__ import annotations

from collections.abc import (
    Awaitable,
    Callable,
    Sequence,
)
from dataclasses import dataclass, replace
from typing import Any

from aiokafka import ConsumerRecord
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy

from newsroom.common.events import (
    Envelope,
    EventDecodeError,
    decode,
    unreadable_key_or_headers,
)
from newsroom.common.settings import Settings
from newsroom.common.topics import BY_NAME


def undecodable(rec: ConsumerRecord[Any, Any]) -> str | None:
    """Why a consumed record's key or headers cannot be read as text (see
    :func:`~newsroom.common.events.unreadable_key_or_headers`), or None. Such a record is
    dead-lettered on its own; its value is judged by its decoder."""
    return unreadable_key_or_headers(rec.key, rec.headers or ())


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed record: its coordinates, key and either its event or why it could not be decoded.

    ``raw_key`` is the key as it was on the log (``key`` is its text, with replacement characters
    for a key that is not UTF-8): a dead letter carries the original bytes.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    value: bytes
    headers: tuple[tuple[str, bytes | None], ...]
    envelope: Envelope | None
    error: str | None
    raw_key: bytes | None = None

    @classmethod
    def from_consumer_record(cls, rec: ConsumerRecord[Any, Any]) -> Record:
        value: bytes = rec.value or b""
        envelope: Envelope | None = None
        error = undecodable(rec)
        if error is None:
            try:
                envelope = decode(value)
            except EventDecodeError as exc:
                error = str(exc)
            else:
                declared = BY_NAME.get(rec.topic)
                error = declared.misplaced(envelope.type) if declared is not None else None
                envelope = envelope if error is None else None
        return cls(
            topic=rec.topic,
            partition=rec.partition,
            offset=rec.offset,
            timestamp_ms=rec.timestamp,
            key=rec.key.decode("utf-8", "replace") if rec.key is not None else None,
            value=value,
            headers=tuple(rec.headers or ()),
            envelope=envelope,
            error=error,
            raw_key=rec.key,
        )

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return (v or b"").decode("utf-8", "replace")
        return None


def _readable(rec: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    """``rec`` with headers FastStream can decode (it decodes every header value as UTF-8, strictly)."""
    if not rec.headers or all(v is not None and v.isascii() for _, v in rec.headers):
        return rec
    headers = tuple((k, (v or b"").decode("utf-8", "replace").encode()) for k, v in rec.headers)
    return replace(rec, headers=headers)


async def parse_batch(
    message: tuple[ConsumerRecord[Any, Any], ...],
    original: Callable[[tuple[ConsumerRecord[Any, Any], ...]], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    """FastStream parser for batch subscribers: its own parser, given headers it can decode.

    FastStream's batch parser decodes every record's headers as UTF-8 and fails on one that is not
    (or has no value); the batch then reaches no handler, and since the consumer's position moved
    past it, the group commits past every record in it, unseen. Here the parser sees readable
    copies, and the message keeps the records as consumed, so that :func:`decode_batch` names the
    undecodable ones (dead-lettered alone) and hands on their neighbours.
    """
    parsed = await original(tuple(_readable(rec) for rec in message))
    parsed.raw_message = message
    return parsed


async def decode_batch(message: StreamMessage[Any]) -> list[Record]:
    """FastStream decoder for batch subscribers: every record, decoded or with its error."""
    raw: Sequence[ConsumerRecord[Any, Any]] = message.raw_message
    return [Record.from_consumer_record(rec) for rec in raw]


def batch_subscription(settings: Settings, group_id: str, *, max_records: int = 500) -> dict[str, Any]:
    """Keyword arguments for ``broker.subscriber``: batches, committed after success only, earliest start."""
    return {
        "group_id": group_id,
        "batch": True,
        "max_records": max_records,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.NACK_ON_ERROR,  # an unexpected failure: delivered again, not committed
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "batch_timeout_ms": settings.fetch_max_wait_ms,
        "parser": parse_batch,
        "decoder": decode_batch,
    }


def group_less_subscription(settings: Settings, *, max_records: int = 500) -> dict[str, Any]:
    """Keyword arguments for a batch ``broker.subscriber`` without a group (every instance reads the
    whole topic from its start), parsed and decoded like :func:`batch_subscription`'s."""
    return {
        "batch": True,
        "max_records": max_records,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "parser": parse_batch,
        "decoder": decode_batch,
    }
