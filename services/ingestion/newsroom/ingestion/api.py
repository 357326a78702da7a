"""Ingestion's HTTP layer: the ``/v1`` routes, their request and answer models, the bearer-key check,
the request-body limit and the 422 that names each invalid field.

Every submission goes through :func:`~newsroom.ingestion.domain.parse_article` and is decided by the
:class:`~newsroom.ingestion.engine.Ingestor` given to :func:`router`; nothing here holds state.

No ``from __future__ import annotations`` here: FastAPI reads a route's annotations when it is
declared, and the routes' dependencies are closures over the router's parts.
"""

import hmac
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsroom.common.settings import Settings
from newsroom.ingestion.domain import (
    ArticleIn,
    Decision,
    FieldRefused,
    Text,
    field_errors,
    parse_article,
    validation_reason,
)
from newsroom.ingestion.engine import Ingestor, Unavailable, UnknownArticle

MAX_BATCH = 500
RETRY_AFTER = {"Retry-After": "5"}  # a 503's: the broker or the registry store away, or a rebuild
MAX_CORRELATION_ID = 200  # characters kept of a client's x-correlation-id (it travels in every event)
# the body is read by the article dependency, so the documentation is told its shape
ARTICLE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ArticleIn.model_json_schema()}},
    }
}
bearer = HTTPBearer(auto_error=False)


class Accepted(BaseModel):
    article_id: str
    revision: int
    outcome: str
    url: str = Field(description="the article's path on the site")


class Retraction(BaseModel):
    reason: Text = Field(default="", max_length=1000)


class BatchIn(BaseModel):
    """Several submissions in one request; each is validated and decided on its own."""

    articles: list[Any] = Field(
        min_length=1, max_length=MAX_BATCH, description="article objects; any other item is rejected alone"
    )


class BatchItem(BaseModel):
    """The outcome of one batch item: ``accepted``, ``revised``, ``duplicate``, ``gone`` or ``rejected``."""

    index: int
    outcome: str
    article_id: str | None = None
    revision: int | None = None
    reason: str | None = None


class BatchOut(BaseModel):
    results: list[BatchItem]


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse(raw: object, settings: Settings) -> ArticleIn:
    """:func:`parse_article` against the clock and the configured tolerance for future times."""
    return parse_article(
        raw, now=utc_now(), max_future=timedelta(seconds=settings.max_future_publish_seconds)
    )


def allowed_writer(credentials: HTTPAuthorizationCredentials | None, settings: Settings) -> str:
    """The presented key, if it is one of ``settings.api_keys`` (compared in constant time); else 401/403."""
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


def _correlation(request: Request) -> str | None:
    return request.headers.get("x-correlation-id", "")[:MAX_CORRELATION_ID] or None


def _answer(decision: Decision) -> JSONResponse:
    if decision.outcome == "gone":
        raise HTTPException(status.HTTP_410_GONE, f"article {decision.article_id} was retracted")
    body = Accepted(
        article_id=decision.article_id,
        revision=decision.revision,
        outcome=decision.outcome,
        url=decision.path,
    )
    code = status.HTTP_200_OK if decision.outcome == "duplicate" else status.HTTP_202_ACCEPTED
    return JSONResponse(body.model_dump(), status_code=code)


async def _published(outcome: Awaitable[Any]) -> Any:
    """``outcome``'s result; a publish that failed, or a registry not reachable now, is a 503 with
    ``Retry-After``."""
    try:
        return await outcome
    except Unavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers=RETRY_AFTER) from exc


async def _decided(outcome: Awaitable[Decision]) -> JSONResponse:
    """The answer to a single submission or revision; a field the registry refuses is a 422 naming it."""
    try:
        decision: Decision = await _published(outcome)
    except FieldRefused as exc:
        error = {"type": "value_error", "loc": ("body", exc.field), "msg": exc.message}
        raise RequestValidationError([error]) from exc
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    return _answer(decision)


def router(ingestor: Ingestor, settings: Settings) -> APIRouter:
    """The ``/v1`` routes: submissions decided by ``ingestor``, writes allowed to ``settings.api_keys``."""
    router = APIRouter()

    async def article_body(request: Request) -> ArticleIn:
        """The request's article, through :func:`parse_article` like every batch item."""
        try:
            raw = await request.json()
        except ClientDisconnect as exc:  # gone before its body arrived (BodyLimit refused it, or it left)
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, "the client left before its body arrived"
            ) from exc
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested beyond reason
            error = {"type": "json_invalid", "loc": ("body",), "msg": "the body is not a JSON document"}
            raise RequestValidationError([error]) from exc
        try:
            return parse(raw, settings)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from exc

    def require_writer(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        """Accept a request only with a configured API key."""
        return allowed_writer(credentials, settings)

    @router.post("/v1/articles", status_code=202, response_model=Accepted, openapi_extra=ARTICLE_BODY)
    async def submit_article(
        article: Annotated[ArticleIn, Depends(article_body)],
        request: Request,
        _: Annotated[str, Depends(require_writer)],
    ) -> JSONResponse:
        """Submit an article; a known one (same source id, URL or content) is a duplicate or a revision."""
        return await _decided(ingestor.submit(article, correlation_id=_correlation(request)))

    @router.post("/v1/articles:batch", response_model=BatchOut)
    async def submit_batch(
        batch: BatchIn, request: Request, _: Annotated[str, Depends(require_writer)]
    ) -> BatchOut:
        """Submit up to 500 articles at once; each item is accepted, revised, a duplicate, gone or rejected.

        The answer is 200 with one result per item, in order. An invalid item is rejected with
        its field errors without affecting the others; nothing is published for it.
        """
        items: list[ArticleIn | str] = []
        for raw in batch.articles:
            try:
                items.append(parse(raw, settings))
            except ValidationError as exc:
                items.append(validation_reason(exc))
        outcomes: list[Decision | str] = await _published(
            ingestor.submit_many(items, correlation_id=_correlation(request))
        )
        results = [
            BatchItem(index=i, outcome="rejected", reason=o)
            if isinstance(o, str)
            else BatchItem(index=i, outcome=o.outcome, article_id=o.article_id, revision=o.revision)
            for i, o in enumerate(outcomes)
        ]
        return BatchOut(results=results)

    @router.put(
        "/v1/articles/{article_id}", status_code=202, response_model=Accepted, openapi_extra=ARTICLE_BODY
    )
    async def revise_article(
        article_id: str,
        article: Annotated[ArticleIn, Depends(article_body)],
        request: Request,
        _: Annotated[str, Depends(require_writer)],
    ) -> JSONResponse:
        """Publish a new revision of an existing article."""
        try:
            return await _decided(
                ingestor.submit(article, article_id=article_id, correlation_id=_correlation(request))
            )
        except UnknownArticle as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no article {article_id}") from exc

    @router.delete("/v1/articles/{article_id}", status_code=202, response_model=Accepted)
    async def retract_article(
        article_id: str,
        request: Request,
        _: Annotated[str, Depends(require_writer)],
        retraction: Retraction | None = None,
    ) -> JSONResponse:
        """Retract an article: a retraction event, never a silent delete."""
        decision: Decision | None = await _published(
            ingestor.retract(
                article_id, retraction.reason if retraction else "", correlation_id=_correlation(request)
            )
        )
        if decision is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no article {article_id}")
        return _answer(decision)

    return router


async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each invalid field, without echoing the input (NaN or a lone surrogate would not encode)."""
    return JSONResponse({"detail": field_errors(exc.errors())}, status_code=422)


async def bind_request(request: Request, call_next: Any) -> Any:
    """Every log line of a request carries its correlation id and path."""
    with structlog.contextvars.bound_contextvars(
        correlation_id=_correlation(request) or "", path=request.url.path
    ):
        return await call_next(request)


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413: by their declared length before reading
    them, and a body sent in chunks (with no length) as soon as it has gone over, not once it is in.

    Then the app is told the client went away, and what it answers to that is dropped.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.refusal = JSONResponse({"detail": f"body over {limit} bytes"}, status_code=413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self.refusal(scope, receive, send)
            return
        received = 0
        answered = refused = False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request" and not answered:
                received += len(message.get("body", b""))
                if received > self.limit:
                    await self.refusal(scope, receive, send)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal answered
            if refused:
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, watched)


def install(app: FastAPI, ingestor: Ingestor, settings: Settings) -> None:
    """Give ``app`` the API: its routes, field-naming 422s, request-bound logs and the body limit."""
    app.exception_handler(RequestValidationError)(invalid_request)
    app.middleware("http")(bind_request)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)  # added last: outermost, as before
    app.include_router(router(ingestor, settings))
