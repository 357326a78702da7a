"""The web benchmark's baselines: minimal ASGI apps served by the same uvicorn settings."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import redis.asyncio as aioredis

BODY = b"<!doctype html><p>" + b"x" * (8192 - 18)
KEY = "bench:constant"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
HEADERS = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(BODY)).encode())]


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


async def constant(scope: Scope, receive: Receive, send: Send) -> None:
    """(a) A constant 8 KB body."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


_redis: aioredis.Redis | None = None


async def one_get(scope: Scope, receive: Receive, send: Send) -> None:
    """(b) One Redis GET of an 8 KB value per request."""
    global _redis
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if _redis is None:
        _redis = aioredis.Redis.from_url(os.environ["NEWSROOM_REDIS_URL"])
    body = await _redis.get(KEY) or b""
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": body})
