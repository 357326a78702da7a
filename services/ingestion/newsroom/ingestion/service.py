"""The ingestion service: the HTTP API that turns submissions into article events.

It is the only writer of the articles topic. At start-up it replays that topic into an
:class:`ArticleRegistry`, so de-duplication and revision numbers survive restarts.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import make_asgi_app
from pydantic import BaseModel

from newsroom.common.events import decode, new_envelope
from newsroom.common.logging import configure_logging
from newsroom.common.messaging import Publisher, make_broker, read_topic
from newsroom.common.settings import Settings, get_settings
from newsroom.common.topics import ARTICLES, ensure_topics
from newsroom.ingestion.domain import ArticleIn, ArticleRegistry, Decision

SERVICE = "ingestion"
settings = get_settings()
broker = make_broker(SERVICE, settings)
log = structlog.get_logger(SERVICE)


class Ingestor:
    """Serialises decisions so revisions stay monotonic, and publishes each event whole."""

    def __init__(self, publisher: Publisher, registry: ArticleRegistry | None = None) -> None:
        self.publisher = publisher
        self.registry = registry or ArticleRegistry()
        self.lock = asyncio.Lock()
        self.ready = False

    async def load(self, settings: Settings) -> int:
        """Rebuild the registry from the articles topic."""
        count = 0
        async for batch in read_topic(settings, ARTICLES.name):
            for rec in batch:
                try:
                    self.registry.apply(decode(rec.value).data)
                    count += 1
                except ValueError:
                    log.warning("unreadable article event skipped", offset=rec.offset, partition=rec.partition)
        self.ready = True
        return count

    async def _publish(self, decision: Decision, correlation_id: str | None) -> Decision:
        if decision.event is not None:
            envelope = new_envelope(decision.event, producer=SERVICE, correlation_id=correlation_id)
            await self.publisher.publish([(ARTICLES, decision.article_id, envelope)])
            self.registry.apply(decision.event)
        return decision

    async def submit(
        self, article: ArticleIn, *, article_id: str | None = None, correlation_id: str | None = None
    ) -> Decision:
        async with self.lock:
            return await self._publish(self.registry.submit(article, article_id=article_id), correlation_id)

    async def retract(self, article_id: str, reason: str, correlation_id: str | None = None) -> Decision | None:
        async with self.lock:
            decision = self.registry.retract(article_id, reason)
            return await self._publish(decision, correlation_id) if decision else None


ingestor = Ingestor(Publisher(broker, SERVICE))


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    configure_logging(SERVICE)
    await ensure_topics(settings.bootstrap_servers)
    await broker.start()
    loaded = await ingestor.load(settings)
    log.info("ingestion ready", articles_in_log=loaded, known_articles=len(ingestor.registry.by_id))
    if not settings.api_keys:
        log.warning("no NEWSROOM_API_KEYS configured: every write will be refused")
    try:
        yield
    finally:
        await broker.stop()
        log.info("ingestion stopped")


app = FastAPI(title="Newsroom ingestion API", version="1", lifespan=lifespan)
app.mount("/metrics", make_asgi_app())
bearer = HTTPBearer(auto_error=False)


def require_writer(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """Accept a request only with a configured API key (compared in constant time)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"}
        )
    presented = credentials.credentials.encode()
    allowed = False
    for key in settings.api_keys:
        allowed |= hmac.compare_digest(presented, key.get_secret_value().encode())
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this API key may not write articles")
    return credentials.credentials


Writer = Annotated[str, Depends(require_writer)]


class Accepted(BaseModel):
    article_id: str
    revision: int
    outcome: str


class Retraction(BaseModel):
    reason: str = ""


@app.middleware("http")
async def limit_body(request: Request, call_next: Any) -> Any:
    """Refuse bodies over the configured size before reading them."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
        return JSONResponse({"detail": f"body over {settings.max_body_bytes} bytes"}, status_code=413)
    with structlog.contextvars.bound_contextvars(
        correlation_id=request.headers.get("x-correlation-id", ""), path=request.url.path
    ):
        return await call_next(request)


def _answer(decision: Decision) -> JSONResponse:
    if decision.outcome == "gone":
        raise HTTPException(status.HTTP_410_GONE, f"article {decision.article_id} was retracted")
    body = Accepted(article_id=decision.article_id, revision=decision.revision, outcome=decision.outcome)
    code = status.HTTP_200_OK if decision.outcome == "duplicate" else status.HTTP_202_ACCEPTED
    return JSONResponse(body.model_dump(), status_code=code)


def _correlation(request: Request) -> str | None:
    return request.headers.get("x-correlation-id") or None


@app.post("/v1/articles", status_code=202, response_model=Accepted)
async def submit_article(article: ArticleIn, request: Request, _: Writer) -> JSONResponse:
    """Submit an article; a known one (same source id, URL or content) is a duplicate or a revision."""
    try:
        decision = await ingestor.submit(article, correlation_id=_correlation(request))
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    return _answer(decision)


@app.put("/v1/articles/{article_id}", status_code=202, response_model=Accepted)
async def revise_article(article_id: str, article: ArticleIn, request: Request, _: Writer) -> JSONResponse:
    """Publish a new revision of an existing article."""
    if article_id not in ingestor.registry.by_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no article {article_id}")
    try:
        decision = await ingestor.submit(article, article_id=article_id, correlation_id=_correlation(request))
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    return _answer(decision)


@app.delete("/v1/articles/{article_id}", status_code=202, response_model=Accepted)
async def retract_article(
    article_id: str, request: Request, _: Writer, retraction: Retraction | None = None
) -> JSONResponse:
    """Retract an article: a retraction event, never a silent delete."""
    decision = await ingestor.retract(
        article_id, retraction.reason if retraction else "", correlation_id=_correlation(request)
    )
    if decision is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no article {article_id}")
    return _answer(decision)


@app.get("/healthz", response_class=PlainTextResponse)
async def healthz() -> str:
    return "ok\n"


@app.get("/readyz", response_class=PlainTextResponse)
async def readyz() -> PlainTextResponse:
    ok = ingestor.ready and await broker.ping(timeout=2.0)
    return PlainTextResponse("ok\n" if ok else "not ready\n", status_code=200 if ok else 503)
