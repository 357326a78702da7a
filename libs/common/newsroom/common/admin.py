"""Kafka seen from outside the consumer groups: the admin client, consumers that never join a group,
a group's committed offsets and live members, commits made without joining, and topic creation.

Every service, command and tool that talks to Kafka other than through FastStream's subscribers and
publishers does it with these, so each such conversation is written once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import OffsetAndMetadata

from newsroom.common.reading import running
from newsroom.common.settings import Settings
from newsroom.common.topics import ALL_TOPICS, Topic

log = structlog.get_logger(__name__)


def plain_consumer(settings: Settings, group_id: str | None = None, **kwargs: Any) -> AIOKafkaConsumer:
    """A consumer that never joins a group and never auto-commits (``assign`` it)."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        **kwargs,
    )


def partitions_of(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of the named topics that exist, in order."""
    out: list[TopicPartition] = []
    for topic in topics:
        out += [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    return out


def new_admin(
    bootstrap_servers: list[str], client_id: str = "newsroom-admin", **kwargs: Any
) -> AIOKafkaAdminClient:
    """An admin client, not started (for one held open, as the log watch does)."""
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id, **kwargs)


@asynccontextmanager
async def admin_client(
    settings: Settings, client_id: str = "newsroom-admin"
) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client, started, closed on leaving."""
    admin = new_admin(settings.bootstrap_servers, client_id)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def committed_offsets(
    admin: AIOKafkaAdminClient, group: str, tps: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    """The group's committed offsets for those of ``tps`` it has committed (asked partition by partition)."""
    if not tps:
        return {}
    found = await admin.list_consumer_group_offsets(group, partitions=list(tps))
    return {tp: om.offset for tp, om in found.items() if om.offset >= 0}


async def group_offsets(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of ``topic`` (those it has not committed on left out)."""
    async with admin_client(settings) as admin, running(plain_consumer(settings)) as consumer:
        tps = partitions_of(consumer, [topic])
        return {tp.partition: offset for tp, offset in (await committed_offsets(admin, group, tps)).items()}


async def list_groups(admin: AIOKafkaAdminClient) -> list[str]:
    """Every consumer group the broker knows, sorted."""
    return sorted({str(g[0]) for g in await admin.list_consumer_groups()})


async def live_members(admin: AIOKafkaAdminClient, group: str) -> list[str]:
    """Member ids of the group as the coordinator describes it (none for an unknown group)."""
    members: list[str] = []
    for response in await admin.describe_consumer_groups([group]):
        for entry in response.groups:
            error_code, group_id, _state, _ptype, _proto, group_members = entry[:6]
            if error_code == 0 and group_id == group:
                members += [m[0] for m in group_members]
    return members


async def commit_offsets(settings: Settings, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit offsets for ``group`` without joining it (assign + commit; no subscribe, no rebalance)."""
    async with running(plain_consumer(settings, group_id=group)) as consumer:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(off, "") for tp, off in offsets.items()})


DEFAULT_REPLICATION = 3  # on a cluster of three brokers or more: one broker can go, writes go on


@dataclass(frozen=True)
class Layout:
    """How the topics are created on a cluster: replicas, ``min.insync.replicas``, partitions."""

    replication: int
    min_insync: int | None
    partitions: dict[str, int]

    @classmethod
    def for_cluster(cls, settings: Settings, brokers: int) -> Layout:
        """The settings' layout, or the default for a cluster of ``brokers`` (1 on the embedded broker)."""
        replication = settings.topic_replication_factor or max(1, min(DEFAULT_REPLICATION, brokers))
        min_insync = settings.topic_min_insync_replicas or (2 if replication >= DEFAULT_REPLICATION else None)
        return cls(replication, min_insync, dict(settings.topic_partitions))

    def partitions_of(self, topic: Topic) -> int:
        return self.partitions.get(topic.name, topic.partitions)

    def config_of(self, topic: Topic) -> dict[str, str]:
        config = topic.config()
        if self.min_insync is not None:
            config["min.insync.replicas"] = str(self.min_insync)
        return config


async def cluster_size(admin: AIOKafkaAdminClient) -> int:
    """How many brokers the cluster has."""
    return len((await admin.describe_cluster())["brokers"])


async def topic_differences(admin: AIOKafkaAdminClient, layout: Layout, topics: Sequence[Topic]) -> list[str]:
    """How the declared topics the broker has differ from the registry and the layout, one line each:
    partitions, replicas, and the configuration the topic was created with (where the broker says)."""
    existing = set(await admin.list_topics())
    present = {t.name: t for t in topics if t.name in existing}
    if not present:
        return []
    out: list[str] = []
    for described in await admin.describe_topics(list(present)):
        topic = present.get(described.get("topic", ""))
        parts = described.get("partitions") or []
        if topic is None or not parts:
            continue
        if len(parts) != layout.partitions_of(topic):
            out.append(f"{topic.name}: {len(parts)} partitions, declared {layout.partitions_of(topic)}")
        replicas = min(len(p.get("replicas") or ()) for p in parts)
        if replicas < layout.replication:
            out.append(f"{topic.name}: {replicas} replica(s), the layout asks {layout.replication}")
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in present]
        )
    except KafkaError as exc:  # a broker that cannot describe configurations: partitions and replicas only
        log.info("topic configurations not compared", error=str(exc))
        return out
    for response in responses:
        for error_code, _message, _type, name, entries in response.resources:
            topic = present.get(name)
            if error_code or topic is None:
                continue
            actual = {entry[0]: entry[1] for entry in entries}
            for key, wanted in layout.config_of(topic).items():
                if key in actual and actual[key] != wanted:
                    out.append(f"{name}: {key}={actual[key]}, declared {wanted}")
    return out


async def review_topics(settings: Settings, topics: Sequence[Topic] = ALL_TOPICS) -> tuple[Layout, list[str]]:
    """The cluster's :class:`Layout`, and how the declared topics it has differ from it and the registry."""
    async with admin_client(settings) as admin:
        layout = Layout.for_cluster(settings, await cluster_size(admin))
        return layout, await topic_differences(admin, layout, topics)


async def ensure_topics(settings: Settings, topics: Sequence[Topic] = ALL_TOPICS) -> list[str]:
    """Create whichever declared topics are missing, with the cluster's :class:`Layout`; safe to call at
    every start-up. How the topics that exist differ from the registry is logged as a warning (a topic
    is never changed here: more partitions move keys, which an operator decides)."""
    admin = new_admin(settings.bootstrap_servers)
    await admin.start()
    created: list[str] = []
    try:
        layout = Layout.for_cluster(settings, await cluster_size(admin))
        existing = set(await admin.list_topics())
        for topic in (t for t in topics if t.name not in existing):
            new = NewTopic(
                topic.name,
                layout.partitions_of(topic),
                layout.replication,
                topic_configs=layout.config_of(topic),
            )
            try:
                response = await admin.create_topics([new])
            except TopicAlreadyExistsError:  # another process won the race: same outcome
                continue
            # aiokafka hands back the broker's per-topic errors rather than raising them
            errors = {name: code for name, code, *_ in getattr(response, "topic_errors", ())}
            if errors.get(topic.name, 0) == 0:
                created.append(topic.name)
            elif errors[topic.name] != TopicAlreadyExistsError.errno:
                log.error(
                    "topic not created", topic=topic.name, error_code=errors[topic.name],
                    replication=layout.replication, partitions=layout.partitions_of(topic),
                )  # fmt: skip
        differences = await topic_differences(admin, layout, [t for t in topics if t.name in existing])
    finally:
        await admin.close()
    if created:
        log.info(
            "topics created", topics=created, replication=layout.replication, min_insync=layout.min_insync
        )
    for difference in differences:
        log.warning("topic differs from the registry", difference=difference)
    return created


PROBE_SECONDS = 10.0  # for the broker to say whether it gives producer ids


async def supports_idempotence(settings: Settings) -> bool:
    """Whether the broker gives producer ids (the idempotent producer): Apache Kafka does, the embedded
    broker answers an error. A broker that cannot be asked within :data:`PROBE_SECONDS` counts as not."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, enable_idempotence=True)
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            await producer.start()
    except (KafkaError, TimeoutError, OSError) as exc:
        log.info("the broker gives no idempotent producer", error=f"{type(exc).__name__}: {exc}")
        return False
    finally:
        await producer.stop()
    return True


async def resolved(settings: Settings) -> Settings:
    """``settings`` with ``kafka_idempotence`` decided (``auto`` asks the broker once)."""
    if settings.kafka_idempotence != "auto":
        return settings
    found = await supports_idempotence(settings)
    return settings.model_copy(update={"kafka_idempotence": "true" if found else "false"})
