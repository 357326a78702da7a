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
from typing import TYPE_CHECKING

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
from newsroom.common.settings import get_settings
from newsroom.common.store import Pointers
from newsroom.rendering.rebuild import (
    CHUNK,
    EXPIRE_OLD_S,
    FragmentSummary,
    rebuild_fragments,
    retire_version,
)

if TYPE_CHECKING:  # imported when run: every ``newsroom`` command would load the tagger and FastStream
    from newsroom.enrichment.replay import EnrichmentSummary


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
    shared = f.add_mutually_exclusive_group()
    shared.add_argument(
        "--group",
        action="store_true",
        help="apply the enriched topic as a consumer group that other processes, on any machine, join "
        "with --join (instead of local worker processes); this process switches the site when done",
    )
    shared.add_argument(
        "--join",
        nargs="?",
        const="",
        metavar="NAMESPACE",
        help="take part in the --group rebuild in progress (into NAMESPACE, default: the shadow one): "
        "apply the partitions Kafka gives this process until the whole plan is committed",
    )
    f.add_argument(
        "--members",
        type=int,
        default=1,
        help="with --group: start applying once this many processes (this one included) take part",
    )
    f.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds to wait: with --join for a rebuild to start, with --members for the others to join",
    )
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
    if args.join is not None:
        return join_fragments(args)

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
                group=args.group,
                members=args.members,
                members_wait=args.wait,
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


def join_fragments(args: argparse.Namespace) -> int:
    """``rebuild fragments --join``: one more member of a ``--group`` rebuild; prints what it applied."""
    from newsroom.rendering.members import join_rebuild

    settings = get_settings()
    try:
        namespace, counts = asyncio.run(
            join_rebuild(settings, args.join or None, chunk=args.chunk, wait=args.wait)
        )
    except KeyboardInterrupt:
        console().print("left the rebuild: the other members take over this process's partitions")
        return 130
    rows = [
        ("namespace", namespace),
        ("articles rendered here", f"{counts.applied.rendered:,}"),
        ("stale or retracted skipped", f"{counts.applied.skipped:,}"),
        ("retractions", f"{counts.applied.retracted:,}"),
        ("undecodable records", f"{counts.undecodable:,}"),
    ]
    console().print(key_values("rebuild fragments --join: summary", rows))
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


def enrichment_table(summary: EnrichmentSummary) -> Table:
    """An enrichment rebuild's summary, as the command prints it."""
    retagged = "re-tagged" + ("" if summary.published else " (dry run: not published)")
    return key_values(
        "rebuild enrichment: summary",
        [
            ("articles on the log", f"{summary.articles:,}"),
            (retagged, f"{summary.retagged:,}"),
            ("tickers changed", f"{summary.changed:,}"),
            ("retracted (skipped)", f"{summary.retracted:,}"),
            ("too large to publish (left as they were)", f"{summary.too_large:,}"),
            ("wall time", f"{summary.seconds:.1f} s"),
        ],
    )


def cmd_rebuild_enrichment(args: argparse.Namespace) -> int:
    from newsroom.enrichment.replay import rebuild_enrichment

    async def main() -> EnrichmentSummary:
        with progress_bar(not args.no_progress) as progress:
            task = progress.add_task("re-tagging articles", total=None)
            return await rebuild_enrichment(
                get_settings(),
                dry_run=args.dry_run,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )

    console().print(enrichment_table(asyncio.run(main())))
    return 0
