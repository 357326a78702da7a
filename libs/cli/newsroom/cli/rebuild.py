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
import signal
import time
from dataclasses import dataclass, field

import structlog
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

from newsroom.cli.output import console, key_values
from newsroom.common.events import ArticleContent, ArticleEnriched, ArticleRetracted, new_envelope
from newsroom.common.messaging import Outgoing, fitting
from newsroom.common.reading import read_topic
from newsroom.common.settings import Settings, get_settings
from newsroom.common.store import Pointers
from newsroom.common.topics import ARTICLES, ENRICHED
from newsroom.rendering.rebuild import (
    CHUNK,
    EXPIRE_OLD_S,
    FragmentSummary,
    decoded_payloads,
    rebuild_fragments,
    retire_version,
)

log = structlog.get_logger("rebuild")
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


# --------------------------------------------------------------------------- rebuild fragments


def summary_table(summary: FragmentSummary) -> Table:
    """A fragments rebuild's summary, as the command prints it."""
    return key_values(
        "rebuild fragments: summary",
        [
            ("old namespace", summary.old_namespace),
            (
                "new namespace",
                summary.new_namespace + ("  (active)" if summary.switched else "  (not switched)"),
            ),
            ("quote snapshots", f"{summary.quotes:,}"),
            ("articles rendered", f"{summary.articles:,}"),
            ("stale or retracted skipped", f"{summary.skipped:,}"),
            ("retractions", f"{summary.retractions:,}"),
            ("undecodable records", f"{summary.undecodable:,}"),
            ("old keys expiring", f"{summary.expired_old_keys:,}"),
            ("wall time", f"{summary.seconds:.1f} s"),
            ("rate", f"{summary.events / summary.seconds:,.0f} events/s" if summary.seconds else "-"),
        ],
    )


def cmd_rebuild_fragments(args: argparse.Namespace) -> int:
    settings = get_settings()

    async def main() -> FragmentSummary:
        # SIGTERM like Ctrl-C: workers stop after the chunk in hand, an unswitched namespace expires
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with progress_bar(not args.no_progress and not args.dry_run) as progress:
            return await rebuild_fragments(
                settings,
                dry_run=args.dry_run,
                chunk=args.chunk,
                workers=args.workers,
                expire_old=args.expire_old,
                progress=progress,
            )

    try:
        summary = asyncio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        console().print("rebuild interrupted: the site still serves the old namespace; the new one expires")
        return 130
    if args.dry_run:
        old, pointers = summary.old_namespace, Pointers(settings.template_version)
        rows = [("active namespace (serving)", old), ("would build", summary.new_namespace)]
        rows += [(f"records on {topic}", f"≈{n:,}") for topic, n in summary.planned.items()]
        then = f"switch {pointers.active}" + (
            f", expire {old}:* after {args.expire_old}s" if old != "-" else ""
        )
        rows.append(("then", then))
        console().print(key_values("rebuild fragments (dry run)", rows))
    else:
        console().print(summary_table(summary))
    return 0


# --------------------------------------------------------------------------- retire a version


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
        for data in decoded_payloads(batch):
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
        for data in decoded_payloads(batch):
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
    from newsroom.enrichment.service import Enricher, load_master

    started = time.perf_counter()
    summary = EnrichmentSummary(published=not dry_run)
    state = await read_state(settings)
    enricher = Enricher()
    await load_master(enricher, settings)  # the bundled data with the topic's valid listings on top
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
