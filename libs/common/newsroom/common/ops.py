"""What every service exposes to operators: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from prometheus_client import Counter, Histogram, make_asgi_app

EVENTS_PROCESSED = Counter(
    "newsroom_events_processed_total", "Events handled successfully", ["service", "type"]
)
EVENTS_FAILED = Counter("newsroom_events_failed_total", "Events that failed processing", ["service", "type"])
DEAD_LETTERS = Counter("newsroom_dead_letters_total", "Records sent to the dead-letter topic", ["service"])
BATCH_FALLBACKS = Counter(
    "newsroom_batch_fallbacks_total",
    "Batches that failed as a whole and were handled record by record",
    ["service"],
)
BATCH_SECONDS = Histogram(
    "newsroom_batch_seconds",
    "Time to process one consumed batch",
    ["service"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


Check = Callable[[], Awaitable[str | None]]
"""A probe: None when all is well, else what is wrong (said in the answer's body)."""


def plain_response(check: Check, ok: bytes = b"ok\n") -> ASGIApp:
    """A tiny ASGI endpoint answering 200 when ``check`` finds nothing wrong, 503 with what it found."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            problem = await check()
        except Exception as exc:  # a failing probe is the answer "not ready", never a traceback
            problem = f"the check failed: {type(exc).__name__}: {exc}"
        status, body = (200, ok) if problem is None else (503, f"not ready: {problem}\n".encode())
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": body})

    return app


async def _alive() -> str | None:
    return None


def ops_routes(ready: Check, alive: Check = _alive) -> Sequence[tuple[str, ASGIApp]]:
    """``/healthz`` (``alive``), ``/readyz`` (``ready``) and ``/metrics`` as (path, ASGI app) pairs."""
    return [
        ("/healthz", plain_response(alive)),
        ("/readyz", plain_response(ready)),
        ("/metrics", make_asgi_app()),
    ]
