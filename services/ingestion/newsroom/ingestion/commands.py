"""``newsroom feeds`` and ``newsroom ingest``: articles from feeds and files, through the ingestion API.

Both submit to the running ingestion service (``NEWSROOM_API_PORT``, the first key of
``NEWSROOM_API_KEYS``), which alone writes the articles topic and decides duplicates and
revisions, so neither command can race the API or bypass its rules.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from newsroom.common.logging import configure_logging
from newsroom.common.settings import get_settings
from newsroom.ingestion.client import ApiError, Candidate, IngestionClient, Outcome, api_base, api_key
from newsroom.ingestion.domain import ArticleIn, ArticleRegistry, validation_reason
from newsroom.ingestion.feeds import Poller, StateFile, load_config, summarize
from newsroom.ingestion.files import expand, read_path

OUTCOMES = ("accepted", "revised", "duplicate", "gone", "rejected")
PROGRESS_FROM = 50  # candidates; smaller imports finish before a bar would help


def register(sub: Any) -> None:
    """Add ``feeds`` and ``ingest`` to the ``newsroom`` command."""
    p = sub.add_parser(
        "feeds", help="poll the configured RSS/Atom feeds and submit their items (SIGTERM stops)"
    )
    p.add_argument(
        "--config",
        "-c",
        type=Path,
        default=Path("feeds.yaml"),
        help="YAML list of feeds (url, name, interval)",
    )
    p.add_argument(
        "--state", type=Path, help="conditional-GET state file (default: NEWSROOM_RUN_DIR/feeds-state.json)"
    )
    p.add_argument("--once", action="store_true", help="poll every feed once and exit (1 if any failed)")
    p.add_argument("--api", help="ingestion API address (default from NEWSROOM_HOST/NEWSROOM_API_PORT)")
    p.set_defaults(func=cmd_feeds)

    p = sub.add_parser("ingest", help="import articles from JSON, JSONL, RSS/Atom, HTML or text files")
    p.add_argument("paths", nargs="+", type=Path, help="files or directories")
    p.add_argument("--source", help="source of articles whose file does not name one")
    p.add_argument("--dry-run", action="store_true", help="read and validate only; submit nothing")
    p.add_argument("--report", type=Path, help="write every outcome (origin, outcome, id, reason) as JSON")
    p.add_argument("--api", help="ingestion API address (default from NEWSROOM_HOST/NEWSROOM_API_PORT)")
    p.set_defaults(func=cmd_ingest)


# --------------------------------------------------------------------------- feeds


async def _run_feeds(args: argparse.Namespace) -> int:
    settings = get_settings()
    config = load_config(args.config)
    state = StateFile(args.state or Path(settings.run_dir) / "feeds-state.json")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with (
        IngestionClient(
            args.api or api_base(settings), api_key(settings), max_bytes=settings.max_body_bytes
        ) as client,
        httpx.AsyncClient(timeout=30.0, follow_redirects=True) as http,
    ):
        poller = Poller(config, client, state, http)
        if args.once:
            polls = asyncio.ensure_future(poller.once())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({polls, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not polls.done():
                polls.cancel()
                print("interrupted", file=sys.stderr)
                return 130
            totals = summarize(polls.result())
            print(", ".join(f"{v} {k}" for k, v in totals.items()))
            return 1 if totals["failed"] else 0
        await poller.run(stop)
    return 0


def cmd_feeds(args: argparse.Namespace) -> int:
    """Poll feeds until SIGTERM/SIGINT (or once, with ``--once``)."""
    configure_logging("feeds")
    try:
        return asyncio.run(_run_feeds(args))
    except (OSError, ValueError) as exc:
        print(f"newsroom feeds: {exc}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------- ingest


def dry_run(candidates: list[Candidate]) -> list[Outcome]:
    """Validate locally; a duplicate is only detected among the candidates themselves."""
    registry = ArticleRegistry()
    outcomes = []
    for c in candidates:
        if c.article is None:
            outcomes.append(Outcome(c.origin, "rejected", reason=c.error))
            continue
        try:
            decision = registry.submit(ArticleIn.model_validate(c.article))
        except ValidationError as exc:
            outcomes.append(Outcome(c.origin, "rejected", reason=validation_reason(exc)))
            continue
        except ValueError as exc:
            outcomes.append(Outcome(c.origin, "rejected", reason=str(exc)))
            continue
        if decision.event is not None:
            registry.apply(decision.event)
        outcomes.append(Outcome(c.origin, decision.outcome, decision.article_id, decision.revision))
    return outcomes


def _progress(console: Console, total: int) -> Progress:
    return Progress(
        TextColumn("[bold]ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=total < PROGRESS_FROM,
        transient=True,
    )


def report(outcomes: list[Outcome], files: int, elapsed: float, *, dry: bool) -> str:
    """The summary: counts per outcome, then every rejection with its reason."""
    counts = Counter(o.outcome for o in outcomes)
    head = ", ".join(f"{counts.get(k, 0)} {k}" for k in OUTCOMES)
    lines = [f"{len(outcomes)} article(s) from {files} file(s) in {elapsed:.1f}s: {head}"]
    if dry:
        lines.append("dry run: nothing submitted (duplicates are only those within these files)")
    rejected = [o for o in outcomes if o.outcome in ("rejected", "gone")]
    if rejected:
        lines.append("not ingested:")
        lines.extend(f"  {o.origin}: {o.reason or 'retracted earlier'}" for o in rejected)
    return "\n".join(lines)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Import files; exit 0 when every article was ingested or a duplicate, 1 when some were not."""
    settings = get_settings()
    console = Console(stderr=True)
    started = time.perf_counter()
    files = expand(args.paths)
    candidates = [c for path in files for c in read_path(path, args.source)]
    if args.dry_run:
        outcomes = dry_run(candidates)
    else:

        async def submit() -> list[Outcome]:
            async with IngestionClient(
                args.api or api_base(settings), api_key(settings), max_bytes=settings.max_body_bytes
            ) as client:
                with _progress(console, len(candidates)) as progress:
                    task = progress.add_task("ingest", total=len(candidates))
                    return await client.submit(candidates, progress=lambda n: progress.advance(task, n))

        try:
            outcomes = asyncio.run(submit())
        except ApiError as exc:
            print(f"newsroom ingest: {exc}", file=sys.stderr)
            return 2
    print(report(outcomes, len(files), time.perf_counter() - started, dry=args.dry_run))
    if args.report:
        args.report.write_text(json.dumps([dataclasses.asdict(o) for o in outcomes], indent=1))
    return 1 if any(o.outcome in ("rejected", "gone") for o in outcomes) else 0
