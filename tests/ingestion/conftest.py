"""Fixtures of the ingestion tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from newsroom.common.events import Envelope, decode
from newsroom.common.settings import Settings
from newsroom.common.topics import ARTICLES
from newsroom.ingestion.domain import ArticleRegistry, Known
from newsroom.ingestion.service import build, serve
from tests.ingestion.helpers import API_KEY, Api


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    """The ingestion app over ASGI on FastStream's in-memory broker, its client holding a key that may
    write, its registry knowing ``some-article``; what it publishes on the articles topic is collected."""
    registry = ArticleRegistry()
    registry.by_id["some-article"] = Known("some-article", 1, "0" * 64, "some-article")
    svc = build(Settings(api_keys=API_KEY, max_future_publish_seconds=300), registry=registry)
    published: list[tuple[bytes | None, Envelope]] = []

    @svc.broker.subscriber(ARTICLES.name)
    async def collect(message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)  # one record: this subscriber takes no batches
        published.append((record.key, decode(message.body)))

    async with TestKafkaBroker(svc.broker):
        transport = httpx.ASGITransport(app=serve(svc), raise_app_exceptions=False)
        writer = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=writer) as client:
            yield Api(client, published, svc)


@pytest.fixture
def group() -> str:
    """A registry consumer group of this test's own: a group that earlier tests' replicas left takes
    the broker a session timeout to rebalance."""
    return f"ingestion-registry-test-{uuid.uuid4().hex[:8]}"
