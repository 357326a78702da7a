"""The site's namespaces over their lifetime: built from the log blue/green, switched to, retired.

``rebuild_fragments`` names a fresh namespace ``nr:<template version>:<UTC timestamp>``, points the
shadow pointer at it (with a TTL it keeps refreshing, so the live renderer writes every new event
there too), renders the whole log into it with the renderer's own
:class:`~newsroom.rendering.writer.FragmentWriter` (quote snapshots first, then the enriched topic:
this process and worker processes take its partitions and apply each one's events in log order, a
chunk per atomic write, see :mod:`newsroom.rendering.replay`), switches the active pointer atomically,
and finally gives the old namespace's keys a TTL so in-flight readers finish. Until the switch the
site keeps serving the old namespace: an interrupted rebuild changes nothing a reader sees, and its
partial namespace expires. On an empty or wiped store no namespace is served until the switch.

``retire_version`` lets an old template version's keys go after a version bump. The ``newsroom
rebuild`` command (``newsroom.cli.rebuild``) drives both; the renderer runs a rebuild when its store
lost the site (:mod:`newsroom.rendering.healing`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import redis.asyncio as aioredis
import structlog
from aiokafka import TopicPartition
from redis.exceptions import RedisError

from newsroom.common.admin import partitions_of, plain_consumer
from newsroom.common.errors import Refused
from newsroom.common.events import QuoteUpdated
from newsroom.common.reading import decoded_payloads, log_ends, read_topic, running, spans
from newsroom.common.redis_client import connect
from newsroom.common.settings import Settings
from newsroom.common.store import Keys, NamespaceRetired, Pointers, SwitchRefused, namespace_for
from newsroom.common.tasks import in_background
from newsroom.common.topics import ENRICHED, SNAPSHOTS
from newsroom.rendering.domain import Renderer
from newsroom.rendering.members import apply_as_member, await_members, group_of, plan_key, write_plan
from newsroom.rendering.replay import apply_articles
from newsroom.rendering.workers import default_workers, in_workers
from newsroom.rendering.writer import FragmentWriter

SHADOW_TTL_S = 30
log = structlog.get_logger(__name__)
# Events per atomic write. Each chunk's MULTI/EXEC holds Redis for ~14 µs per event, and the site's cache
# misses wait behind it: 200 keeps that near 3 ms (5 ms at 500) at the same rebuild throughput.
CHUNK = 200
EXPIRE_OLD_S = 300


class RebuildRefused(Refused):
    """A rebuild or retirement that did not go ahead (or did not switch), and why; nothing a reader sees
    changed."""


class ProgressLike(Protocol):
    """What a rebuild tells of its progress (rich's ``Progress`` is one)."""

    def add_task(self, description: str, *, total: float | None = ...) -> Any: ...

    def advance(self, task_id: Any, advance: float = ...) -> None: ...

    def update(self, task_id: Any, *, completed: float | None = ...) -> None: ...


class Quiet:
    """Progress told to no one."""

    def add_task(self, description: str, *, total: float | None = None) -> int:
        return 0

    def advance(self, task_id: Any, advance: float = 1) -> None:
        pass

    def update(self, task_id: Any, *, completed: float | None = None) -> None:
        pass


async def partition_counts(settings: Settings, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """Messages per partition of ``topics`` from start/end offsets."""
    async with running(plain_consumer(settings)) as consumer:
        found = await spans(consumer, partitions_of(consumer, topics))
    return {tp: span.approx_count for tp, span in found.items()}


def by_topic(counts: dict[TopicPartition, int], topics: Sequence[str]) -> dict[str, int]:
    """Per-partition counts summed per topic."""
    out = dict.fromkeys(topics, 0)
    for tp, n in counts.items():
        out[tp.topic] += n
    return out


async def approx_counts(settings: Settings, topics: Sequence[str]) -> dict[str, int]:
    """Messages per topic from start/end offsets."""
    return by_topic(await partition_counts(settings, topics), topics)


@dataclass
class FragmentSummary:
    """What a fragments rebuild did."""

    old_namespace: str
    new_namespace: str
    quotes: int = 0
    articles: int = 0
    skipped: int = 0
    retractions: int = 0
    undecodable: int = 0
    expired_old_keys: int = 0
    seconds: float = 0.0
    switched: bool = False
    planned: dict[str, int] = field(default_factory=dict)  # a dry run's: records per topic it would render

    @property
    def events(self) -> int:
        return self.quotes + self.articles + self.skipped + self.retractions


def new_namespace(template_version: str) -> str:
    """``nr:<template version>:<UTC timestamp>``: sorts by time; never collides with ``nr:<tv>``'s keys."""
    return f"nr:{template_version}:{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"


async def expire_namespace(redis: aioredis.Redis, namespace: str, seconds: int) -> int:
    """Give every key of ``namespace`` a TTL; returns how many keys it found."""
    found = 0
    batch: list[bytes] = []
    async for key in Keys(namespace).scan(redis):
        batch.append(key)
        if len(batch) >= 5000:
            found += await _expire(redis, batch, seconds)
            batch = []
    found += await _expire(redis, batch, seconds)
    return found


# EXPIRE of many keys in one call and one reply: a pipeline of one EXPIRE per key spent ~10 µs per key
# in redis-py. A namespace of 300,000 keys, found by SCAN among 600,000, took 3.5 s that way and 1.1 s so.
EXPIRE_SCRIPT = "for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[1]) end return #KEYS"


async def _expire(redis: aioredis.Redis, keys: list[bytes], seconds: int) -> int:
    if keys:
        await redis.eval(EXPIRE_SCRIPT, len(keys), *keys, seconds)
    return len(keys)


@contextlib.asynccontextmanager
async def shadow_pointer(redis: aioredis.Redis, pointers: Pointers, namespace: str) -> AsyncIterator[None]:
    """Hold the shadow pointer on ``namespace`` (refreshing its TTL) for the duration of the block."""
    if not await redis.set(pointers.shadow, namespace, ex=SHADOW_TTL_S, nx=True):
        other = await redis.get(pointers.shadow)
        raise RebuildRefused(
            f"another rebuild is running (shadow {other!r}); it expires within {SHADOW_TTL_S}s if it died"
        )

    async def refresh() -> None:
        while True:
            await asyncio.sleep(SHADOW_TTL_S / 3)
            try:
                if await redis.get(pointers.shadow) == namespace.encode():
                    await redis.expire(pointers.shadow, SHADOW_TTL_S)
            except RedisError as exc:  # keep trying: a lapsed pointer stops the rebuild's writes
                log.warning("refreshing the shadow pointer failed", error=repr(exc))

    try:
        async with in_background(refresh()):
            yield
    finally:
        if await redis.get(pointers.shadow) == namespace.encode():  # not switched: stop the double writes
            await redis.delete(pointers.shadow)


@contextlib.contextmanager
def _retired_is_fatal() -> Iterator[None]:
    """A rebuild whose namespace stopped being the shadow one ends with a message, not a traceback."""
    try:
        yield
    except NamespaceRetired as exc:
        raise RebuildRefused(
            f"{exc}: the shadow pointer no longer names it (another rebuild, or it lapsed); not switching"
        ) from exc
    except SwitchRefused as exc:
        raise RebuildRefused(str(exc)) from exc


async def render_log(
    settings: Settings,
    writer: Any,
    summary: FragmentSummary,
    progress: ProgressLike,
    chunk: int,
    workers: int,
    group: bool = False,
    members: int = 1,
    members_wait: float = 60.0,
) -> None:
    """Quote snapshots first, then the enriched articles, into ``writer``'s namespace: by this process and
    local workers, or (``group``) by every process that joins the rebuild's consumer group."""
    found = await partition_counts(settings, [SNAPSHOTS.name, ENRICHED.name])
    counts = by_topic(found, [SNAPSHOTS.name, ENRICHED.name])
    parts = sorted(tp.partition for tp in found if tp.topic == ENRICHED.name)
    if not parts:  # not an empty log: no log at all (another cluster?); switching would empty the site
        raise RebuildRefused(
            f"no topic {ENRICHED.name} on {settings.broker_url} (is NEWSROOM_BROKER_URL right?): "
            "nothing to rebuild the site from; not switching"
        )
    quotes_task = progress.add_task("quote snapshots", total=counts[SNAPSHOTS.name] or None)
    async for batch in read_topic(settings, SNAPSHOTS.name):
        snapshots: list[QuoteUpdated] = []
        for data in decoded_payloads(batch):
            if isinstance(data, QuoteUpdated):
                snapshots.append(data)
            else:
                summary.undecodable += 1
        if snapshots:
            await writer.quotes(snapshots)
        summary.quotes += len(snapshots)
        progress.advance(quotes_task, len(batch))

    articles_task = progress.add_task("enriched articles", total=counts[ENRICHED.name] or None)
    workers = max(1, min(workers, len(parts)))
    if group:  # shared by every process that joins (see members): the plan is the partitions' ends now
        async with running(plain_consumer(settings)) as consumer:
            ends = await log_ends(consumer, [TopicPartition(ENRICHED.name, p) for p in parts])
        plan = {tp.partition: end for tp, end in ends.items()}
        await write_plan(writer.redis, writer.namespace, plan)
        log.info("rebuild open to members", namespace=writer.namespace, group=group_of(writer.namespace),
                 join=f"newsroom rebuild fragments --join {writer.namespace}")  # fmt: skip
        if members > 1:
            joined = await await_members(settings, group_of(writer.namespace), members - 1, members_wait)
            log.info("rebuild members joined", joined=joined, expected=members - 1)
        done = await apply_as_member(
            settings, writer, plan, chunk, lambda n: progress.advance(articles_task, n)
        )
    elif workers == 1:
        done = await apply_articles(
            settings, writer, None, chunk, lambda n: progress.advance(articles_task, n)
        )
    else:
        groups = [parts[i::workers] for i in range(workers)]
        done = await in_workers(
            settings, writer, groups, chunk, lambda n: progress.update(articles_task, completed=n)
        )
    summary.articles += done.applied.rendered
    summary.skipped += done.applied.skipped
    summary.retractions += done.applied.retracted
    summary.undecodable += done.undecodable


async def rebuild_fragments(
    settings: Settings,
    *,
    dry_run: bool = False,
    chunk: int = CHUNK,
    workers: int | None = None,
    expire_old: int = EXPIRE_OLD_S,
    progress: ProgressLike | None = None,
    group: bool = False,
    members: int = 1,
    members_wait: float = 60.0,
) -> FragmentSummary:
    """The blue/green rebuild; returns its summary (``switched`` False for a dry run, which only reads
    the pointers and counts the records it would render, in ``planned``).

    ``progress`` (a rich ``Progress``, or anything with its ``add_task``/``advance``/``update``) is told
    how far it got; :class:`RebuildRefused` says why nothing was switched. With ``group`` the enriched
    topic is applied by a consumer group that processes elsewhere join (:mod:`newsroom.rendering.members`),
    this one once ``members - 1`` others have joined (or ``members_wait`` seconds have passed).
    """
    redis = connect(settings.redis_url)
    pointers = Pointers(settings.template_version)
    started = time.perf_counter()
    try:
        # Read, not resolve (which claims the default namespace): on an empty or wiped store no
        # namespace is served until this one is complete.
        active, _shadow = await pointers.read(redis)
        old = active or ""
        summary = FragmentSummary(old or "-", new_namespace(settings.template_version))
        if dry_run:
            summary.planned = await approx_counts(settings, [SNAPSHOTS.name, ENRICHED.name])
            return summary
        writer = FragmentWriter(redis, summary.new_namespace, Renderer.for_settings(settings), pointers)
        switched = False
        try:
            async with shadow_pointer(redis, pointers, summary.new_namespace):
                with _retired_is_fatal():
                    await writer.setup()
                    await render_log(
                        settings,
                        writer,
                        summary,
                        progress or Quiet(),
                        chunk,
                        workers or default_workers(),
                        group,
                    )
                    await pointers.switch_to(redis, summary.new_namespace, replacing=old)
                    switched = summary.switched = True
        finally:
            await redis.delete(plan_key(summary.new_namespace))  # a member still applying stops at its end
            if not switched:  # interrupted or refused: the site never saw it; let the partial namespace go
                await expire_namespace(redis, summary.new_namespace, 60)
        summary.expired_old_keys = await expire_namespace(redis, old, expire_old) if old else 0
        summary.seconds = time.perf_counter() - started
        return summary
    finally:
        await redis.aclose()


async def retire_version(
    settings: Settings, version: str, *, expire_in: int, dry_run: bool
) -> dict[str, int]:
    """Expire the keys of ``version``'s serving and default namespaces and drop its pointers.

    Returns the keys found per namespace. Refuses the configured version, and one that a rebuild is
    filling (its shadow pointer is set).
    """
    if version == settings.template_version:
        raise RebuildRefused(f"{version} is the template version in use (NEWSROOM_TEMPLATE_VERSION)")
    pointers = Pointers(version)
    redis = connect(settings.redis_url)
    try:
        active, shadow = await pointers.read(redis)
        if shadow is not None:
            raise RebuildRefused(f"a rebuild of {version} is running (shadow {shadow}); not retiring it")
        found: dict[str, int] = {}
        for namespace in sorted({namespace_for(version), active or namespace_for(version)}):
            if dry_run:
                found[namespace] = len([key async for key in Keys(namespace).scan(redis)])
            else:
                found[namespace] = await expire_namespace(redis, namespace, expire_in)
        if not dry_run:
            await redis.delete(pointers.active)
        return found
    finally:
        await redis.aclose()
