"""The ingestion service after the broker failed a publish: it refuses to guess, then heals by itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from newsroom.common.messaging import Publisher
from newsroom.ingestion.domain import ArticleIn
from newsroom.ingestion.service import Ingestor, PublishFailed
from tests.common.test_output_failures import FailingBroker
from tests.conftest import RunningStack, apoll


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
