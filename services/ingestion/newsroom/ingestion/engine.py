"""Ingestion's group-commit engine: the :class:`Ingestor` decides submissions against the article
registry and publishes their events, under claims that serialise deciders across replicas.

The registry lives in a :class:`~newsroom.ingestion.registry.RegistryStore` that every replica
shares (Redis). A decision claims the keys the submission could match (its source id, canonical URL
and content hash, the article id of a revision or retraction, then every article they reach), reads
what the store knows of them, decides with the rules of :class:`~newsroom.ingestion.domain.ArticleRegistry`,
publishes, writes the events through to the store and releases the claims. No broker is built here:
it is given a :class:`~newsroom.common.messaging.Publisher`.

Over ~400 lines for a reason: deciding under claims and keeping the registry it decides against
ready (start, rebuild, heal, watch) are one state (``ready``, the healing task) that both sides
change; split in two modules they would reach into each other's private parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TypeVar

import structlog
from redis.exceptions import RedisError

from newsroom.common.events import new_envelope
from newsroom.common.messaging import Publisher
from newsroom.common.reading import read_topic
from newsroom.common.records import Record
from newsroom.common.settings import Settings
from newsroom.common.topics import ARTICLES
from newsroom.ingestion.domain import ArticleIn, ArticleRegistry, Decision, Prepared, match_keys, prepare
from newsroom.ingestion.registry import IndexKey, RegistryStore, claim_name

SERVICE = "ingestion"
T = TypeVar("T")
log = structlog.get_logger(SERVICE)
REBUILDING = "the article registry is being rebuilt from the log"
STORE_WATCH_S = 1.0  # how often a running replica looks for its store's marker
FIRST_PAUSE_S, LONGEST_PAUSE_S = 0.005, 0.1  # between tries of a claim another decider holds


class Unavailable(RuntimeError):
    """Nothing was decided for the caller now; it may try again (a 503 with Retry-After)."""


class PublishFailed(Unavailable):
    """The broker did not acknowledge a publish; nothing was decided for the caller."""


class RegistryUnavailable(Unavailable):
    """The registry store is unreachable or being rebuilt, or another decider held the keys too long."""


class UnknownArticle(LookupError):
    """A revision of an article the registry does not know."""


@dataclass
class _Submission:
    article: ArticleIn
    article_id: str | None
    correlation_id: str | None
    future: asyncio.Future[Decision]
    prepared: Prepared | None = None


def _settle(future: asyncio.Future[Decision], outcome: Decision | BaseException) -> None:
    """Resolve a waiting request unless its client has already gone."""
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


Decide = Callable[[ArticleRegistry], list[tuple[Decision, str | None]]]


class Ingestor:
    """Decides under claims so that one article stays one and revisions stay monotonic across
    replicas, and publishes each event whole.

    A publish that fails releases the claims and writes nothing to the store, so a retry decides
    afresh. A store that lost its marker (flushed) is rebuilt from the articles topic in the
    background; meanwhile nothing is decided and the service is not ready.
    """

    def __init__(
        self, publisher: Publisher, store: RegistryStore, *, settings: Settings | None = None
    ) -> None:
        """``settings`` give the request deadline and the log to rebuild from."""
        self.publisher = publisher
        self.store = store
        self.settings = settings or Settings()
        self.lock = asyncio.Lock()
        self._waiting: list[_Submission] = []
        self._committer: asyncio.Task[None] | None = None
        self.ready = False
        self.why_not = REBUILDING  # why not ready, while not
        self._healing: asyncio.Task[None] | None = None
        self.gate: Callable[[], str | None] | None = None  # what keeps publishing back now, if anything

    @property
    def deadline(self) -> float:
        return self.settings.request_deadline_seconds

    @property
    def claim_ms(self) -> int:
        """How long a claim lives: past the longest a holder can take to publish, then it expires."""
        return int((self.deadline + self.publisher.timeout) * 1000)

    # ------------------------------------------------------------------ readiness and rebuilding

    async def start(self) -> None:
        """Ready at once if the store holds the log's projection; else rebuild it in the background."""
        try:
            if await self.store.current():
                self.ready = True
                return
        except (RedisError, OSError) as exc:
            self.why_not = f"the article registry store is unreachable: {exc}"
        self._heal_soon()

    async def rebuild(self, settings: Settings | None = None) -> int:
        """Fold the whole articles topic into the store, then mark it current; returns the events read.
        Records with an unreadable key or header (what enrichment parks) never became articles."""
        settings = settings or self.settings
        count = 0
        async for batch in read_topic(settings, ARTICLES.name, required=True):  # a missing log is no registry
            records = [Record.from_consumer_record(rec) for rec in batch]
            await self.project(records)
            count += sum(1 for r in records if r.envelope is not None)
        await self.store.mark_current()
        return count

    async def project(self, records: list[Record]) -> None:
        """Apply the articles topic's decodable records to the store (the ``ingestion-registry``
        consumer's work, and the rebuild's); applying one twice changes nothing."""
        skipped = [r for r in records if r.envelope is None]
        for rec in skipped:
            log.warning("unreadable article event skipped", offset=rec.offset, partition=rec.partition)
        await self.store.apply([r.envelope.data for r in records if r.envelope is not None])

    def _heal_soon(self, *, forget: bool = False) -> None:
        self.ready = False
        if self._healing is None or self._healing.done():
            self._healing = asyncio.create_task(self._heal(forget=forget))

    async def _heal(self, *, forget: bool = False) -> None:
        """Until ready: rebuild the store from the log unless another replica did (its marker is back);
        with ``forget``, what the store knew is dropped first (the log was lost)."""
        pause = 0.2
        while not self.ready:
            try:
                if forget:
                    await self.store.clear()
                    forget = False
                if not await self.store.current():
                    self.why_not = REBUILDING
                    count = await self.rebuild()
                    log.info("article registry rebuilt from the log", events=count)
                self.ready = True
            except Exception as exc:  # the store or the broker away: try again later
                self.why_not = f"the article registry cannot be rebuilt yet: {type(exc).__name__}: {exc}"
                log.warning("registry not rebuilt yet", error=str(exc), retry_in_s=pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)

    async def problem(self) -> str | None:
        """Why the registry cannot be decided against now (for ``/readyz``), or None."""
        if not self.ready:
            return self.why_not
        try:
            current = await self.store.current()
        except (RedisError, OSError) as exc:
            return f"the article registry store is unreachable: {exc}"
        if not current:
            self._heal_soon()
            return REBUILDING
        return None

    async def watch(self, interval: float = STORE_WATCH_S) -> None:
        """Look at the store every ``interval`` seconds: one emptied (flushed, replaced) is rebuilt
        then, not when a request or a probe comes."""
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(RedisError, OSError):  # unreachable: a request or probe says so
                if self.ready and not await self.store.current():
                    log.warning("the article registry store lost its marker: rebuilding it from the log")
                    self._heal_soon()

    def log_lost(self) -> None:
        """The broker lost the articles topic (see :class:`~newsroom.common.health.LogWatch`): the registry
        knows articles the log no longer has, so it is rebuilt from what the log holds now."""
        self._heal_soon(forget=True)

    async def close(self) -> None:
        """Stop healing (at shutdown)."""
        if self._healing is not None:
            self._healing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._healing

    # ------------------------------------------------------------------ deciding under claims

    async def _decided(self, keys: Collection[IndexKey], ids: Collection[str], decide: Decide) -> None:
        """Claim ``keys`` and ``ids`` (and the articles they reach), run ``decide`` on what the store
        knows of them, publish its events, write them through, release the claims."""
        problem = self.gate() if self.gate is not None else None
        if problem is not None:
            raise PublishFailed(f"not publishing: {problem}")
        if not self.ready:
            raise RegistryUnavailable(self.why_not)
        token, held = uuid.uuid4().hex, set[str]()
        try:
            try:
                view = await self._claim_and_read(set(keys), set(ids), token, held)
            except (RedisError, OSError) as exc:
                raise RegistryUnavailable(f"the article registry store is unreachable: {exc}") from exc
            decided = decide(view)
            await self._publish_each(decided)
            events = [d.event for d, _ in decided if d.event is not None]
            try:
                await self.store.apply(events)  # the log has them: the store is never ahead of it
            except (RedisError, OSError):  # the ingestion-registry consumer projects them
                log.warning("write-through to the registry failed", events=len(events), exc_info=True)
        finally:
            with contextlib.suppress(RedisError, OSError):  # else they expire
                await self.store.release(sorted(held), token)

    async def _claim_and_read(
        self, keys: set[IndexKey], ids: set[str], token: str, held: set[str]
    ) -> ArticleRegistry:
        """The registry as the store knows it under claims on ``keys``, ``ids`` and every article they
        reach; all or none claimed each try, and nothing held between tries (so no two deciders wait
        on each other). RegistryUnavailable once the request deadline passed."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + self.deadline, FIRST_PAUSE_S
        while True:
            wanted = {claim_name(kind, value) for kind, value in keys} | {claim_name("id", i) for i in ids}
            new = sorted(wanted - held)
            if not new or await self.store.claim(new, token, self.claim_ms):
                held |= wanted
                view, current = await self.store.read(keys, ids)
                if not current:
                    self._heal_soon()
                    raise RegistryUnavailable(REBUILDING)
                if set(view.by_id) <= ids:
                    return view
                ids = ids | set(view.by_id)  # claim the articles reached, then read them again
                continue
            await self.store.release(sorted(held), token)
            held.clear()
            if loop.time() + pause > deadline:
                raise RegistryUnavailable(f"another replica held the article's keys for {self.deadline:g} s")
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not a secret
            pause = min(pause * 2, LONGEST_PAUSE_S)

    async def _publish_each(self, decisions: list[tuple[Decision, str | None]]) -> None:
        """Publish the decisions' events as one burst, each with its own request's correlation id."""
        items = [
            (ARTICLES, d.article_id, new_envelope(d.event, producer=SERVICE, correlation_id=correlation_id))
            for d, correlation_id in decisions
            if d.event is not None
        ]
        try:
            await self.publisher.publish(items)
        except Exception as exc:
            log.exception("publishing article events failed", events=len(items))
            why = str(exc) or f"no acknowledgement within {self.publisher.timeout:g} s"
            raise PublishFailed(f"the broker did not acknowledge the article events: {why}") from exc

    async def _within_deadline(self, outcome: Awaitable[T]) -> T:
        """``outcome``, or PublishFailed once the request deadline passed (the work goes on: whether it
        reached the log, a retry finds out, as a duplicate)."""
        try:
            return await asyncio.wait_for(asyncio.shield(outcome), self.deadline)
        except TimeoutError as exc:
            raise PublishFailed(f"no answer from the broker within {self.deadline:g} s") from exc

    # ------------------------------------------------------------------ the three ways in

    async def submit(
        self, article: ArticleIn, *, article_id: str | None = None, correlation_id: str | None = None
    ) -> Decision:
        """Decide and publish one submission (a revision of ``article_id`` if given; UnknownArticle
        if the registry does not know it).

        Group commit: submissions that arrive while a burst is being published wait for the
        next one together, each decided in arrival order, so concurrent clients share one
        produce round trip (and one claim) instead of queueing for a round trip each.
        """
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Submission(article, article_id, correlation_id, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting())
        return await self._within_deadline(future)

    async def _commit_waiting(self) -> None:
        async with self.lock:
            while self._waiting:
                group, self._waiting = self._waiting, []
                await self._commit(group)

    async def _commit(self, group: list[_Submission]) -> None:
        keys: set[IndexKey] = set()
        for item in group:
            try:
                item.prepared = prepare(item.article)
            except ValueError as exc:
                _settle(item.future, exc)
                continue
            keys.update(
                match_keys(
                    item.article.source, item.article.id, item.prepared.url, item.prepared.content_hash
                )
            )
        group = [item for item in group if item.prepared is not None]
        decided: list[tuple[_Submission, Decision]] = []

        def decide(view: ArticleRegistry) -> list[tuple[Decision, str | None]]:
            decided.clear()
            for item in group:
                if item.article_id and item.article_id not in view.by_id:
                    _settle(item.future, UnknownArticle(item.article_id))
                    continue
                try:
                    decision = view.submit(item.article, article_id=item.article_id, prepared=item.prepared)
                except ValueError as exc:
                    _settle(item.future, exc)
                    continue
                if decision.event is not None:
                    view.apply(decision.event)  # a later item of the burst sees it
                decided.append((item, decision))
            return [(d, item.correlation_id) for item, d in decided]

        try:
            if group:
                await self._decided(keys, {i.article_id for i in group if i.article_id}, decide)
        except Exception as exc:  # Unavailable, or a bug: every waiting client hears of it
            for item in group:
                _settle(item.future, exc)
            if not isinstance(exc, Unavailable):
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
        all: if the burst fails the whole call fails and nothing is written to the registry.
        """
        prepared: list[Prepared | str] = []
        keys: set[IndexKey] = set()
        for item in articles:
            try:
                ready = item if isinstance(item, str) else prepare(item)
            except ValueError as exc:
                ready = str(exc)
            prepared.append(ready)
            if isinstance(item, ArticleIn) and isinstance(ready, Prepared):
                keys.update(match_keys(item.source, item.id, ready.url, ready.content_hash))
        results: list[Decision | str] = []

        def decide(view: ArticleRegistry) -> list[tuple[Decision, str | None]]:
            results.clear()
            for item, ready in zip(articles, prepared, strict=True):
                if isinstance(ready, str) or isinstance(item, str):  # refused while validating or preparing
                    results.append(ready if isinstance(ready, str) else str(item))
                    continue
                try:
                    decision = view.submit(item, prepared=ready)
                except ValueError as exc:
                    results.append(str(exc))
                    continue
                if decision.event is not None:
                    view.apply(decision.event)
                results.append(decision)
            return [(r, correlation_id) for r in results if isinstance(r, Decision)]

        async with self.lock:
            await self._decided(keys, (), decide)
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
        """Retract a known article (None for one the registry does not know)."""
        decision: list[Decision | None] = [None]

        def decide(view: ArticleRegistry) -> list[tuple[Decision, str | None]]:
            decision[0] = view.retract(article_id, reason)
            return [(decision[0], correlation_id)] if decision[0] is not None else []

        async with self.lock:
            await self._decided((), {article_id}, decide)
        return decision[0]
