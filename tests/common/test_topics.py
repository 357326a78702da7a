"""The topic registry, and topic creation on the real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import ValidationError

from newsroom.common.admin import (
    Layout,
    admin_client,
    cluster_size,
    ensure_topics,
    resolved,
    supports_idempotence,
    topic_differences,
)
from newsroom.common.events import payload_types
from newsroom.common.messaging import producer_options
from newsroom.common.settings import Settings
from newsroom.common.topics import ALL_TOPICS, ARTICLES, TICKS, Topic
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
    await ensure_topics(infra.settings)
    assert await ensure_topics(infra.settings) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.settings.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([t.name for t in ALL_TOPICS])
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    assert partitions == {t.name: t.partitions for t in ALL_TOPICS}


@pytest.mark.parametrize(
    ("brokers", "configured", "expected"),
    [
        (1, {}, (1, None)),  # the embedded broker
        (2, {}, (2, None)),
        (3, {}, (3, 2)),
        (5, {}, (3, 2)),
        (5, {"topic_replication_factor": 5, "topic_min_insync_replicas": 3}, (5, 3)),
        (1, {"topic_min_insync_replicas": 1}, (1, 1)),
    ],
)
def test_the_layout_follows_the_cluster_unless_configured(
    brokers: int, configured: dict[str, int], expected: tuple[int, int | None]
) -> None:
    """Replicas default to 3 (fewer on a smaller cluster) with min ISR 2 at 3; settings override both."""
    layout = Layout.for_cluster(Settings.model_validate(configured), brokers)
    assert (layout.replication, layout.min_insync) == expected
    assert ("min.insync.replicas" in layout.config_of(ARTICLES)) is (expected[1] is not None)


def test_partition_counts_are_settings() -> None:
    """NEWSROOM_TOPIC_PARTITIONS overrides the registry's count for the topics it names (real ones only)."""
    layout = Layout.for_cluster(Settings(topic_partitions="newsroom.articles=12"), 1)
    assert layout.partitions_of(ARTICLES) == 12
    assert layout.partitions_of(TICKS) == TICKS.partitions
    for bad in ("newsroom.nope=3", "newsroom.articles", "newsroom.articles=0"):
        with pytest.raises(ValidationError, match="topic_partitions"):
            Settings(topic_partitions=bad)


def scratch_topic(partitions: int) -> Topic:
    return Topic(f"test.layout.{uuid.uuid4().hex[:8]}", partitions=partitions, key="k", events=())


async def test_a_topic_unlike_its_declaration_is_named(infra: RunningStack) -> None:
    """A topic that exists with other partitions than declared is reported, and left as it is."""
    topic = scratch_topic(partitions=3)
    async with admin_client(infra.settings) as admin:
        await admin.create_topics([NewTopic(topic.name, 1, 1)])
        layout = Layout.for_cluster(infra.settings, await cluster_size(admin))
        differences = await topic_differences(admin, layout, [topic])
    assert differences == [f"{topic.name}: 1 partitions, declared 3"]
    assert await ensure_topics(infra.settings, [topic]) == []  # not created again, not changed


async def test_a_missing_topic_is_created_with_the_layout(infra: RunningStack) -> None:
    """On the embedded broker (one broker) a topic is created with one replica and its declared partitions."""
    topic = scratch_topic(partitions=2)
    assert await ensure_topics(infra.settings, [topic]) == [topic.name]
    async with admin_client(infra.settings) as admin:
        (described,) = await admin.describe_topics([topic.name])
        assert await topic_differences(admin, Layout.for_cluster(infra.settings, 1), [topic]) == []
    assert len(described["partitions"]) == 2
    assert {len(p["replicas"]) for p in described["partitions"]} == {1}


async def test_the_embedded_broker_gives_no_idempotent_producer(infra: RunningStack) -> None:
    """Asked at start-up, the embedded broker says it has no producer ids, so producers run without."""
    assert await supports_idempotence(infra.settings) is False
    settings = await resolved(infra.settings)
    assert settings.kafka_idempotence == "false"
    assert producer_options(settings)["enable_idempotence"] is False
    assert producer_options(settings.model_copy(update={"kafka_idempotence": "true"}))["enable_idempotence"]
    assert producer_options(settings)["acks"] == "all"


def test_the_quote_state_topic_keeps_up_with_the_ticks_partitions() -> None:
    """More ticks partitions than quote-state ones is refused: each ticks partition has its own book."""
    with pytest.raises(ValidationError, match=r"newsroom.quotes.state needs as many partitions"):
        Settings(topic_partitions="newsroom.quotes.ticks=12")
    both = Settings(topic_partitions="newsroom.quotes.ticks=12,newsroom.quotes.state=12")
    assert both.topic_partitions["newsroom.quotes.state"] == 12
