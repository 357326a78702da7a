"""What a consuming service knows of its own fitness, and the watch that keeps it true.

``/readyz`` answers 200 only while a service can consume, commit, publish and reach its store;
``/healthz`` only while its consumer tasks run. :class:`Health` holds the problems seen (each named,
with its reason); :class:`LogWatch` looks at the broker every few seconds and heals what it can:

* A declared topic the broker no longer has means the log was lost: the embedded broker keeps it in
  memory, so a restart empties it. That is logged as an error naming what is gone, the topics are
  created again and ``on_log_lost`` is called (ingestion rebuilds its registry from what is left).
* A partition whose end is now before a consumer's position (the log was emptied under it) is read
  again from its start, loudly: staying at the old position would pass over every new record until
  the new log grew past it.
* A commit that fails makes the service not ready until one succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker

from newsroom.common.admin import ensure_topics, new_admin, plain_consumer
from newsroom.common.settings import Settings
from newsroom.common.topics import ALL_TOPICS, Topic

log = structlog.get_logger(__name__)

WATCH_INTERVAL_S = 2.0
STOPPED_GRACE_S = 10.0  # a subscriber with no consume task running this long is dead (liveness fails)
LOST_LOG = (
    "the broker has lost its log: {what}. The embedded broker keeps everything in memory, so a "
    "restart empties it, and every record on it before is gone (events accepted but not yet "
    "consumed included); on Kafka, someone deleted them. Creating the topics again and carrying on"
)


class Health:
    """The problems a service has now, by name; ready when there are none."""

    def __init__(self) -> None:
        self.problems: dict[str, str] = {}

    def fail(self, what: str, reason: str) -> None:
        if self.problems.get(what) != reason:
            log.warning("not ready", problem=what, reason=reason)
        self.problems[what] = reason

    def clear(self, what: str) -> None:
        if self.problems.pop(what, None) is not None:
            log.info("ready again", problem=what)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        return "; ".join(f"{what}: {reason}" for what, reason in sorted(self.problems.items()))


def consumers(broker: KafkaBroker) -> list[AIOKafkaConsumer]:
    """The aiokafka consumers of the broker's started subscribers."""
    out = []
    for subscriber in broker.subscribers:
        consumer = getattr(subscriber, "consumer", None)
        if isinstance(consumer, AIOKafkaConsumer):
            out.append(consumer)
    return out


def stopped_consumers(broker: KafkaBroker) -> list[str]:
    """The started subscribers none of whose consume tasks still runs (liveness fails on any)."""
    stopped = []
    for subscriber in broker.subscribers:
        tasks: list[asyncio.Task[Any]] | None = getattr(subscriber, "tasks", None)
        if getattr(subscriber, "consumer", None) is None or not tasks:
            continue
        if all(task.done() for task in tasks):
            stopped.append(", ".join(getattr(subscriber, "topic_names", None) or ["?"]))
    return stopped


def watch_commits(consumer: AIOKafkaConsumer, health: Health) -> None:
    """Record each commit's outcome in ``health`` (FastStream commits through ``consumer.commit``)."""
    commit = consumer.commit
    if getattr(commit, "_watched", False):
        return

    async def watched(*args: Any, **kwargs: Any) -> None:
        try:
            await commit(*args, **kwargs)
        except Exception as exc:
            health.fail("commit", f"{type(exc).__name__}: {exc}")
            raise
        health.clear("commit")

    watched._watched = True  # type: ignore[attr-defined]  # marks a consumer already watched
    consumer.commit = watched


class LogWatch:
    """Watches the broker for a lost log and stale positions, and keeps ``health`` current."""

    def __init__(
        self,
        settings: Settings,
        broker: KafkaBroker,
        health: Health,
        *,
        topics: Iterable[Topic] = ALL_TOPICS,
        on_log_lost: Callable[[], Awaitable[None] | None] | None = None,
        interval: float = WATCH_INTERVAL_S,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.health = health
        self.topics = tuple(topics)
        self.on_log_lost = on_log_lost
        self.interval = interval
        self.known: set[str] = set()  # declared topics seen on the broker since start
        self.ends: dict[TopicPartition, int] = {}  # each partition's end at the last look
        self.rewind: set[str] = set()  # topics lost since the last look, to be read again from the start
        self.differ: list[str] = []  # how the topics differ from the registry, as last said

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled; a round that fails is a problem to show."""
        clients: tuple[AIOKafkaAdminClient, AIOKafkaConsumer] | None = None
        try:
            while True:
                try:
                    if clients is None:
                        clients = await self._connect()
                    await self.round(*clients)
                    self.health.clear("broker")
                except Exception as exc:  # the broker away: say so, start afresh next round
                    self.health.fail("broker", f"{type(exc).__name__}: {exc}")
                    if clients is not None:
                        await self._close(clients)
                    clients = None
                await asyncio.sleep(self.interval)
        finally:
            if clients is not None:
                await self._close(clients)

    async def _connect(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        servers = self.settings.bootstrap_servers
        admin = new_admin(servers, "newsroom-watch", request_timeout_ms=5000)
        reader = plain_consumer(self.settings, client_id="newsroom-watch", request_timeout_ms=5000)
        try:
            await admin.start()
            await reader.start()
        except Exception:
            await self._close((admin, reader))
            raise
        return admin, reader

    @staticmethod
    async def _close(clients: tuple[AIOKafkaAdminClient, AIOKafkaConsumer]) -> None:
        for client in clients:
            with contextlib.suppress(Exception):
                await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())

    async def round(self, admin: AIOKafkaAdminClient, reader: AIOKafkaConsumer) -> None:
        """One look: missing topics, partitions whose end went back, consumers past the end."""
        existing = set(await admin.list_topics())
        declared = {t.name for t in self.topics}
        missing = declared - existing
        lost = sorted(missing & self.known)
        self.known |= declared & existing
        if missing:
            if lost:
                log.error(LOST_LOG.format(what=f"topics {', '.join(lost)} are missing"), topics=lost)
                self.rewind |= set(lost)  # once they are back, every consumer reads them from the start
            self.health.fail("topics", f"missing: {', '.join(sorted(missing))}")
            await ensure_topics(self.settings, self.topics)
            self.ends = {tp: end for tp, end in self.ends.items() if tp.topic not in missing}
            if lost:
                await self._lost()
            return
        described = await admin.describe_topics(sorted(declared))
        tps = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
        counts = {t["topic"]: len(t["partitions"]) for t in described}
        wanted = {t.name: self.settings.topic_partitions.get(t.name, t.partitions) for t in self.topics}
        differ = [f"{name} has {counts[name]} partitions, not {n}"
                  for name, n in wanted.items() if counts.get(name, n) != n]  # fmt: skip
        # made by something else than the registry (a broker that creates topics on a request), or changed
        # by an operator: said, once, but not a reason to stop (more partitions can be deliberate)
        if differ and differ != self.differ:
            log.warning("topics differ from the registry", differ=differ)
        self.differ = differ
        self.health.clear("topics")
        ends = await reader.end_offsets(tps) if tps else {}
        went_back = [tp for tp, end in self.ends.items() if ends.get(tp, 0) < end]
        shrunk = [f"{tp.topic}[{tp.partition}] ends at {ends.get(tp, 0)}, it ended at {self.ends[tp]}"
                  for tp in went_back]  # fmt: skip
        self.rewind |= {tp.topic for tp in went_back}
        self.ends = dict(ends)
        rewound = await self._rewind_consumers()
        if shrunk or rewound:
            log.error(LOST_LOG.format(what="; ".join(shrunk + rewound)), partitions=shrunk + rewound)
            await self._lost()

    async def _rewind_consumers(self) -> list[str]:
        """Send each consumer back to the start of every partition of a lost topic, and of any partition it
        has read past the end of (the embedded broker answers a fetch there with nothing, where Kafka
        says the offset is out of range and the consumer starts again by itself)."""
        rewound = []
        for consumer in consumers(self.broker):
            watch_commits(consumer, self.health)
            for tp in consumer.assignment():
                end = consumer.highwater(tp)
                position = await consumer.position(tp)
                if tp.topic in self.rewind or (end is not None and position > end):
                    if position > 0:
                        rewound.append(f"{tp.topic}[{tp.partition}] ends at {end}, was read up to {position}")
                    await consumer.seek_to_beginning(tp)
        self.rewind.clear()  # a consumer assigned later starts where its group committed: nothing, here
        return rewound

    async def _lost(self) -> None:
        if self.on_log_lost is not None:
            result = self.on_log_lost()
            if result is not None:
                await result


def probes(
    broker: KafkaBroker, health: Health, also: Callable[[], Awaitable[str | None]] | None = None
) -> tuple[Callable[[], Awaitable[str | None]], Callable[[], Awaitable[str | None]]]:
    """The service's readiness (no problem in ``health``, the broker answers, then ``also``) and
    liveness (its consumer tasks run) probes, for :func:`~newsroom.common.ops.ops_routes`."""

    async def ready() -> str | None:
        if not health.ok:
            return health.describe()
        if not await broker.ping(timeout=2.0):
            return "the broker does not answer"
        return await also() if also is not None else None

    stopped_since: dict[str, float] = {}

    async def alive() -> str | None:
        # FastStream starts a consume task again when it fails: stopped only when none runs for a while
        now = time.monotonic()
        stopped = set(stopped_consumers(broker))
        for name in list(stopped_since):
            if name not in stopped:
                del stopped_since[name]
        dead = [n for n in sorted(stopped) if now - stopped_since.setdefault(n, now) >= STOPPED_GRACE_S]
        return f"consuming {'; '.join(dead)} has stopped" if dead else None

    return ready, alive
