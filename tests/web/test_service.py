"""The web tier made by its factory, with its store unreachable: no broker or Redis needed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from newsroom.cli.stack import free_port
from newsroom.common.settings import Settings
from newsroom.web.service import create_app


@pytest.fixture
async def web() -> AsyncIterator[httpx.AsyncClient]:
    """The web tier started (as uvicorn's lifespan starts it) against a Redis port where nothing listens."""
    site = create_app(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    await site.startup()
    try:
        transport = httpx.ASGITransport(app=site)  # type: ignore[arg-type]  # Site types a scope as a dict
        async with httpx.AsyncClient(transport=transport, base_url="http://web") as client:
            yield client
    finally:
        await site.shutdown()


async def test_a_page_is_503_with_retry_after_while_the_store_is_unreachable(web: httpx.AsyncClient) -> None:
    """With no store to read, a page is a 503 asking to retry, never a 500; liveness stays ok."""
    r = await web.get("/news/some-story")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    assert (await web.get("/healthz")).text == "ok\n"


async def test_not_ready_while_the_store_is_unreachable(web: httpx.AsyncClient) -> None:
    """/readyz is 503 while Redis does not answer."""
    r = await web.get("/readyz")
    assert (r.status_code, r.text) == (503, "not ready\n")


async def test_only_reads_are_served(web: httpx.AsyncClient) -> None:
    """A write method is 405 naming the methods allowed."""
    r = await web.post("/")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"
