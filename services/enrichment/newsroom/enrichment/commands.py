"""``newsroom`` subcommands contributed by the enrichment service."""

from __future__ import annotations

import argparse
import sys

import orjson
from newsroom.enrichment.tagger import default_tagger


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``newsroom tag`` to the CLI."""
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


def run_tag(args: argparse.Namespace) -> int:
    """Tag stdin; returns the process exit code."""
    tagger = default_tagger()
    out = sys.stdout.buffer
    if not args.jsonl:
        mentions = [m.model_dump() for m in tagger.tag(sys.stdin.read())]
        out.write(orjson.dumps(mentions, option=orjson.OPT_INDENT_2) + b"\n")
        out.flush()
        return 0
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        doc = orjson.loads(line)
        mentions = [m.model_dump() for m in tagger.tag(str(doc.get("text", "")))]
        out.write(orjson.dumps({"id": doc.get("id"), "mentions": mentions}) + b"\n")
    out.flush()
    return 0
