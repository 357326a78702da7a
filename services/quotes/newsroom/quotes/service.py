"""The quotes service: price ticks in, delayed per-instrument public snapshots out.

Ticks pass through the :class:`~newsroom.quotes.book.QuoteBook` delay line; every second (and after
every batch) the snapshots that became due are published, at most one per instrument per
coalescing interval. Poison ticks go to the dead-letter topic with their reason; duplicates and
out-of-order ticks are ignored by rule (and counted). :class:`~newsroom.quotes.engine.QuoteEngine`
does all that; this module only wires it to the broker.

N replicas share the ticks partitions in the consumer group. Each owned partition has its own book,
snapshotted to the same partition of ``newsroom.quotes.state`` every
``NEWSROOM_QUOTE_SNAPSHOT_EVERY_TICKS`` ticks or ``NEWSROOM_QUOTE_SNAPSHOT_SECONDS`` seconds, on
revocation and at shutdown (:mod:`newsroom.quotes.snapshots`). On assignment (:class:`Rebalance`) a
partition's last snapshot is loaded and the consumer is put right after the ticks offset it covers:
only the tail after it is replayed, and the duplicates in it are ignored by rule, so a restart costs
the size of the state, not the length of history. The group's committed offset is not where a
partition resumes: it moves after every batch, ahead of the last snapshot, and the ticks between the
two are in no state yet. On revocation the batch in hand finishes (the engine's lock), the
partition's state is written and its book dropped: this replica publishes nothing more for its
instruments. The service is not ready until every assigned partition is restored.

A batch whose dead letters or snapshots could not be published is nacked and re-delivered; its
snapshots are marked to be published again.

Nothing is built at import: :func:`build` makes the parts, :func:`create_app` the ASGI app.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.message import StreamMessage
from prometheus_client import Counter

from newsroom.common.admin import ensure_topics
from newsroom.common.health import Health, LogWatch, probes
from newsroom.common.lag import report_lag
from newsroom.common.logging import configure_logging
from newsroom.common.messaging import Publisher, delivered_again_on_failure, make_broker
from newsroom.common.ops import BATCH_SECONDS, ops_routes
from newsroom.common.records import batch_subscription
from newsroom.common.settings import Settings, get_settings
from newsroom.common.tasks import in_background
from newsroom.common.topics import QUOTE_STATE, TICKS
from newsroom.quotes.book import QuoteBook
from newsroom.quotes.engine import Checkpoint, Clock, QuoteEngine, book_config, utcnow
from newsroom.quotes.snapshots import Restored, SnapshotWriter, read_snapshot

SERVICE = "quotes"
GROUP = "quotes"
MAX_BATCH = 5000
FLUSH_INTERVAL_S = 1.0
SESSION_TIMEOUT_MS = 6000
"""A replica silent this long leaves the group (Kafka's lowest allowed; aiokafka's default is 10 s): its
partitions move sooner after a SIGKILL, and a restart joins sooner where the broker does not act on a
stopped member's LeaveGroup (the embedded broker waits its session out)."""
RESTORING = "partitions"  # the health problem named while assigned partitions are being restored

log = structlog.get_logger(SERVICE)

RESTORE_RECORDS = Counter(
    "newsroom_quote_restore_records_total", "Records of newsroom.quotes.state read to restore partitions"
)


async def raw_batch(message: StreamMessage[Any]) -> list[ConsumerRecord[Any, Any]]:
    """FastStream decoder: hand the consumed records over as they are (the engine decodes them fast)."""
    raw = message.raw_message
    return list(raw) if isinstance(raw, tuple | list) else [raw]


RESTORE_TIMEOUT_S = 15.0  # for every assigned partition's snapshot to be read, or history is replayed


class Checkpointer:
    """Writes the engine's partition states when they are due (and all of them when asked)."""

    def __init__(self, settings: Settings, engine: QuoteEngine, writer: SnapshotWriter) -> None:
        self.settings = settings
        self.engine = engine
        self.writer = writer
        self.written = 0
        """Snapshots written by this replica."""

    async def write(self, states: list[Checkpoint]) -> None:
        """Write these states; one that fails is logged (the next owner replays a longer tail)."""
        done: list[Checkpoint] = []
        for item in states:
            partition, state, covers = item
            try:
                await self.writer.write(partition, state, covers)
            except Exception:
                log.exception("writing a partition's snapshot failed", partition=partition, covers=covers)
                continue
            done.append(item)
        self.written += len(done)
        self.engine.checkpointed(done)

    async def due(self) -> None:
        """Write the states of the partitions that took enough ticks or time since their last one."""
        settings = self.settings
        await self.write(
            await self.engine.checkpoints(
                settings.quote_snapshot_every_ticks, settings.quote_snapshot_seconds
            )
        )

    async def all(self) -> None:
        """Write every owned partition's state (at shutdown)."""
        await self.write(await self.engine.checkpoints())

    async def running(self, interval: float) -> None:
        """Write what is due every ``interval`` seconds (until cancelled)."""
        while True:
            await asyncio.sleep(interval)
            await self.due()


class Rebalance(ConsumerRebalanceListener):
    """The ticks subscriber's rebalance listener: partitions restored on assignment, written on revocation."""

    def __init__(
        self,
        settings: Settings,
        engine: QuoteEngine,
        checkpointer: Checkpointer,
        health: Health,
        consumer: Callable[[], AIOKafkaConsumer | None],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.checkpointer = checkpointer
        self.health = health
        self.consumer = consumer
        self.restore_reads = 0
        """State records read by every restore so far (never the ticks history)."""

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Finish the batch in hand, write the partitions' states and drop them."""
        gone = {tp.partition for tp in revoked if tp.topic == TICKS.name}
        if gone:
            await self.checkpointer.write(await self.engine.revoke(gone))
            log.info("ticks partitions revoked", partitions=sorted(gone))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Load the partitions' snapshots and resume each right after the offset its snapshot covers."""
        mine = sorted(tp.partition for tp in assigned if tp.topic == TICKS.name)
        self.health.fail(RESTORING, f"restoring ticks partitions {mine}")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(RESTORE_TIMEOUT_S):  # a broker that lost its log can stall a read
                found: list[Restored | None] = list(
                    await asyncio.gather(*(read_snapshot(self.settings, p) for p in mine))
                )
        except Exception:  # a partition must not go unowned: rebuilt from its whole history instead
            log.exception(
                "reading the partitions' snapshots failed; replaying their history", partitions=mine
            )
            found = [None] * len(mine)
        unreadable = await self.engine.assign(
            {p: None if r is None else (r.state, r.covers) for p, r in zip(mine, found, strict=True)}
        )
        found = [None if p in unreadable else r for p, r in zip(mine, found, strict=True)]
        consumer = self.consumer()
        if consumer is None:  # only under FastStream's in-memory test broker, which has no group
            log.error("no consumer to seek: the partitions resume at the group's committed offsets")
        for p, r in zip(mine, found, strict=True):
            tp = TopicPartition(TICKS.name, p)
            if consumer is None:
                continue
            if r is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, r.covers + 1)
        reads = sum(r.records_read for r in found if r is not None)
        self.restore_reads += reads
        RESTORE_RECORDS.inc(reads)
        self.health.clear(RESTORING)
        log.info(
            "ticks partitions restored",
            partitions=mine,
            covers={p: r.covers for p, r in zip(mine, found, strict=True) if r is not None},
            state_records_read=reads,
            seconds=round(time.perf_counter() - started, 3),
        )


def router(
    settings: Settings, engine: QuoteEngine, checkpointer: Checkpointer, health: Health
) -> KafkaRouter:
    """The ticks subscriber, feeding ``engine``, with its rebalance listener."""
    router = KafkaRouter()
    batch_seconds = BATCH_SECONDS.labels(SERVICE)
    holder: dict[str, Any] = {}

    def consumer() -> AIOKafkaConsumer | None:
        found = getattr(holder.get("subscriber"), "consumer", None)
        return found if isinstance(found, AIOKafkaConsumer) else None

    listener = Rebalance(settings, engine, checkpointer, health, consumer)
    subscriber = router.subscriber(
        TICKS.name,
        **{**batch_subscription(settings, GROUP, max_records=MAX_BATCH), "decoder": raw_batch},
        listener=listener,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=SESSION_TIMEOUT_MS // 3,
    )
    holder["subscriber"] = subscriber

    @subscriber
    async def on_ticks(records: list[Any]) -> None:
        """Apply a batch of ticks, dead-letter its poison, publish what became due (nack if that fails)."""
        started = time.perf_counter()
        async with (
            delivered_again_on_failure()
        ):  # its applied ticks are duplicates then, which the book skips
            await engine.take(records)
        await checkpointer.due()
        batch_seconds.observe(time.perf_counter() - started)

    return router


def replica_id() -> str:
    """This process among the service's replicas: ``quotes@host:pid`` (the producer of its snapshots)."""
    return f"{SERVICE}@{socket.gethostname()}:{os.getpid()}"


@dataclass
class Quotes:
    """The quotes service's parts, built and not started."""

    settings: Settings
    broker: KafkaBroker
    publisher: Publisher
    engine: QuoteEngine
    checkpointer: Checkpointer
    health: Health

    @property
    def book(self) -> QuoteBook:
        """The book of the only ticks partition owned (tests on one partition)."""
        (part,) = self.engine.partitions.values()
        return part.book


def build(settings: Settings | None = None, *, clock: Clock = utcnow) -> Quotes:
    """The service's parts: the broker with the ticks subscriber, the engine and its snapshot writer."""
    settings = settings or get_settings()
    broker = make_broker(SERVICE, settings)
    publisher = Publisher(broker, SERVICE, settings.publish_timeout_seconds)
    config = book_config(settings)
    producer = replica_id()
    engine = QuoteEngine(lambda: QuoteBook(**config), publisher, clock=clock, producer=producer)

    async def publish_state(value: bytes, partition: int, event_type: str) -> int | None:
        async with asyncio.timeout(settings.publish_timeout_seconds):
            meta = await broker.publish(
                value, QUOTE_STATE.name, key=str(partition).encode(), partition=partition,
                headers={"event-type": event_type},
            )  # fmt: skip
        offset = getattr(meta, "offset", None)
        return offset if isinstance(offset, int) else None

    checkpointer = Checkpointer(settings, engine, SnapshotWriter(publish_state, producer))
    health = Health()
    broker.include_router(router(settings, engine, checkpointer, health))
    return Quotes(settings, broker, publisher, engine, checkpointer, health)


def create_app(settings: Settings | None = None) -> AsgiFastStream:
    """The service as an ASGI app: partitions restored on assignment, the flusher, the snapshot writer,
    the watch and ops routes; every owned partition's state written at shutdown."""
    svc = build(settings)
    svc.health.fail(RESTORING, "no ticks partitions assigned yet")
    ready, alive = probes(svc.broker, svc.health)

    @asynccontextmanager
    async def lifespan(*_: Any) -> AsyncIterator[None]:
        configure_logging(SERVICE)
        await ensure_topics(svc.settings)
        watch = LogWatch(svc.settings, svc.broker, svc.health)
        async with in_background(
            svc.engine.flushing(FLUSH_INTERVAL_S),
            svc.checkpointer.running(FLUSH_INTERVAL_S),
            report_lag(svc.settings, [GROUP]),
            watch.run(),
        ):
            yield
        log.info("quotes stopped", snapshots_written=svc.checkpointer.written)

    return AsgiFastStream(
        svc.broker,
        asgi_routes=ops_routes(ready, alive),
        lifespan=lifespan,
        on_shutdown=[svc.checkpointer.all],
        logger=None,
    )
