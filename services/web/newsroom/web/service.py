"""The web tier: pages assembled from Redis fragments, and nothing else.

A bare ASGI application (no framework: the speed goal is close to a constant response).
A page is read with one Lua call (one round trip, one consistent state) and kept in an
in-process cache until the renderer announces, on the store's invalidation channel, that
something the page is made of changed. While that subscription is down nothing is
cached, so a page is never older than the last announcement. It never talks to Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from redis.exceptions import RedisError

from newsroom.common.logging import configure_logging
from newsroom.common.settings import get_settings
from newsroom.common.store import GONE, FragmentReader, Keys, Pointers, connect, dependencies

SERVICE = "web"
settings = get_settings()
log = structlog.get_logger(SERVICE)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CACHE_MISSES = Counter(
    "newsroom_web_page_cache_misses_total", "Pages assembled from Redis (not served from memory)"
)
PAGE_CACHE_SIZE = Gauge("newsroom_web_page_cache_pages", "Assembled pages held in memory")

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
]
PAGE_CACHE = b"public, max-age=5, stale-while-revalidate=30, stale-if-error=300"
ASSET_TYPES = {"css": b"text/css; charset=utf-8", "js": b"text/javascript; charset=utf-8"}
ROUTES = [
    (re.compile(r"^/$"), lambda m: "home"),
    (re.compile(r"^/news/([a-z0-9-]{1,200})$"), lambda m: f"news/{m.group(1)}"),
    (re.compile(r"^/quote/([A-Za-z]{1,10})/([A-Za-z0-9.\-]{1,20})$"),
     lambda m: f"quote/{m.group(1).upper()}/{m.group(2).upper()}"),
]  # fmt: skip

NOT_FOUND = (
    b"<!doctype html><html lang=en><title>Not found</title><h1>Page not found</h1>"
    b'<p>No such page. <a href="/">Back to the front page</a>.</p></html>'
)
GONE_PAGE = (
    b"<!doctype html><html lang=en><title>Article retracted</title><div class=gone><h1>This article has been"
    b' retracted</h1><p>It is no longer available. <a href="/">Back to the front page</a>.</p></div></html>'
)
UNAVAILABLE = (
    b"<!doctype html><html lang=en><title>Temporarily unavailable</title><h1>We'll be right back</h1>"
    b"<p>The site cannot reach its page store just now. Please try again in a moment.</p></html>"
)


@dataclass(frozen=True, slots=True)
class Cached:
    """A page ready to send: status, body, its own headers and the full header list, built once."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]
    etag: bytes | None
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.response_headers[:] = response_headers(self.body, HTML, self.headers)


class PageCache:
    """Assembled pages by path, with the reverse index the invalidations need."""

    def __init__(self, max_pages: int = 10_000) -> None:
        self.max_pages = max_pages
        self.pages: dict[str, Cached] = {}
        self.by_dependency: dict[str, set[str]] = {}
        self.epoch = 0  # bumped by every invalidation: a read that overlapped one is not cached
        self.enabled = False  # only while the invalidation subscription is live

    def get(self, page: str) -> Cached | None:
        return self.pages.get(page) if self.enabled else None

    def put(self, page: str, entry: Cached, deps: set[str], epoch: int) -> None:
        if not self.enabled or epoch != self.epoch:
            return
        if len(self.pages) >= self.max_pages:
            self.clear()
        self.pages[page] = entry
        for dep in deps | {f"page:{page}"}:
            self.by_dependency.setdefault(dep, set()).add(page)

    def invalidate(self, names: list[str]) -> None:
        self.epoch += 1
        for name in names:
            for page in self.by_dependency.pop(name, ()):
                self.pages.pop(page, None)

    def clear(self) -> None:
        self.epoch += 1
        self.pages.clear()
        self.by_dependency.clear()


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
            self._use((await self.pointers.resolve(self.redis))[0])
        self._listener = asyncio.create_task(self._listen())
        log.info("web ready", namespace=self.namespace)

    async def shutdown(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self.redis is not None:
            await self.redis.aclose()

    def _use(self, namespace: str) -> None:
        """Serve from ``namespace`` from now on (start-up, or a blue/green switch)."""
        assert self.redis is not None
        if namespace != self.namespace:
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
                self._use((await self.pointers.resolve(self.redis))[0])
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
            await self._live(scope, send)
        elif path.startswith("/assets/"):
            await self._asset(scope, send, path[len("/assets/") :])
        else:
            await respond(send, 404, NOT_FOUND)

    async def _can_read(self) -> bool:
        try:
            assert self.redis is not None
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

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

    async def _live(self, scope: Scope, send: Send) -> None:
        """Server-Sent Events: quote changes for the instruments the page shows."""
        query = scope.get("query_string", b"").decode()
        wanted = {
            part
            for kv in query.split("&")
            if kv.startswith("ids=")
            for part in _unquote(kv[4:]).split(",")
            if part
        }
        assert self.redis is not None
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.keys.live_quotes)
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
        try:
            await send({"type": "http.response.body", "body": b": connected\n\n", "more_body": True})
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=15.0)
                if message is None:
                    await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
                    continue
                data = message["data"]
                if wanted and orjson.loads(data).get("id") not in wanted:
                    continue
                await send({"type": "http.response.body", "body": b"event: quote\ndata: " + data + b"\n\n",
                            "more_body": True})  # fmt: skip
        except (OSError, RedisError, asyncio.CancelledError):
            pass
        finally:
            await pubsub.aclose()


def etag_of(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'


def assemble(page: str, result: tuple[list[str], list[bytes]] | None) -> Cached:
    """Turn what the store returned into a response: 404, 410 or the page with its caching headers."""
    if result is None:
        return Cached(404, NOT_FOUND, [], None)
    manifest, fragments = result
    if manifest == [GONE]:
        return Cached(410, GONE_PAGE, [(b"cache-control", b"public, max-age=60")], None)
    body = b"".join(fragments)
    etag = etag_of(body)
    keys = " ".join(sorted(surrogate_keys(page, manifest)))
    headers = [(b"etag", etag), (b"cache-control", PAGE_CACHE), (b"surrogate-key", keys.encode())]
    return Cached(200, body, headers, etag)


def surrogate_keys(page: str, manifest: list[str]) -> set[str]:
    """CDN tags for a page: the page itself, its article, the instruments and lists it shows."""
    tags = {f"page:{page}"}
    for entry in manifest:
        if entry.startswith("@z "):
            tags.add("list:" + entry.split(" ", 2)[1])
        elif entry.startswith(("chip:", "qrow:", "qdetail:")):
            tags.add("ticker:" + entry.split(":", 1)[1])
        elif entry.startswith("art:"):
            tags.add("article:" + entry.split(":", 2)[1])
    return tags


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


HTML = b"text/html; charset=utf-8"


def response_headers(
    body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]] | None
) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
    ]
    return headers + extra if extra else headers


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


app = Site(settings.redis_url, settings.template_version)
