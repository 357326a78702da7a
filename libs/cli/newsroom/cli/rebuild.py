"""``newsroom rebuild fragments|enrichment``: rebuild derived state from the log.

``rebuild fragments`` is blue/green. It names a fresh namespace ``nr:<template version>:<UTC
timestamp>``, points the shadow pointer at it (with a TTL it keeps refreshing, so the live
renderer writes every new event there too), renders the whole log into it with the renderer's
own :class:`~newsroom.rendering.writer.FragmentWriter` (quote snapshots first, then the
enriched topic: this process and worker processes take its partitions and apply each one's
events in log order, a chunk per atomic write), switches the active pointer
atomically, and finally gives the old namespace's keys a TTL so in-flight readers finish.
Until the switch the site keeps serving the old namespace: an interrupted rebuild changes
nothing a reader sees, and its partial namespace expires.

``rebuild retire VERSION`` lets an old template version's keys go after a version bump (its
serving namespace and its default one expire, its pointers are removed): once the web tier and the
renderer run the new version, nothing reads or writes them any more.

``rebuild enrichment`` re-tags the latest revision of every article that is not retracted
with the current tagger and security master, publishing ``ArticleEnriched`` with an
enrichment revision one above the highest the enriched topic holds for that article; the
renderer then picks the new revisions up.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
import structlog
from aiokafka import ConsumerRecord, TopicPartition
from redis.exceptions import RedisError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from newsroom.cli.ops import console, key_values, spans
from newsroom.common.events import (
    ArticleContent,
    ArticleEnriched,
    ArticleRetracted,
    EventDecodeError,
    QuoteUpdated,
    decode_payload,
    new_envelope,
)
from newsroom.common.lag import partitions_of, plain_consumer
from newsroom.common.messaging import Outgoing, fitting
from newsroom.common.reading import read_topic, running
from newsroom.common.settings import Settings, get_settings
from newsroom.common.store import Keys, NamespaceRetired, Pointers, SwitchRefused, connect, namespace_for
from newsroom.common.tasks import in_background
from newsroom.common.topics import ARTICLES, ENRICHED, SNAPSHOTS
from newsroom.rendering.domain import Renderer
from newsroom.rendering.replay import ArticleCounts, apply_articles, apply_in_worker, start_worker

SHADOW_TTL_S = 30
log = structlog.get_logger("rebuild")
# Events per atomic write. Each chunk's MULTI/EXEC holds Redis for ~14 µs per event, and the site's cache
# misses wait behind it: 200 keeps that near 3 ms (5 ms at 500) at the same rebuild throughput.
CHUNK = 200
EXPIRE_OLD_S = 300
PRODUCER = "rebuild"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``newsroom rebuild fragments`` and ``newsroom rebuild enrichment``."""
    p = sub.add_parser("rebuild", help="rebuild derived state from the log (fragments, enrichment)")
    actions = p.add_subparsers(dest="rebuild_command", required=True, metavar="WHAT")
    f = actions.add_parser(
        "fragments",
        help="blue/green: render the whole log into a fresh namespace, then switch the site to it",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    f.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    f.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes applying the enriched topic's partitions, this one included (default: one per "
        "partition, at most two per core; 1 applies them all in this process)",
    )
    f.add_argument(
        "--chunk", type=int, default=CHUNK, help=f"events applied per atomic write (default {CHUNK})"
    )
    f.add_argument(
        "--expire-old",
        type=int,
        default=EXPIRE_OLD_S,
        help="seconds the old namespace lives on (default 300)",
    )
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_rebuild_fragments)

    r = actions.add_parser(
        "retire",
        help="let an old template version's namespaces expire (after a version bump)",
        description=__doc__.split("\n\n")[2] if __doc__ else None,
    )
    r.add_argument("version", help="the template version to retire (not the one configured)")
    r.add_argument(
        "--expire-in", type=int, default=EXPIRE_OLD_S, help="seconds its keys live on (default 300)"
    )
    r.add_argument("--dry-run", action="store_true", help="count its keys, change nothing")
    r.set_defaults(func=cmd_rebuild_retire)

    e = actions.add_parser(
        "enrichment",
        help="re-tag every article with the current tagger (new enrichment revisions)",
        description=__doc__.split("\n\n")[3] if __doc__ else None,
    )
    e.add_argument("--dry-run", action="store_true", help="tag and count, publish nothing")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_rebuild_enrichment)


# --------------------------------------------------------------------------- progress


class RateColumn(ProgressColumn):
    """Events per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} ev/s" if speed else "- ev/s", style="progress.data.speed")


def progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=console(),
        disable=not enabled,
    )


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


# --------------------------------------------------------------------------- rebuild fragments


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

    @property
    def events(self) -> int:
        return self.quotes + self.articles + self.skipped + self.retractions

    def table(self) -> Table:
        return key_values(
            "rebuild fragments: summary",
            [
                ("old namespace", self.old_namespace),
                (
                    "new namespace",
                    self.new_namespace + ("  (active)" if self.switched else "  (not switched)"),
                ),
                ("quote snapshots", f"{self.quotes:,}"),
                ("articles rendered", f"{self.articles:,}"),
                ("stale or retracted skipped", f"{self.skipped:,}"),
                ("retractions", f"{self.retractions:,}"),
                ("undecodable records", f"{self.undecodable:,}"),
                ("old keys expiring", f"{self.expired_old_keys:,}"),
                ("wall time", f"{self.seconds:.1f} s"),
                ("rate", f"{self.events / self.seconds:,.0f} events/s" if self.seconds else "-"),
            ],
        )


def default_workers() -> int:
    """Worker processes for a fragments rebuild: at most two per core (capped by partitions later)."""
    return 2 * (os.cpu_count() or 1)


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
        raise SystemExit(
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
        raise SystemExit(
            f"{exc}: the shadow pointer no longer names it (another rebuild, or it lapsed); not switching"
        ) from exc
    except SwitchRefused as exc:
        raise SystemExit(str(exc)) from exc


def _decoded(batch: list[ConsumerRecord[Any, Any]]) -> Iterator[Any]:
    """Each record's event payload, or None for a record that is not a valid event."""
    for rec in batch:
        try:
            yield decode_payload(rec.value or b"")
        except EventDecodeError:
            yield None


async def render_log(
    settings: Settings,
    writer: Any,
    summary: FragmentSummary,
    progress: Progress,
    chunk: int,
    workers: int,
) -> None:
    """Quote snapshots first, then the enriched articles, into ``writer``'s namespace."""
    found = await partition_counts(settings, [SNAPSHOTS.name, ENRICHED.name])
    counts = by_topic(found, [SNAPSHOTS.name, ENRICHED.name])
    parts = sorted(tp.partition for tp in found if tp.topic == ENRICHED.name)
    if not parts:  # not an empty log: no log at all (another cluster?); switching would empty the site
        raise SystemExit(
            f"no topic {ENRICHED.name} on {settings.broker_url} (is NEWSROOM_BROKER_URL right?): "
            "nothing to rebuild the site from; not switching"
        )
    quotes_task = progress.add_task("quote snapshots", total=counts[SNAPSHOTS.name] or None)
    async for batch in read_topic(settings, SNAPSHOTS.name):
        snapshots: list[QuoteUpdated] = []
        for data in _decoded(batch):
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
    if workers == 1:
        done = await apply_articles(
            settings, writer, None, chunk, lambda n: progress.advance(articles_task, n)
        )
    else:
        groups = [parts[i::workers] for i in range(workers)]
        done = await _in_workers(
            settings, writer, groups, chunk, lambda n: progress.update(articles_task, completed=n)
        )
    summary.articles += done.applied.rendered
    summary.skipped += done.applied.skipped
    summary.retractions += done.applied.retracted
    summary.undecodable += done.undecodable


WORKER_PRELOAD = ["newsroom.rendering.replay"]  # the workers' code, and none of the CLI's


def worker_context() -> multiprocessing.context.BaseContext:
    """Where the rebuild's workers come from: forked from a fork server that imported their code once.

    Not forked from this process, which runs an event loop; and not spawned, which would import
    everything again in every worker (about 0.7 s of CPU each).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():  # not on this platform
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    return context


async def _in_workers(
    settings: Settings, writer: Any, groups: list[list[int]], chunk: int, report: Callable[[int], None]
) -> ArticleCounts:
    """Apply the first group of partitions here with ``writer``, each other one in a worker process of its
    own; ``report`` sees the records done, four times a second.

    This process starts at once, while the workers wait for the fork server to import their code (the
    better part of a second). Cancelled, or when any of them fails, it asks the others to stop after the
    chunk in hand and waits for them, so no worker outlives the call.
    """
    context = worker_context()
    progress, stop = context.Value("q", 0), context.Event()
    here = 0

    def advance(n: int) -> None:
        nonlocal here
        here += n

    with concurrent.futures.ProcessPoolExecutor(
        len(groups) - 1, mp_context=context, initializer=start_worker, initargs=(progress, stop)
    ) as pool:

        def submit_all() -> list[concurrent.futures.Future[ArticleCounts]]:
            return [
                pool.submit(apply_in_worker, settings, writer.namespace, group, chunk) for group in groups[1:]
            ]

        mine = asyncio.ensure_future(apply_articles(settings, writer, groups[0], chunk, advance, stop.is_set))
        # From a thread: a submit returns once the fork server has imported the workers' code.
        submitting = asyncio.ensure_future(asyncio.to_thread(submit_all))
        try:
            while not submitting.done():
                await asyncio.wait({t for t in (mine, submitting) if not t.done()}, timeout=0.25)
                report(here + progress.value)
                if mine.done():
                    mine.result()  # raises if this process's share failed
            running = asyncio.gather(mine, *map(asyncio.wrap_future, submitting.result()))
            while not running.done():
                await asyncio.wait({running}, timeout=0.25)
                report(here + progress.value)
            results = await running
        except BaseException:  # cancelled, or one failed: the others stop too
            stop.set()
            with contextlib.suppress(Exception):
                submitted = await asyncio.shield(submitting)  # its thread submits them all regardless
                others = map(asyncio.wrap_future, submitted)
                await asyncio.shield(asyncio.gather(mine, *others, return_exceptions=True))
            raise
    return sum(results, ArticleCounts())


async def rebuild_fragments(
    settings: Settings,
    *,
    dry_run: bool = False,
    chunk: int = CHUNK,
    workers: int | None = None,
    expire_old: int = EXPIRE_OLD_S,
    show_progress: bool = True,
) -> FragmentSummary:
    """The blue/green rebuild; returns its summary (``switched`` False for a dry run)."""
    from newsroom.rendering.writer import FragmentWriter

    out = console()
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
            counts = await approx_counts(settings, [SNAPSHOTS.name, ENRICHED.name])
            rows = [("active namespace (serving)", old or "none"), ("would build", summary.new_namespace)]
            rows += [(f"records on {topic}", f"≈{n:,}") for topic, n in counts.items()]
            then = f"switch {pointers.active}" + (f", expire {old}:* after {expire_old}s" if old else "")
            rows.append(("then", then))
            out.print(key_values("rebuild fragments (dry run)", rows))
            return summary
        writer = FragmentWriter(redis, summary.new_namespace, Renderer.for_settings(settings), pointers)
        switched = False
        try:
            async with shadow_pointer(redis, pointers, summary.new_namespace):
                with _retired_is_fatal():
                    await writer.setup()
                    with progress_bar(show_progress) as progress:
                        await render_log(
                            settings, writer, summary, progress, chunk, workers or default_workers()
                        )
                    await pointers.switch_to(redis, summary.new_namespace, replacing=old)
                    switched = summary.switched = True
        finally:
            if not switched:  # interrupted or refused: the site never saw it; let the partial namespace go
                await expire_namespace(redis, summary.new_namespace, 60)
        summary.expired_old_keys = await expire_namespace(redis, old, expire_old) if old else 0
        summary.seconds = time.perf_counter() - started
        return summary
    finally:
        await redis.aclose()


def cmd_rebuild_fragments(args: argparse.Namespace) -> int:
    settings = get_settings()

    async def main() -> FragmentSummary:
        # SIGTERM like Ctrl-C: workers stop after the chunk in hand, an unswitched namespace expires
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await rebuild_fragments(
            settings,
            dry_run=args.dry_run,
            chunk=args.chunk,
            workers=args.workers,
            expire_old=args.expire_old,
            show_progress=not args.no_progress,
        )

    try:
        summary = asyncio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        console().print("rebuild interrupted: the site still serves the old namespace; the new one expires")
        return 130
    if not args.dry_run:
        console().print(summary.table())
    return 0


# --------------------------------------------------------------------------- retire a version


async def retire_version(
    settings: Settings, version: str, *, expire_in: int, dry_run: bool
) -> dict[str, int]:
    """Expire the keys of ``version``'s serving and default namespaces and drop its pointers.

    Returns the keys found per namespace. Refuses the configured version, and one that a rebuild is
    filling (its shadow pointer is set).
    """
    if version == settings.template_version:
        raise SystemExit(f"{version} is the template version in use (NEWSROOM_TEMPLATE_VERSION)")
    pointers = Pointers(version)
    redis = connect(settings.redis_url)
    try:
        active, shadow = await pointers.read(redis)
        if shadow is not None:
            raise SystemExit(f"a rebuild of {version} is running (shadow {shadow}); not retiring it")
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


def cmd_rebuild_retire(args: argparse.Namespace) -> int:
    found = asyncio.run(
        retire_version(get_settings(), args.version, expire_in=args.expire_in, dry_run=args.dry_run)
    )
    verb = "would expire" if args.dry_run else f"expiring in {args.expire_in}s"
    rows = [(namespace, f"{verb}: {n:,} keys") for namespace, n in found.items()]
    console().print(
        key_values(f"rebuild retire {args.version}" + (" (dry run)" if args.dry_run else ""), rows)
    )
    return 0


# --------------------------------------------------------------------------- rebuild enrichment


@dataclass
class EnrichmentSummary:
    """What an enrichment rebuild did."""

    articles: int = 0
    retagged: int = 0
    changed: int = 0
    retracted: int = 0
    too_large: int = 0
    seconds: float = 0.0
    published: bool = False

    def table(self) -> Table:
        return key_values(
            "rebuild enrichment: summary",
            [
                ("articles on the log", f"{self.articles:,}"),
                ("re-tagged" + ("" if self.published else " (dry run: not published)"), f"{self.retagged:,}"),
                ("tickers changed", f"{self.changed:,}"),
                ("retracted (skipped)", f"{self.retracted:,}"),
                ("too large to publish (left as they were)", f"{self.too_large:,}"),
                ("wall time", f"{self.seconds:.1f} s"),
            ],
        )


@dataclass
class LogState:
    """Per article: its latest content revision, highest enrichment revision, last tickers, retraction."""

    latest: dict[str, ArticleContent] = field(default_factory=dict)
    enrichment_revision: dict[str, int] = field(default_factory=dict)
    tickers: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    retracted: set[str] = field(default_factory=set)


async def read_state(settings: Settings) -> LogState:
    """Fold the articles and enriched topics into what ``rebuild enrichment`` needs."""
    state = LogState()
    best: dict[str, tuple[int, int]] = {}
    async for batch in read_topic(settings, ENRICHED.name):
        for data in _decoded(batch):
            if isinstance(data, ArticleEnriched):
                aid = data.article.article_id
                erev = data.enrichment_revision
                state.enrichment_revision[aid] = max(erev, state.enrichment_revision.get(aid, 0))
                version = (data.article.revision, erev)
                if version >= best.get(aid, (0, 0)):
                    best[aid] = version
                    state.tickers[aid] = tuple(sorted((t.exchange, t.symbol) for t in data.tickers))
            elif isinstance(data, ArticleRetracted):
                state.retracted.add(data.article_id)
    async for batch in read_topic(settings, ARTICLES.name):
        for data in _decoded(batch):
            if isinstance(data, ArticleContent):
                current = state.latest.get(data.article_id)
                if current is None or data.revision >= current.revision:
                    state.latest[data.article_id] = data
            elif isinstance(data, ArticleRetracted):
                state.retracted.add(data.article_id)
    return state


async def rebuild_enrichment(
    settings: Settings, *, dry_run: bool = False, show_progress: bool = True, burst: int = 500
) -> EnrichmentSummary:
    """Re-tag every live article and publish the new enrichment revisions (unless ``dry_run``)."""
    from newsroom.common.messaging import Publisher, make_broker
    from newsroom.enrichment.master import build_master
    from newsroom.enrichment.securities import published_securities
    from newsroom.enrichment.service import Enricher

    started = time.perf_counter()
    summary = EnrichmentSummary(published=not dry_run)
    state = await read_state(settings)
    enricher = Enricher()
    securities = list((await published_securities(settings)).values()) or build_master()
    await enricher.update(securities)
    summary.articles = len(state.latest)
    todo = [a for aid, a in state.latest.items() if aid not in state.retracted]
    summary.retracted = summary.articles - len(todo)
    broker = None if dry_run else make_broker(PRODUCER, settings)
    if broker is not None:
        await broker.start()
    try:
        publisher = Publisher(broker, PRODUCER) if broker is not None else None
        with progress_bar(show_progress) as progress:
            task = progress.add_task("re-tagging articles", total=len(todo))
            for i in range(0, len(todo), burst):
                out: list[Outgoing] = []
                for article in todo[i : i + burst]:
                    erev = state.enrichment_revision.get(article.article_id, 0) + 1
                    enriched = enricher.enrich_payload(article, enrichment_revision=erev)
                    tickers = tuple(sorted((t.exchange, t.symbol) for t in enriched.tickers))
                    summary.changed += tickers != state.tickers.get(article.article_id)
                    out.append((ENRICHED, article.article_id, new_envelope(enriched, producer=PRODUCER)))
                groups = [(item, [item]) for item in out]
                if publisher is None:
                    refused = fitting(groups)[1]
                else:
                    refused = await publisher.publish_fitting(groups)
                for _, reason in refused:  # its article keeps the enrichment it has
                    log.warning("enriched event too large to publish; its article keeps its own", why=reason)
                summary.too_large += len(refused)
                summary.retagged += len(out) - len(refused)
                progress.advance(task, len(out) - len(refused))
    finally:
        if broker is not None:
            await broker.stop()
    summary.seconds = time.perf_counter() - started
    return summary


def cmd_rebuild_enrichment(args: argparse.Namespace) -> int:
    summary = asyncio.run(
        rebuild_enrichment(get_settings(), dry_run=args.dry_run, show_progress=not args.no_progress)
    )
    console().print(summary.table())
    return 0
