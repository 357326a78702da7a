"""Fixtures of the ingestion tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from newsroom.ingestion import service
from newsroom.ingestion.domain import Known
from newsroom.ingestion.engine import Ingestor
from tests.ingestion.helpers import Api, FakePublisher


@pytest.fixture
async def api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    """The ingestion app over ASGI, writes allowed, publishing into a :class:`FakePublisher`."""
    publisher = FakePublisher()
    ingestor = Ingestor(publisher)  # type: ignore[arg-type]
    ingestor.ready = True
    ingestor.registry.by_id["some-article"] = Known("some-article", 1, "0" * 64, "some-article")
    monkeypatch.setattr(service, "ingestor", ingestor)
    monkeypatch.setitem(service.app.dependency_overrides, service.require_writer, lambda: "test")
    transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingestion") as client:
        yield Api(client, publisher)
