"""A fragments rebuild shared by processes on several machines: a consumer group over the enriched topic.

``newsroom rebuild fragments --group`` writes the quote snapshots into the new namespace, then
records the rebuild's plan beside it: the end of every enriched partition when it started (what the
rebuild must cover; what comes later the live renderer writes into the shadow namespace too). Every
process taking part, that one and each ``newsroom rebuild fragments --join`` started anywhere, joins
the consumer group ``rebuild-<namespace>``: Kafka shares the partitions out and moves them when a
member comes or goes. A member applies its partitions' records up to the plan's ends, a chunk per
atomic write, and commits after each write, so a partition taken over resumes where its last owner
committed (a chunk applied twice writes the same bytes). The rebuild is complete when the group has
committed every partition's end; the starting process then switches the site, as it does alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalGenerationError, RebalanceInProgressError
from aiokafka.structs import OffsetAndMetadata

from newsroom.common.admin import admin_client, committed_offsets, live_members
from newsroom.common.errors import Refused
from newsroom.common.events import ArticleEnriched, ArticleRetracted
from newsroom.common.mirror import ReplayDecoder
from newsroom.common.redis_client import connect
from newsroom.common.settings import Settings
from newsroom.common.store import NamespaceRetired, Pointers
from newsroom.common.topics import ENRICHED
from newsroom.rendering.domain import Renderer
from newsroom.rendering.replay import ArticleCounts, decoded_events, few_collections
from newsroom.rendering.writer import FragmentWriter

log = structlog.get_logger(__name__)
PLAN_TTL_S = 24 * 3600  # a plan outlives any rebuild; it is deleted when the rebuild ends
COVERED_EVERY_S = 1.0  # how often a member asks whether the group has committed the whole plan
_LOST_GENERATION = (CommitFailedError, IllegalGenerationError, RebalanceInProgressError)


class NoRebuildToJoin(Refused):
    """``--join`` found no rebuild in progress (no shadow namespace with a plan)."""


class RebuildEnded(Refused):
    """The rebuild this process joined stopped being the shadow one (interrupted, refused or replaced)."""


def group_of(namespace: str) -> str:
    """The consumer group of a rebuild into ``namespace``."""
    return f"rebuild-{namespace}"


def plan_key(namespace: str) -> str:
    return f"{namespace}:rebuild-plan"


async def write_plan(redis: aioredis.Redis, namespace: str, ends: dict[int, int]) -> None:
    """Record what the rebuild into ``namespace`` must cover: each enriched partition's end."""
    await redis.set(
        plan_key(namespace), orjson.dumps({str(p): end for p, end in ends.items()}), ex=PLAN_TTL_S
    )


async def read_plan(redis: aioredis.Redis, namespace: str) -> dict[int, int] | None:
    raw = await redis.get(plan_key(namespace))
    return None if raw is None else {int(p): int(end) for p, end in orjson.loads(raw).items()}


async def covered(settings: Settings, group: str, ends: dict[int, int]) -> bool:
    """Whether ``group`` has committed every partition's end in the plan."""
    tps = [TopicPartition(ENRICHED.name, p) for p in ends]
    async with admin_client(settings, "newsroom-rebuild") as admin:
        done = await committed_offsets(admin, group, tps)
    return all(done.get(tp, 0) >= ends[tp.partition] for tp in tps)


async def await_members(settings: Settings, group: str, others: int, wait: float) -> int:
    """Wait until ``others`` processes have joined ``group`` (at most ``wait`` seconds); returns how many
    had, so that a rebuild started with several machines in mind begins shared."""
    deadline = time.monotonic() + wait
    while True:
        async with admin_client(settings, "newsroom-rebuild") as admin:
            joined = len(await live_members(admin, group))
        if joined >= others or time.monotonic() >= deadline:
            return joined
        await asyncio.sleep(0.2)


async def apply_as_member(
    settings: Settings,
    writer: Any,
    ends: dict[int, int],
    chunk: int,
    advance: Callable[[int], None],
    stopping: Callable[[], bool] = lambda: False,
) -> ArticleCounts:
    """Apply, as a member of the rebuild's group, the partitions Kafka gives this process, up to ``ends``;
    return once the group has committed all of the plan (or ``stopping()``), with what this one did."""
    group = group_of(writer.namespace)
    counts = ArticleCounts()
    decoder = ReplayDecoder(fast=(ArticleEnriched,), accepted=(ArticleEnriched, ArticleRetracted))
    consumer = AIOKafkaConsumer(
        ENRICHED.name,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group,
        client_id="newsroom-rebuild",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_poll_records=chunk,
    )
    await consumer.start()
    asked = 0.0
    try:
        with few_collections():
            while not stopping():
                batches = await consumer.getmany(timeout_ms=200, max_records=chunk)
                for tp, records in batches.items():
                    mine = [r for r in records if r.offset < ends.get(tp.partition, 0)]
                    if mine:
                        counts.applied += await writer.apply(decoded_events(mine, decoder, counts))
                        advance(len(mine))
                        await _commit(consumer, {tp: mine[-1].offset + 1})
                await _close_finished(consumer, ends)
                if time.monotonic() - asked >= COVERED_EVERY_S:
                    asked = time.monotonic()
                    if await covered(settings, group, ends):
                        break
    finally:
        await consumer.stop()
    return counts


async def _commit(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    """Commit; a commit lost to a rebalance is no error: the partition's next owner applies that chunk
    again, which writes the same bytes."""
    with contextlib.suppress(*_LOST_GENERATION):
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})


async def _close_finished(consumer: AIOKafkaConsumer, ends: dict[int, int]) -> None:
    """Pause every assigned partition read up to its end, committing the end where nothing was left to
    apply (an empty partition, or one whose tail the plan leaves to the live renderer)."""
    for tp in consumer.assignment():
        end = ends.get(tp.partition, 0)
        if tp in consumer.paused() or await consumer.position(tp) < end:
            continue
        consumer.pause(tp)
        committed = await consumer.committed(tp) or 0
        if committed < end:
            await _commit(consumer, {tp: end})


async def join_rebuild(
    settings: Settings,
    namespace: str | None = None,
    *,
    chunk: int,
    wait: float = 30.0,
    advance: Callable[[int], None] = lambda n: None,
) -> tuple[str, ArticleCounts]:
    """Take part in the rebuild in progress (into ``namespace``, or whichever the shadow pointer names,
    waiting up to ``wait`` seconds for one to publish its plan); returns its namespace and what this
    process applied."""
    redis = connect(settings.redis_url)
    pointers = Pointers(settings.template_version)
    try:
        deadline = time.monotonic() + wait
        while True:
            target = namespace or (await pointers.read(redis))[1]
            plan = await read_plan(redis, target) if target else None
            if target and plan is not None:
                break
            if time.monotonic() >= deadline:
                what = f"namespace {namespace}" if namespace else "the shadow namespace"
                raise NoRebuildToJoin(f"no rebuild to join: {what} has no plan after {wait:.0f}s")
            await asyncio.sleep(0.2)
        writer = FragmentWriter(redis, target, Renderer.for_settings(settings), pointers)
        log.info("joining the rebuild", namespace=target, group=group_of(target), partitions=len(plan))
        try:
            return target, await apply_as_member(settings, writer, plan, chunk, advance)
        except NamespaceRetired as exc:  # the starting process gave up, or another rebuild replaced it
            raise RebuildEnded(
                f"the rebuild into {target} ended before this process was done ({exc})"
            ) from exc
    finally:
        await redis.aclose()
