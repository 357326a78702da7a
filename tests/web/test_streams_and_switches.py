"""The web tier across its readers leaving and blue/green switches (a site of its own on the real Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import uvicorn

from newsroom.cli.stack import free_port
from newsroom.common.redis_client import connect
from newsroom.common.store import Keys, Pointers, WriteBatch, namespace_for
from newsroom.web.service import create_app
from newsroom.web.site import Site
from tests.conftest import RunningStack, apoll


@contextlib.asynccontextmanager
async def serving(stack: RunningStack) -> AsyncIterator[tuple[Site, str]]:
    """A web tier of a template version of its own (so its switches touch nothing else), and its URL."""
    version = f"tweb{uuid.uuid4().hex[:8]}"
    redis = connect(stack.settings.redis_url)
    try:  # a namespace to serve, as a rebuild's switch names one: the web tier never claims one itself
        await redis.set(Pointers(version).active, namespace_for(version))
    finally:
        await redis.aclose()
    site = create_app(stack.settings.model_copy(update={"template_version": version}))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(site, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        await apoll(lambda: asyncio.sleep(0, server.started), bool, timeout=30)
        await apoll(lambda: asyncio.sleep(0, site.cache.enabled), bool, timeout=30)  # following its channels
        yield site, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def write_home(stack: RunningStack, site: Site, text: str) -> None:
    redis = connect(stack.settings.redis_url)
    try:
        batch = WriteBatch(redis, Keys(site.namespace))
        batch.set_page("home", [("own", text)])
        await batch.execute()
    finally:
        await redis.aclose()


async def test_a_reader_leaving_ends_its_event_stream(infra: RunningStack) -> None:
    """When a reader closes the live-quotes stream, its Redis subscription goes too."""
    redis = connect(infra.settings.redis_url)
    async with serving(infra) as (site, base):
        channel = site.keys.live_quotes

        async def listening() -> int:
            return int(dict(await redis.pubsub_numsub(channel))[channel.encode()])

        async def subscribed_while_open() -> bool:
            """Open a stream: whether its subscription shows while open (SUBSCRIBE is sent, not awaited)."""
            async with (
                httpx.AsyncClient(timeout=10) as client,
                client.stream("GET", f"{base}/live/quotes") as stream,
            ):
                assert (await anext(stream.aiter_lines())).startswith(": connected")
                deadline = asyncio.get_running_loop().time() + 10
                while asyncio.get_running_loop().time() < deadline:
                    if await listening() >= 1:
                        return True
                    await asyncio.sleep(0.1)
                return False  # the stream ended early (a store error, logged): a browser reconnects

        for _ in range(3):
            attempts = 1
            while not await subscribed_while_open():
                attempts += 1
                assert attempts <= 3, "three streams in a row ended before their subscription showed"
        assert await apoll(listening, lambda n: n == 0) == 0
    await redis.aclose()


async def test_a_switch_ends_open_event_streams(infra: RunningStack) -> None:
    """After a blue/green switch an open live-quotes stream ends, so the browser reconnects to the new one."""
    redis = connect(infra.settings.redis_url)
    async with (
        serving(infra) as (site, base),
        httpx.AsyncClient(timeout=30) as client,
        client.stream("GET", f"{base}/live/quotes") as stream,
    ):
        lines = stream.aiter_lines()
        assert (await anext(lines)).startswith(": connected")
        old, new = site.namespace, f"{site.namespace}:20261125T000000000000Z"
        await redis.set(site.pointers.shadow, new)
        await site.pointers.switch_to(redis, new, replacing=old)
        await asyncio.wait_for(_remaining(lines), timeout=30)  # returns once the stream has ended
        assert site.namespace == new
    await redis.aclose()


async def test_a_switch_to_the_namespace_served_keeps_pages_fresh(infra: RunningStack) -> None:
    """A switch announcement naming the namespace already served leaves invalidations followed."""
    redis = connect(infra.settings.redis_url)
    async with serving(infra) as (site, base), httpx.AsyncClient(timeout=10) as client:
        await write_home(infra, site, "version one")
        await apoll(lambda: client.get(f"{base}/"), lambda r: "version one" in r.text)
        await redis.publish(site.pointers.switch, site.namespace)
        channel = site.keys.invalidations
        await apoll(lambda: redis.pubsub_numsub(channel), lambda n: dict(n)[channel.encode()] == 1)
        assert (await client.get(f"{base}/")).text.endswith("version one")  # cached again
        await write_home(infra, site, "version two")
        page = await apoll(lambda: client.get(f"{base}/"), lambda r: "version two" in r.text, timeout=10)
        assert page.text.endswith("version two")
    await redis.aclose()


async def _remaining(lines: AsyncIterator[str]) -> str:
    return "\n".join([line async for line in lines])
