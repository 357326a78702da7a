"""Ingestion's group-commit engine: the :class:`Ingestor` decides submissions against the article
registry and publishes their events, serialised so revisions stay monotonic.

It holds the registry (a projection of the articles topic, rebuilt from it at start-up and after a
failed publish) and the submissions waiting for the next burst. No broker is built here: it is
given a :class:`~newsroom.common.messaging.Publisher`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from newsroom.common.events import decode, new_envelope, unreadable_key_or_headers
from newsroom.common.messaging import Publisher
from newsroom.common.reading import read_topic
from newsroom.common.settings import Settings
from newsroom.common.topics import ARTICLES
from newsroom.ingestion.domain import ArticleIn, ArticleRegistry, Decision

SERVICE = "ingestion"
T = TypeVar("T")
log = structlog.get_logger(SERVICE)


class PublishFailed(RuntimeError):
    """The broker did not acknowledge a publish; nothing was decided for the caller."""


@dataclass
class _Submission:
    article: ArticleIn
    article_id: str | None
    correlation_id: str | None
    future: asyncio.Future[Decision]


def _settle(future: asyncio.Future[Decision], outcome: Decision | BaseException) -> None:
    """Resolve a waiting request unless its client has already gone."""
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class Ingestor:
    """Serialises decisions so revisions stay monotonic, and publishes each event whole.

    If the broker fails mid-publish the registry may no longer match the log, so it is marked
    stale and rebuilt from the topic before the next decision (a retried submission then
    finds whatever did reach the log, and is a duplicate rather than a second article).
    """

    def __init__(
        self,
        publisher: Publisher,
        *,
        settings: Settings | None = None,
        registry: ArticleRegistry | None = None,
    ) -> None:
        """``settings`` give the request deadline and the log to rebuild from (else :meth:`load`'s);
        a ``registry`` given is taken as loaded: decisions are made against it from the start."""
        self.publisher = publisher
        self.registry = registry if registry is not None else ArticleRegistry()
        self.lock = asyncio.Lock()
        self._waiting: list[_Submission] = []
        self._committer: asyncio.Task[None] | None = None
        self.ready = registry is not None
        self.settings = settings
        self._healing: asyncio.Task[None] | None = None
        self.gate: Callable[[], str | None] | None = None  # what keeps publishing back now, if anything

    async def load(self, settings: Settings) -> int:
        """Rebuild the registry from the articles topic."""
        self.settings = settings
        registry = ArticleRegistry()
        count = 0
        async for batch in read_topic(settings, ARTICLES.name, required=True):  # a missing log is no registry
            for rec in batch:
                try:
                    # what enrichment parks (an unreadable key or header) never became an article
                    if unreadable_key_or_headers(rec.key, rec.headers or ()) is not None:
                        raise ValueError("unreadable key or header")
                    registry.apply(decode(rec.value).data)
                    count += 1
                except ValueError:
                    log.warning(
                        "unreadable article event skipped", offset=rec.offset, partition=rec.partition
                    )
        self.registry = registry
        self.ready = True
        return count

    async def _resync(self) -> None:
        """Rebuild a stale registry (held under the lock) or refuse to decide.

        Also refused while the log watch sees the broker away or a topic missing: the embedded broker,
        back from a restart before the topics are created again, acknowledges a produce to a topic it
        does not have, and the record is gone (seen under make chaos). The watch's next good look
        (every 2 s) lets publishing go on.
        """
        problem = self.gate() if self.gate is not None else None
        if problem is not None:
            raise PublishFailed(f"not publishing: {problem}")
        if self.ready:
            return
        if self.settings is None:
            raise PublishFailed("the article registry was never loaded")
        try:
            await self.load(self.settings)
        except Exception as exc:  # the broker is still away: refuse rather than guess
            raise PublishFailed(f"cannot rebuild the article registry: {exc}") from exc
        log.info("article registry rebuilt after a failed publish", known_articles=len(self.registry.by_id))

    async def _publish(self, decisions: list[Decision], correlation_id: str | None) -> None:
        """Publish the decisions' events as one burst; on failure the registry goes stale."""
        await self._publish_each([(d, correlation_id) for d in decisions])

    async def _publish_each(self, decisions: list[tuple[Decision, str | None]]) -> None:
        """Like :meth:`_publish`, each event with its own request's correlation id."""
        items = [
            (ARTICLES, d.article_id, new_envelope(d.event, producer=SERVICE, correlation_id=correlation_id))
            for d, correlation_id in decisions
            if d.event is not None
        ]
        try:
            await self.publisher.publish(items)
        except Exception as exc:
            self.ready = False
            if self._healing is None or self._healing.done():
                self._healing = asyncio.create_task(self._heal())
            log.exception("publishing article events failed", events=len(items))
            why = str(exc) or f"no acknowledgement within {self.publisher.timeout:g} s"
            raise PublishFailed(f"the broker did not acknowledge the article events: {why}") from exc

    async def _heal(self, first_pause: float = 1.0, longest_pause: float = 30.0) -> None:
        """Rebuild a stale registry in the background until it is ready again, so that readiness comes
        back without a request (a service that is not ready gets none)."""
        pause = first_pause
        while not self.ready:
            await asyncio.sleep(pause)
            async with self.lock:
                try:
                    await self._resync()
                except PublishFailed as exc:  # the broker is still away: try again later
                    log.warning("registry not rebuilt yet", error=str(exc), retry_in_s=pause)
            pause = min(pause * 2, longest_pause)

    def log_lost(self) -> None:
        """The broker lost the articles topic (see :class:`~newsroom.common.health.LogWatch`): the registry
        knows articles the log no longer has, so it is rebuilt from what the log holds now."""
        self.ready = False
        if self._healing is None or self._healing.done():
            self._healing = asyncio.create_task(self._heal())

    async def close(self) -> None:
        """Stop healing (at shutdown)."""
        if self._healing is not None:
            self._healing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._healing

    async def submit(
        self, article: ArticleIn, *, article_id: str | None = None, correlation_id: str | None = None
    ) -> Decision:
        """Decide and publish one submission (a revision of ``article_id`` if given).

        Group commit: submissions that arrive while a burst is being published wait for the
        next one together, each decided in arrival order, so concurrent clients share one
        produce round trip instead of queueing for a round trip each.
        """
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Submission(article, article_id, correlation_id, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting())
        return await self._within_deadline(future)

    async def _within_deadline(self, outcome: Awaitable[T]) -> T:
        """``outcome``, or PublishFailed once the request deadline passed (the work goes on: whether it
        reached the log, a retry finds out, as a duplicate)."""
        deadline = self.settings.request_deadline_seconds if self.settings else 10.0
        try:
            return await asyncio.wait_for(asyncio.shield(outcome), deadline)
        except TimeoutError as exc:
            raise PublishFailed(f"no answer from the broker within {deadline:g} s") from exc

    async def _commit_waiting(self) -> None:
        async with self.lock:
            while self._waiting:
                group, self._waiting = self._waiting, []
                await self._commit(group)

    async def _commit(self, group: list[_Submission]) -> None:
        decided: list[tuple[_Submission, Decision]] = []
        try:
            await self._resync()
            for item in group:
                try:
                    decision = self.registry.submit(item.article, article_id=item.article_id)
                except ValueError as exc:
                    _settle(item.future, exc)
                    continue
                if decision.event is not None:
                    self.registry.apply(decision.event)  # undone by the rebuild if the burst fails
                decided.append((item, decision))
            await self._publish_each([(d, item.correlation_id) for item, d in decided])
        except Exception as exc:  # PublishFailed, or a bug: every waiting client hears of it
            for item in group:
                _settle(item.future, exc)
            if not isinstance(exc, PublishFailed):
                raise
            return
        for item, decision in decided:
            _settle(item.future, decision)

    async def submit_many(
        self, articles: list[ArticleIn | str], correlation_id: str | None = None
    ) -> list[Decision | str]:
        """:meth:`decide_many` within the request deadline."""
        return await self._within_deadline(asyncio.ensure_future(self.decide_many(articles, correlation_id)))

    async def decide_many(
        self, articles: list[ArticleIn | str], correlation_id: str | None = None
    ) -> list[Decision | str]:
        """Decide a batch in order (a later item sees the earlier ones) and publish it as one burst.

        A ``str`` item is a rejection reason found while validating; it passes through, as does
        the reason an article is refused here. Each article's event is published whole or not at
        all: if the burst fails the whole call fails and the registry is rebuilt from the log.
        """
        async with self.lock:
            await self._resync()
            results: list[Decision | str] = []
            for item in articles:
                if isinstance(item, str):
                    results.append(item)
                    continue
                try:
                    decision = self.registry.submit(item)
                except ValueError as exc:
                    results.append(str(exc))
                    continue
                if decision.event is not None:
                    self.registry.apply(decision.event)  # undone by the rebuild if the burst fails
                results.append(decision)
            await self._publish([r for r in results if isinstance(r, Decision)], correlation_id)
            return results

    async def retract(
        self, article_id: str, reason: str, correlation_id: str | None = None
    ) -> Decision | None:
        """:meth:`decide_retraction` within the request deadline."""
        return await self._within_deadline(
            asyncio.ensure_future(self.decide_retraction(article_id, reason, correlation_id))
        )

    async def decide_retraction(
        self, article_id: str, reason: str, correlation_id: str | None = None
    ) -> Decision | None:
        async with self.lock:
            await self._resync()
            decision = self.registry.retract(article_id, reason)
            if decision is None:
                return None
            await self._publish([decision], correlation_id)
            if decision.event is not None:
                self.registry.apply(decision.event)
            return decision
