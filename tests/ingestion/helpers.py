"""Helpers for the ingestion tests: the ``newsroom`` CLI as a subprocess, the articles log, a feed server."""

from __future__ import annotations

import email.utils
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from newsroom.common.events import ArticleContent, Envelope, Payload
from newsroom.common.reading import read_topic
from newsroom.common.records import Record
from newsroom.common.settings import Settings
from newsroom.common.topics import ARTICLES
from newsroom.ingestion.service import Ingestion, build, serve
from tests.conftest import API_KEY as STACK_API_KEY
from tests.conftest import apoll
from tests.fakes import newsroom as newsroom  # the shared runner, used here too

REPO = Path(__file__).resolve().parents[2]
API_KEY = "fast-test-key-0123456789"  # a key the ``api`` fixture's app lets write


async def article_events(settings: Settings) -> list[tuple[str, Payload]]:
    """Every event on the articles topic as (key, payload), in partition order."""
    events: list[tuple[str, Payload]] = []
    async for batch in read_topic(settings, ARTICLES.name):
        for rec in batch:
            record = Record.from_consumer_record(rec)
            if record.envelope is not None:  # other tests park poison on this topic on purpose
                events.append((record.key or "", record.envelope.data))
    return events


def from_sources(events: list[tuple[str, Payload]], sources: set[str]) -> list[ArticleContent]:
    """The content events (submissions and revisions) whose source is one of ``sources``."""
    return [p for _, p in events if isinstance(p, ArticleContent) and p.source in sources]


@dataclass
class FeedServer:
    """A local HTTP server for feed documents, honouring ETag/If-None-Match and Last-Modified.

    ``docs`` maps a path to ``(status, body)``; editing a body changes its ETag and Last-Modified.
    ``hits`` and ``not_modified`` count requests and 304 answers per path.
    """

    port: int = 0
    docs: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    modified: dict[str, float] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    not_modified: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def put(self, path: str, body: bytes, status: int = 200) -> None:
        with self.lock:
            self.docs[path] = (status, body)
            self.modified[path] = max(time.time(), self.modified.get(path, 0) + 1)


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with server.lock:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                status, body = server.docs.get(self.path, (404, b"not found"))
                modified = server.modified.get(self.path, 0.0)
            if status != 200:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            etag = '"' + hashlib.sha1(body).hexdigest() + '"'  # noqa: S324 - a cache validator
            last_modified = email.utils.formatdate(int(modified), usegmt=True)
            since = self.headers.get("If-Modified-Since")
            fresh = self.headers.get("If-None-Match") == etag or (
                self.headers.get("If-None-Match") is None
                and since is not None
                and email.utils.parsedate_to_datetime(since).timestamp() >= int(modified)
            )
            if fresh:
                with server.lock:
                    server.not_modified[self.path] = server.not_modified.get(self.path, 0) + 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

    return Handler


@contextmanager
def feed_server() -> Iterator[FeedServer]:
    """A :class:`FeedServer` running in a thread for the duration of the block."""
    state = FeedServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Api:
    """The ingestion app under test: its client, what it published on the articles topic, its parts."""

    client: httpx.AsyncClient
    published: list[tuple[bytes | None, Envelope]]  # (key, event) of each record on the articles topic
    svc: Ingestion

    @property
    def sent(self) -> list[Envelope]:
        return [envelope for _, envelope in self.published]

    async def post_raw(self, path: str, raw: str, method: str = "POST") -> httpx.Response:
        """Send ``raw`` as the JSON body, byte for byte (so it can hold NaN and lone surrogate escapes)."""
        return await self.client.request(
            method, path, content=raw.encode(), headers={"content-type": "application/json"}
        )


def raw_article(**over: str) -> str:
    """An article as raw JSON text; each value in ``over`` is raw JSON too (``NaN``, ``"\\ud800"``)."""
    fields = {
        "headline": '"Intel beats estimates"',
        "body": '"Intel Corp. (NASDAQ: INTC) rose."',
        "source": '"wire"',
        "published_at": json.dumps(datetime.now(UTC).isoformat()),
    }
    fields.update(over)
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields.items()) + "}"


async def refused(api: Api, raw: str, field_name: str) -> None:
    """The single, PUT and batch endpoints all refuse ``raw``, naming ``field_name``; nothing is published."""
    for method, path in (("POST", "/v1/articles"), ("PUT", "/v1/articles/some-article")):
        r = await api.post_raw(path, raw, method)
        assert r.status_code == 422, (method, r.status_code, r.text[:300])
        named = {str(part) for error in r.json()["detail"] for part in error["loc"]}
        assert field_name in named, r.text
    r = await api.post_raw("/v1/articles:batch", '{"articles": [' + raw + "]}")
    assert r.status_code == 200, r.text[:300]
    [result] = r.json()["results"]
    assert result["outcome"] == "rejected"
    assert result["reason"].startswith((f"{field_name}:", f"{field_name}.")), result
    assert api.sent == []


@asynccontextmanager
async def replica(
    settings: Settings, group: str, *, wait_ready: bool = True
) -> AsyncIterator[tuple[httpx.AsyncClient, Ingestion]]:
    """One ingestion replica over the real broker and Redis of ``settings``, its registry consumer in
    ``group``, started (its lifespan run, then ready unless ``wait_ready`` is false) and driven over
    ASGI by a client holding a key that may write."""
    svc = build(settings, group=group)
    app = serve(svc)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        writer = {"Authorization": f"Bearer {STACK_API_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://replica", headers=writer, timeout=60
        ) as client:
            if wait_ready:
                await apoll(lambda: client.get("/readyz"), lambda r: r.status_code == 200)
            yield client, svc
