"""``newsroom tail``: a topic's records, decoded, from a point in time or offset."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from aiokafka import ConsumerRecord
from rich.console import Group
from rich.json import JSON as RichJSON
from rich.text import Text

from newsroom.cli.arguments import at_least, parse_from
from newsroom.cli.output import console, when
from newsroom.common.events import EventDecodeError, decode
from newsroom.common.reading import read_topic
from newsroom.common.settings import Settings, get_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tail``."""
    p = sub.add_parser(
        "tail",
        help="print a topic's events, decoded",
        description="Print a topic's records as decoded events (offset, time, key, type and payload).",
    )
    p.add_argument("topic", help="topic name, e.g. newsroom.articles")
    p.add_argument(
        "--from",
        dest="start",
        type=parse_from,
        default="earliest",
        help="earliest (default), latest, an ISO date-time, or a duration back from now (15m, 2h)",
    )
    p.add_argument("--key", help="only records with this key")
    p.add_argument("--follow", "-f", action="store_true", help="keep waiting for new records")
    p.add_argument("--limit", type=at_least(0), default=0, help="stop after this many records (0: no limit)")
    p.add_argument("--compact", action="store_true", help="one line per record, no payload")
    p.set_defaults(func=cmd_tail)


def render_record(rec: ConsumerRecord[Any, Any], compact: bool) -> Group | Text:
    """One record, decoded where possible, for the terminal."""
    key = rec.key.decode("utf-8", "replace") if rec.key is not None else "-"
    value: bytes = rec.value or b""
    line = Text()
    line.append(f"{rec.topic}[{rec.partition}]@{rec.offset}", style="bold cyan")
    line.append(f" {when(rec.timestamp)} ", style="dim")
    line.append(f"key={key} ", style="yellow")
    try:
        envelope = decode(value)
    except EventDecodeError as exc:
        line.append(f"undecodable: {exc}", style="bold red")
        if compact:
            return line
        return Group(line, Text(value[:2000].decode("utf-8", "replace")))
    line.append(f"{envelope.type} v{envelope.version}", style="bold green")
    line.append(f" by {envelope.producer}", style="dim")
    if compact:
        return line
    return Group(line, RichJSON(envelope.model_dump_json(), indent=2))


async def tail(settings: Settings, args: argparse.Namespace) -> int:
    out = console()
    shown = 0
    async for batch in read_topic(settings, args.topic, start=args.start, follow=args.follow, required=True):
        for rec in batch:
            if args.key is not None and (rec.key or b"").decode("utf-8", "replace") != args.key:
                continue
            out.print(render_record(rec, args.compact))
            shown += 1
            if args.limit and shown >= args.limit:
                return 0
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(tail(get_settings(), args))
    except KeyboardInterrupt:
        return 0
