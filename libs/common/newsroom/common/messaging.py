"""Kafka plumbing shared by every service: the broker factory, batched publishing, batch
handling and the dead-letter path (what a consumed record is: :mod:`newsroom.common.records`).

Delivery is at least once: a batch is committed only after its handler returned and
everything it produced was acknowledged by the broker, so consumers must be idempotent. A batch
whose output could not be published (the broker is unwell) is delivered again; a record whose
output no broker would take (an event over :data:`MAX_EVENT_BYTES`) is dead-lettered instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import structlog
from faststream.exceptions import NackMessage
from faststream.kafka import KafkaBroker

from newsroom.common import deadletters
from newsroom.common.events import (
    MAX_EVENT_BYTES,
    Envelope,
    encode,
)
from newsroom.common.ops import BATCH_FALLBACKS, BATCH_SECONDS, EVENTS_FAILED, EVENTS_PROCESSED
from newsroom.common.ops import DEAD_LETTERS as DEAD_LETTERS_TOTAL
from newsroom.common.records import Record
from newsroom.common.settings import Settings
from newsroom.common.topics import DEAD_LETTERS, Topic

log = structlog.get_logger(__name__)

REDELIVERY_PAUSE_S = 1.0  # before a batch that failed is delivered again
T = TypeVar("T")


def producer_options(settings: Settings) -> dict[str, Any]:
    """How every producer of ours writes: acknowledged by all in-sync replicas, and idempotent where the
    broker gives producer ids (``NEWSROOM_KAFKA_IDEMPOTENCE``, decided at start-up by
    :func:`~newsroom.common.admin.resolved`; the embedded broker gives none, and consumers de-duplicate
    what a retried produce repeats)."""
    return {
        "acks": "all",
        "enable_idempotence": settings.kafka_idempotence == "true",
        "linger_ms": settings.linger_ms,
    }


def make_broker(service: str, settings: Settings) -> KafkaBroker:
    """A FastStream Kafka broker configured the same way in every service."""
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=f"newsroom-{service}",
        graceful_timeout=15.0,
        logger=None,
        **producer_options(settings),
    )


@contextlib.contextmanager
def bound_to(envelope: Envelope) -> Iterator[None]:
    """Bind an event's ids to every log line written while it is processed."""
    with structlog.contextvars.bound_contextvars(
        event_id=str(envelope.id), correlation_id=envelope.correlation_id, event_type=envelope.type
    ):
        yield


Outgoing = tuple[Topic, str, Envelope]  # (topic, key, event)


class EventTooLarge(ValueError):
    """An event encoded larger than :data:`MAX_EVENT_BYTES`: no broker takes it, retrying cannot help."""


def _oversize(key: str, envelope: Envelope, value: bytes) -> str | None:
    """Why an encoded event cannot be published (it is too large), or None."""
    if len(value) <= MAX_EVENT_BYTES:
        return None
    return f"{envelope.type} for {key!r} is {len(value):,} bytes encoded; the limit is {MAX_EVENT_BYTES:,}"


def fitting(groups: Iterable[tuple[T, Sequence[Outgoing]]]) -> tuple[list[Outgoing], list[tuple[T, str]]]:
    """The events of the groups a broker takes, and each other group's owner with why (an event of it
    is over :data:`MAX_EVENT_BYTES`). A group goes whole or not at all."""
    kept: list[Outgoing] = []
    refused: list[tuple[T, str]] = []
    for owner, items in groups:
        reason = next(
            (r for _, key, env in items if (r := _oversize(key, env, encode(env))) is not None), None
        )
        if reason is None:
            kept.extend(items)
        else:
            refused.append((owner, reason))
    return kept, refused


P = ParamSpec("P")
R = TypeVar("R")


def _bounded(
    send: Callable[Concatenate[Publisher, P], Awaitable[R]],
) -> Callable[Concatenate[Publisher, P], Awaitable[R]]:
    """A burst not acknowledged within the publisher's ``timeout`` raises TimeoutError: the producer
    alone would wait 40 s (its request timeout) for a broker that is away, and a caller with it."""

    @functools.wraps(send)
    async def bounded(self: Publisher, *args: P.args, **kwargs: P.kwargs) -> R:
        async with asyncio.timeout(self.timeout):
            return await send(self, *args, **kwargs)

    return bounded


async def _acknowledged(pending: Sequence[Any]) -> None:
    """Wait for the broker's acknowledgements of a burst (``no_confirm`` publishes return them as
    futures; FastStream's in-memory ``TestKafkaBroker`` delivers at once and returns none)."""
    futures = [p for p in pending if p is not None]
    if futures:
        await asyncio.gather(*futures)


class Publisher:
    """Publishes events in bursts (one produce request per partition) and dead-letters bad records."""

    def __init__(self, broker: KafkaBroker, service: str, timeout: float = 30.0) -> None:
        self.broker = broker
        self.service = service
        self.timeout = timeout  # seconds for the broker to acknowledge a burst

    @_bounded
    async def publish(self, items: Iterable[Outgoing]) -> int:
        """Publish every event and wait until the broker acknowledged them all.

        Every event is encoded first: if one is over :data:`MAX_EVENT_BYTES`, :class:`EventTooLarge`
        is raised and none is sent.
        """
        encoded: list[tuple[Topic, str, Envelope, bytes]] = []
        for topic, key, envelope in items:
            value = encode(envelope)
            reason = _oversize(key, envelope, value)
            if reason is not None:
                raise EventTooLarge(reason)
            encoded.append((topic, key, envelope, value))
        pending = []
        for topic, key, envelope, value in encoded:
            pending.append(
                await self.broker.publish(
                    value,
                    topic.name,
                    key=key.encode(),
                    headers={"event-type": envelope.type, "correlation-id": envelope.correlation_id},
                    no_confirm=True,
                )
            )
        await _acknowledged(pending)
        return len(pending)

    async def publish_fitting(self, groups: Sequence[tuple[T, Sequence[Outgoing]]]) -> list[tuple[T, str]]:
        """Publish the events of every group a broker takes (see :func:`fitting`); returns the owners
        of the groups left out, with why. Each event is checked once more only when one is too large."""
        try:
            await self.publish([item for _, items in groups for item in items])
        except EventTooLarge:
            kept, refused = fitting(groups)
            await self.publish(kept)
            return refused
        return []

    async def dead_letter(self, record: Record, reason: str) -> None:
        """Park a record on the dead-letter topic with the reason and where it came from."""
        await self.dead_letter_many([(record, reason)])

    @_bounded
    async def dead_letter_many(self, items: Sequence[tuple[Record, str]]) -> None:
        """Park several records in one burst, then wait for the broker to acknowledge them all."""
        failed_at = datetime.now(UTC).isoformat()
        pending = []
        for record, reason in items:
            headers = deadletters.letter_headers(
                reason=reason,
                service=self.service,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                failed_at=failed_at,
                attempts=record.header(deadletters.ATTEMPTS),
                redriven_from=record.header(deadletters.REDRIVEN_FROM),
            )
            # a foreign producer's value too large to park whole with headers is cut (whole at its origin)
            value = deadletters.parked_value(record.value, MAX_EVENT_BYTES, headers)
            pending.append(
                await self.broker.publish(
                    value,
                    DEAD_LETTERS.name,
                    key=record.raw_key if record.raw_key is not None else _key_bytes(record.key),
                    headers=headers,
                    no_confirm=True,
                )
            )
            log.warning(
                "record dead-lettered",
                reason=reason,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
        await _acknowledged(pending)
        DEAD_LETTERS_TOTAL.labels(self.service).inc(len(pending))


def _key_bytes(key: str | None) -> bytes | None:
    """A record's key as bytes for its dead letter: no key stays none."""
    return key.encode() if key is not None else None


Handler = Callable[[Record, Envelope], Awaitable[Iterable[Outgoing]]]
BatchHandler = Callable[[list[tuple[Record, Envelope]]], Awaitable[Iterable[Outgoing]]]


async def process_batch(records: list[Record], handle: Handler, publisher: Publisher) -> int:
    """Run ``handle`` on every decodable record, dead-letter the rest, publish what came out.

    Returns how many records were handled. Output is published as one burst at the end so
    that a batch costs one produce request per partition.
    """
    with BATCH_SECONDS.labels(publisher.service).time():
        return await _one_by_one(records, handle, publisher)


async def _one_by_one(records: list[Record], handle: Handler, publisher: Publisher) -> int:
    produced: list[tuple[Record, list[Outgoing]]] = []
    poison: list[tuple[Record, str]] = []
    service = publisher.service
    for record in records:
        if record.envelope is None:
            poison.append((record, record.error or "undecodable"))
            continue
        with bound_to(record.envelope):
            try:
                produced.append((record, list(await handle(record, record.envelope))))
                EVENTS_PROCESSED.labels(service, record.envelope.type).inc()
            except NackMessage:  # not the event's fault (a store is down): the whole batch comes again
                raise
            except Exception as exc:  # a bad event must not stop the consumer: park it with the reason
                log.exception("event failed")
                EVENTS_FAILED.labels(service, record.envelope.type).inc()
                poison.append((record, f"{type(exc).__name__}: {exc}"))
    async with delivered_again_on_failure():  # a record whose output is too large is parked instead
        refused = await publisher.publish_fitting(produced)
        poison += [(record, f"{EventTooLarge.__name__}: {reason}") for record, reason in refused]
        await publisher.dead_letter_many(poison)
    return len(records) - len(poison)


@contextlib.asynccontextmanager
async def delivered_again_on_failure(
    failures: tuple[type[Exception], ...] = (Exception,),
) -> AsyncIterator[None]:
    """A batch that fails in this block with one of ``failures`` (by default any: its output or dead
    letters not taken by the broker, or a bug) is delivered again after a pause, not committed. Every
    batch subscriber's body runs in one, so that a failure that lasts stalls its partition (and shows
    as lag) without spinning or losing the batch; a handler names the failures that are not its events'
    fault (a store that is down) in one of its own, so that they are not dead-lettered either."""
    try:
        yield
    except NackMessage:
        raise
    except failures as exc:
        log.warning("the batch failed; it will be delivered again", error=repr(exc), exc_info=True)
        await asyncio.sleep(REDELIVERY_PAUSE_S)
        raise NackMessage() from exc


async def process_batch_at_once(
    records: list[Record], handle_all: BatchHandler, handle: Handler, publisher: Publisher
) -> int:
    """Like :func:`process_batch`, but the decodable records go to ``handle_all`` in one call first.

    A handler raises :class:`~faststream.exceptions.NackMessage` for a failure that is not the
    events' fault (a store is down): nothing is dead-lettered and the batch is delivered again.

    One call can do one read and one write for the whole batch. If it fails, every record is
    handled alone by ``handle``, so that only a bad event reaches the dead-letter topic: so
    ``handle_all`` must leave things as ``handle`` would, or in a state that handling each record
    again puts right (idempotent handlers). Returns how many records were handled.
    """
    service = publisher.service
    with BATCH_SECONDS.labels(service).time():
        decoded = [(record, record.envelope) for record in records if record.envelope is not None]
        if not decoded:
            return await _one_by_one(records, handle, publisher)
        try:
            out = list(await handle_all(decoded))
        except NackMessage:  # not the events' fault (a store is down): the whole batch comes again
            raise
        except Exception:  # some event in it is bad: find which, one by one
            log.warning("batch failed; handling its records one by one", records=len(records), exc_info=True)
            BATCH_FALLBACKS.labels(service).inc()
            return await _one_by_one(records, handle, publisher)
        for _, envelope in decoded:
            EVENTS_PROCESSED.labels(service, envelope.type).inc()
        async with delivered_again_on_failure():
            try:
                await publisher.publish(out)
            except EventTooLarge:  # some record's output is too large: find which, one by one
                log.warning("batch output too large; handling its records one by one", records=len(records))
                BATCH_FALLBACKS.labels(service).inc()
                return await _one_by_one(records, handle, publisher)
            undecodable = [(r, r.error or "undecodable") for r in records if r.envelope is None]
            await publisher.dead_letter_many(undecodable)
        return len(decoded)
