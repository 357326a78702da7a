"""The ingestion service after the broker failed a publish: it refuses to guess, then heals by itself."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from newsroom.common.events import encode, new_envelope
from newsroom.common.messaging import Publisher
from newsroom.common.topics import ARTICLES
from newsroom.ingestion.domain import ArticleIn, ArticleRegistry
from newsroom.ingestion.engine import Ingestor, PublishFailed
from tests.conftest import RunningStack, apoll
from tests.fakes import FailingBroker


async def test_a_failed_publish_heals_without_a_request(infra: RunningStack) -> None:
    """After a failed publish the registry is rebuilt from the log in the background: ready again unasked."""
    ingestor = Ingestor(Publisher(FailingBroker(), "test"))  # type: ignore[arg-type]  # fails every publish
    await ingestor.load(infra.settings)
    article = ArticleIn(
        headline="Healing test", body="Text.", source="heal-test", published_at=datetime.now(UTC)
    )
    try:
        with pytest.raises(PublishFailed):
            await ingestor.submit(article)
        assert not ingestor.ready
        await apoll(lambda: asyncio.sleep(0, ingestor.ready), bool, timeout=30)
        assert ingestor.ready
        assert ingestor.registry.submit(article).outcome == "accepted"  # the failed burst left no trace
    finally:
        await ingestor.close()


async def test_the_registry_leaves_out_what_enrichment_parks(infra: RunningStack) -> None:
    """An article record with an unreadable header (parked by enrichment) is not an article the registry
    knows, so submitting the same article again is accepted rather than called a duplicate."""
    registry = ArticleRegistry()
    article = ArticleIn(
        headline=f"Parked {uuid.uuid4().hex}",
        body="Text.",
        source="park-test",
        published_at=datetime.now(UTC),
    )
    decision = registry.submit(article)
    assert decision.event is not None
    producer = AIOKafkaProducer(bootstrap_servers=infra.settings.bootstrap_servers)
    await producer.start()
    try:
        value = encode(new_envelope(decision.event, producer="test"))
        await producer.send_and_wait(
            ARTICLES.name, value, key=decision.article_id.encode(), headers=[("x-a", b"\xff\xfe")]
        )
    finally:
        await producer.stop()
    ingestor = Ingestor(Publisher(FailingBroker(), "test"))  # type: ignore[arg-type]  # never publishes here
    await ingestor.load(infra.settings)
    assert decision.article_id not in ingestor.registry.by_id
    assert ingestor.registry.submit(article).outcome == "accepted"


class CountingFailingBroker(FailingBroker):
    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await super().publish(*args, **kwargs)


async def test_nothing_is_published_while_the_watch_sees_a_topic_missing() -> None:
    """While the log watch reports a problem (a broker back empty, its topics not created yet), a
    submission is refused with the reason and never reaches the producer, which the embedded broker
    would acknowledge into nowhere."""
    broker = CountingFailingBroker()
    ingestor = Ingestor(Publisher(broker, "test"))  # type: ignore[arg-type]  # counts and fails publishes
    ingestor.ready = True
    ingestor.gate = lambda: "topics: missing: newsroom.articles"
    article = ArticleIn(headline="Gated", body="Text.", source="gate-test", published_at=datetime.now(UTC))
    with pytest.raises(PublishFailed, match="not publishing: topics: missing"):
        await ingestor.submit(article)
    assert broker.calls == 0
    ingestor.gate = lambda: None
    with pytest.raises(PublishFailed, match="did not acknowledge"):  # now it is the broker that fails
        await ingestor.submit(article)
    await ingestor.close()
