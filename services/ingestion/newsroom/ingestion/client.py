"""A client of the ingestion API's batch endpoint, shared by ``newsroom feeds`` and ``newsroom ingest``.

The commands never write to the articles topic themselves: the ingestion service is its only
writer and the only holder of the de-duplication registry, so they submit through its API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import orjson

from newsroom.common.settings import Settings

BATCH_ITEMS = 200
RETRIES = 4


@dataclass(frozen=True)
class Candidate:
    """One article found in a feed or a file (``article`` in API shape), or why none could be read."""

    origin: str
    article: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one candidate: ``accepted``, ``revised``, ``duplicate``, ``gone`` or ``rejected``."""

    origin: str
    outcome: str
    article_id: str | None = None
    revision: int | None = None
    reason: str | None = None


class ApiError(RuntimeError):
    """The API refused the whole request (bad key, unreachable, still failing after retries)."""


def api_base(settings: Settings) -> str:
    """The ingestion API's address from the settings (``NEWSROOM_HOST``/``NEWSROOM_API_PORT``)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104 - a bind-all host
    return f"http://{host}:{settings.api_port}"


def api_key(settings: Settings) -> str:
    """The first configured write key, or the development key ``newsroom dev`` falls back to."""
    return settings.api_keys[0].get_secret_value() if settings.api_keys else "dev-key"


class IngestionClient:
    """Submits candidates in batches bounded by item count and request size, retrying transient failures."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        max_bytes: int,
        batch_items: int = BATCH_ITEMS,
        retries: int = RETRIES,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_bytes = max_bytes
        self.batch_items = batch_items
        self.retries = retries
        self.http = httpx.AsyncClient(
            timeout=timeout, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        )

    async def __aenter__(self) -> IngestionClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.http.aclose()

    async def submit(
        self,
        candidates: Sequence[Candidate],
        *,
        progress: Callable[[int], None] | None = None,
        correlation_id: str | None = None,
    ) -> list[Outcome]:
        """Submit every readable candidate; the outcomes come back in the candidates' order."""
        outcomes: list[Outcome] = []
        for chunk in self._chunks(candidates):
            outcomes.extend(await self._submit_chunk(chunk, correlation_id))
            if progress:
                progress(len(chunk))
        return outcomes

    def _chunks(self, candidates: Sequence[Candidate]) -> Iterator[list[Candidate]]:
        """Batches of at most ``batch_items`` whose JSON stays under the body limit (with headroom)."""
        budget = int(self.max_bytes * 0.9)
        chunk: list[Candidate] = []
        size = 0
        for candidate in candidates:
            item = len(orjson.dumps(candidate.article)) + 1 if candidate.article is not None else 0
            if chunk and (len(chunk) >= self.batch_items or size + item > budget):
                yield chunk
                chunk, size = [], 0
            chunk.append(candidate)
            size += item
        if chunk:
            yield chunk

    async def _submit_chunk(self, chunk: list[Candidate], correlation_id: str | None) -> list[Outcome]:
        sendable = [c for c in chunk if c.article is not None]
        answers: dict[int, Outcome] = {}
        if sendable:
            results = await self._post([c.article for c in sendable if c.article is not None], correlation_id)
            if results is None:  # too large as one request: halve it until each piece fits
                if len(sendable) == 1:
                    answers[id(sendable[0])] = Outcome(
                        sendable[0].origin,
                        "rejected",
                        reason=f"article over the API's {self.max_bytes}-byte limit",
                    )
                else:
                    half = len(sendable) // 2
                    for part in (sendable[:half], sendable[half:]):
                        for candidate, outcome in zip(
                            part, await self._submit_chunk(part, correlation_id), strict=True
                        ):
                            answers[id(candidate)] = outcome
            else:
                for candidate, result in zip(sendable, results, strict=True):
                    answers[id(candidate)] = Outcome(
                        candidate.origin,
                        result["outcome"],
                        result.get("article_id"),
                        result.get("revision"),
                        result.get("reason"),
                    )
        return [
            answers[id(c)] if c.article is not None else Outcome(c.origin, "rejected", reason=c.error)
            for c in chunk
        ]

    async def _post(
        self, articles: list[dict[str, Any]], correlation_id: str | None
    ) -> list[dict[str, Any]] | None:
        """POST one batch; ``None`` means 413. Connection errors and 5xx are retried with backoff."""
        body = orjson.dumps({"articles": articles})
        headers = {"X-Correlation-Id": correlation_id} if correlation_id else {}
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(8.0, 0.5 * 2**attempt))
            try:
                response = await self.http.post(
                    f"{self.base_url}/v1/articles:batch", content=body, headers=headers
                )
            except httpx.TransportError as exc:
                last = f"ingestion API unreachable at {self.base_url}: {exc!r}"
                continue
            if response.status_code == 413:
                return None
            if response.status_code >= 500:
                last = f"ingestion API answered {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code != 200:
                raise ApiError(f"ingestion API answered {response.status_code}: {response.text[:300]}")
            results: list[dict[str, Any]] = response.json()["results"]
            return results
        raise ApiError(last)
