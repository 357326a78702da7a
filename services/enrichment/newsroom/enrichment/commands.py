"""``newsroom`` subcommands contributed by the enrichment service: ``tag`` and ``securities load``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import orjson

from newsroom.common.settings import get_settings
from newsroom.common.topics import SECURITIES
from newsroom.enrichment.master import build_master
from newsroom.enrichment.securities import load_securities
from newsroom.enrichment.tagger import default_tagger


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``newsroom tag`` and ``newsroom securities load`` to the CLI."""
    tag = sub.add_parser(
        "tag",
        help="print the instruments a text names",
        description=(
            "Read text on stdin and print its mentions as a JSON array; with --jsonl, read lines "
            '{"id", "text"} and write lines {"id", "mentions"}.'
        ),
    )
    tag.add_argument("--jsonl", action="store_true", help="tag one JSON document per line")
    tag.set_defaults(func=run_tag)

    securities = sub.add_parser("securities", help="the security master on the securities topic")
    actions = securities.add_subparsers(dest="securities_command", required=True, metavar="ACTION")
    load = actions.add_parser(
        "load",
        help="publish the bundled reference data as SecurityListed events (only what changed)",
        description=(
            f"Compare the bundled reference data with {SECURITIES.name} and publish a SecurityListed "
            "event, keyed by instrument id, for each instrument that is new or whose listing changed."
        ),
    )
    load.add_argument("--dry-run", action="store_true", help="compare with the topic, publish nothing")
    load.set_defaults(func=run_securities_load)


_HTML_PLACES = {"html_start", "html_end"}  # where a mention sits in HTML: plain text in, so never known


def run_tag(args: argparse.Namespace) -> int:
    """Tag stdin; returns the process exit code."""
    tagger = default_tagger()
    out = sys.stdout.buffer
    if not args.jsonl:
        mentions = [m.model_dump(exclude=_HTML_PLACES) for m in tagger.tag(sys.stdin.read())]
        out.write(orjson.dumps(mentions, option=orjson.OPT_INDENT_2) + b"\n")
        out.flush()
        return 0
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        doc = orjson.loads(line)
        mentions = [m.model_dump(exclude=_HTML_PLACES) for m in tagger.tag(str(doc.get("text", "")))]
        out.write(orjson.dumps({"id": doc.get("id"), "mentions": mentions}) + b"\n")
    out.flush()
    return 0


def run_securities_load(args: argparse.Namespace) -> int:
    """Publish what changed in the reference data; prints a summary, returns the exit code."""
    started = time.perf_counter()
    reference = build_master()
    plan, sent = asyncio.run(load_securities(get_settings(), reference, dry_run=args.dry_run))
    elapsed = time.perf_counter() - started
    print(f"securities: {len(reference)} in the reference data; {plan.summary()}")
    if args.dry_run:
        print(f"dry run: {len(plan.to_publish)} would be published to {SECURITIES.name}")
    else:
        print(f"published {sent} to {SECURITIES.name} in {elapsed:.1f}s")
    return 0
