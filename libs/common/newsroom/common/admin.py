"""Kafka seen from outside the consumer groups: the admin client, consumers that never join a group,
a group's committed offsets and live members, commits made without joining, and topic creation.

Every service, command and tool that talks to Kafka other than through FastStream's subscribers and
publishers does it with these, so each such conversation is written once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
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


async def ensure_topics(bootstrap_servers: list[str], topics: tuple[Topic, ...] = ALL_TOPICS) -> list[str]:
    """Create whichever declared topics are missing; safe to call at every start-up."""
    admin = new_admin(bootstrap_servers)
    await admin.start()
    created: list[str] = []
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        for topic in missing:
            try:
                response = await admin.create_topics(
                    [NewTopic(topic.name, topic.partitions, 1, topic_configs=topic.config())]
                )
            except TopicAlreadyExistsError:  # another process won the race: same outcome
                continue
            # aiokafka hands back the broker's per-topic errors rather than raising them
            errors = {name: code for name, code, *_ in getattr(response, "topic_errors", ())}
            if errors.get(topic.name, 0) == 0:
                created.append(topic.name)
            elif errors[topic.name] != TopicAlreadyExistsError.errno:
                log.error("topic not created", topic=topic.name, error_code=errors[topic.name])
    finally:
        await admin.close()
    if created:
        log.info("topics created", topics=created)
    return created
