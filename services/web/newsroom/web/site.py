"""The web tier's ASGI application, :class:`Site`: pages assembled from Redis fragments, and nothing else.

A bare ASGI application (no framework: the speed goal is close to a constant response).
A page is read with one Lua call (one round trip, one consistent state) and kept in an
in-process cache until the renderer announces, on the store's invalidation channel, that
something the page is made of changed. While that subscription is down nothing is
cached, so a page is never older than the last announcement. It never talks to Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from redis.exceptions import RedisError

from newsroom.common.logging import configure_logging
from newsroom.common.redis_client import connect
from newsroom.common.store import FragmentReader, Keys, Pointers, dependencies, site_problem
from newsroom.web.domain import (
    ASSET_TYPES,
    HTML,
    NOT_FOUND,
    ROUTES,
    SECURITY_HEADERS,
    UNAVAILABLE,
    PageCache,
    assemble,
    etag_of,
    response_headers,
)

SERVICE = "web"
LIVE_CHECK_S = 1.0  # how often an event stream looks whether its reader left or the site switched
LIVE_KEEPALIVE_S = 15.0  # a comment line on a quiet event stream, so proxies keep it open
log = structlog.get_logger(SERVICE)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CACHE_MISSES = Counter(
    "newsroom_web_page_cache_misses_total", "Pages assembled from Redis (not served from memory)"
)
PAGE_CACHE_SIZE = Gauge("newsroom_web_page_cache_pages", "Assembled pages held in memory")


class Site:
    """The ASGI application."""

    def __init__(self, redis_url: str, template_version: str) -> None:
        self.redis_url = redis_url
        self.pointers = Pointers(template_version)
        self.namespace = ""
        self.keys = Keys(self.namespace)
        self.redis: aioredis.Redis | None = None
        self.reader: FragmentReader | None = None
        self.cache = PageCache()
        self._routed: dict[str, str] = {}  # request path -> page, memoised route matching
        self._listener: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        configure_logging(SERVICE)
        self.redis = connect(self.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        with contextlib.suppress(RedisError, OSError):  # Redis may be down at start: the listener retries
            self._use((await self.pointers.read(self.redis))[0])
        self._listener = asyncio.create_task(self._listen())
        log.info("web ready", namespace=self.namespace)

    async def shutdown(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self.redis is not None:
            await self.redis.aclose()

    def _use(self, namespace: str | None) -> None:
        """Serve from ``namespace`` from now on (start-up, or a blue/green switch); None: from nothing
        (a store with no active namespace, which the renderer is rebuilding)."""
        assert self.redis is not None
        if namespace is None:
            if self.reader is not None:
                log.warning("the store has no active namespace; serving nothing until it has")
            self.namespace, self.reader = "", None
            self.cache.clear()
        elif namespace != self.namespace:
            self.namespace = namespace
            self.keys = Keys(namespace)
            self.reader = FragmentReader(self.redis, namespace)
            self.cache.clear()
            log.info("serving namespace", namespace=namespace)

    async def _listen(self) -> None:
        """Follow switches and invalidations; cache only while following them."""
        assert self.redis is not None
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.pointers.switch)
                self._use((await self.pointers.read(self.redis))[0])
                await pubsub.subscribe(self.keys.invalidations)
                self.cache.clear()
                self.cache.enabled = True
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if message is None:
                        continue
                    if message["channel"] == self.pointers.switch.encode():
                        old = self.keys.invalidations
                        self._use(message["data"].decode())
                        if self.keys.invalidations != old:  # a switch to the namespace served changes nothing
                            await pubsub.subscribe(self.keys.invalidations)
                            await pubsub.unsubscribe(old)
                        self.cache.clear()
                    else:
                        self.cache.invalidate(orjson.loads(message["data"]))
            except (RedisError, OSError) as exc:
                log.warning("invalidation channel lost; caching off until it is back", error=str(exc))
            finally:
                self.cache.enabled = False
                self.cache.clear()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(1.0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["method"] not in ("GET", "HEAD"):
            await respond(send, 405, b"method not allowed\n", b"text/plain", extra=[(b"allow", b"GET, HEAD")])
            return
        page = self._routed.get(path)
        if page is not None:
            await self._page(scope, send, page)
            return
        for pattern, to_page in ROUTES:
            match = pattern.match(path)
            if match:
                if len(self._routed) > 100_000:
                    self._routed.clear()
                self._routed[path] = page = to_page(match)
                await self._page(scope, send, page)
                return
        if path == "/healthz":
            await respond(send, 200, b"ok\n", b"text/plain")
        elif path == "/readyz":
            ok = await self._can_read()
            await respond(send, 200 if ok else 503, b"ok\n" if ok else b"not ready\n", b"text/plain")
        elif path == "/metrics":
            PAGE_CACHE_SIZE.set(len(self.cache.pages))
            await respond(send, 200, generate_latest(), CONTENT_TYPE_LATEST.encode())
        elif path == "/live/quotes":
            await self._live(scope, receive, send)
        elif path.startswith("/assets/"):
            await self._asset(scope, send, path[len("/assets/") :])
        else:
            await respond(send, 404, NOT_FOUND)

    async def _can_read(self) -> bool:
        """Ready: Redis answers, and it holds a site to serve (see :func:`store.site_problem`)."""
        try:
            assert self.redis is not None
            problem = await site_problem(self.redis, self.pointers.template_version)
        except (RedisError, OSError):
            return False
        if problem is None and self.reader is None:  # a namespace came while the listener was away
            self._use((await self.pointers.read(self.redis))[0])
        return problem is None

    async def _page(self, scope: Scope, send: Send, page: str) -> None:
        entry = self.cache.get(page)
        if entry is None:
            CACHE_MISSES.inc()
            epoch = self.cache.epoch
            try:
                if self.reader is None:  # Redis was down at start-up and has not come back yet
                    raise ConnectionError("page store not reached yet")
                result = await self.reader.page(page)
            except (RedisError, OSError) as exc:
                log.warning("page store unavailable", error=str(exc), page=page)
                await respond(send, 503, UNAVAILABLE, extra=[(b"retry-after", b"5")])
                return
            entry = assemble(page, result)
            self.cache.put(page, entry, dependencies(result[0]) if result else set(), epoch)
        if entry.etag is not None and _header(scope, b"if-none-match") == entry.etag:
            await respond(send, 304, b"", extra=entry.headers)
            return
        await send({"type": "http.response.start", "status": entry.status, "headers": entry.response_headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else entry.body})

    async def _asset(self, scope: Scope, send: Send, name: str) -> None:
        ext = name.rsplit(".", 1)[-1]
        if ext not in ASSET_TYPES:
            await respond(send, 404, NOT_FOUND)
            return
        assert self.redis is not None
        try:
            body = await self.redis.get(self.keys.frag(f"asset:{name}"))
        except (RedisError, OSError):
            await respond(send, 503, b"", b"text/plain")
            return
        if body is None:
            await respond(send, 404, NOT_FOUND)
            return
        body = body if isinstance(body, bytes) else body.encode()
        extra = [(b"etag", etag_of(body)), (b"cache-control", b"public, max-age=300")]
        if _header(scope, b"if-none-match") == extra[0][1]:
            await respond(send, 304, b"", extra=extra)
            return
        await respond(send, 200, body, ASSET_TYPES[ext], extra=extra)

    async def _live(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Server-Sent Events: quote changes for the instruments the page shows.

        The stream ends when the reader goes away, and when the site switches to another namespace:
        the browser then reconnects (after ``retry`` ms) and follows the new one.
        """
        query = scope.get("query_string", b"").decode()
        wanted = {
            part
            for kv in query.split("&")
            if kv.startswith("ids=")
            for part in _unquote(kv[4:]).split(",")
            if part
        }
        assert self.redis is not None
        namespace = self.namespace  # before subscribing: a switch meanwhile then ends the stream
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(Keys(namespace).live_quotes)
        except (RedisError, OSError):
            await respond(send, 503, b"", b"text/plain")
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                    *SECURITY_HEADERS,
                ],
            }
        )
        gone = asyncio.create_task(_disconnected(receive))

        async def emit(body: bytes) -> None:
            await send({"type": "http.response.body", "body": body, "more_body": True})

        try:
            await emit(b": connected\nretry: 1000\n\n")
            quiet_since = time.monotonic()
            while not gone.done() and self.namespace == namespace:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=LIVE_CHECK_S)
                if message is None:
                    if time.monotonic() - quiet_since >= LIVE_KEEPALIVE_S:
                        await emit(b": keep-alive\n\n")
                        quiet_since = time.monotonic()
                    continue
                data = message["data"]
                if wanted and orjson.loads(data).get("id") not in wanted:
                    continue
                await emit(b"event: quote\ndata: " + data + b"\n\n")
                quiet_since = time.monotonic()
            if not gone.done():  # switched: end the stream, the browser reconnects to the new namespace
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (OSError, RedisError) as exc:  # the browser reconnects (``retry``)
            log.info("live stream ended by an error", error=repr(exc))
        except asyncio.CancelledError:
            pass
        finally:
            gone.cancel()
            await pubsub.aclose()


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has gone away (the server does not say so on a send)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = HTML,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = response_headers(body, content_type, extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
