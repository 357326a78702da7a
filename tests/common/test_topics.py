"""The topic registry, and topic creation on the real broker."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from newsroom.common.admin import ensure_topics
from newsroom.common.events import payload_types
from newsroom.common.topics import ALL_TOPICS
from tests.conftest import RunningStack


def test_every_event_type_has_a_home() -> None:
    """Each registered event type is declared on at least one topic, and topics name only real events."""
    declared = {e for t in ALL_TOPICS for e in t.events}
    assert declared <= set(payload_types())
    assert set(payload_types()) <= declared


def test_topic_names_are_unique() -> None:
    """No two declarations share a name."""
    assert len({t.name for t in ALL_TOPICS}) == len(ALL_TOPICS)


async def test_topics_are_created_idempotently(infra: RunningStack) -> None:
    """Creating topics twice leaves each with its declared partition count."""
    await ensure_topics(infra.settings.bootstrap_servers)
    assert await ensure_topics(infra.settings.bootstrap_servers) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.settings.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([t.name for t in ALL_TOPICS])
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    assert partitions == {t.name: t.partitions for t in ALL_TOPICS}
