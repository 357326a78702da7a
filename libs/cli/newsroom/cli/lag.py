"""``newsroom lag``: committed offset, end and lag of every consumer group."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from newsroom.cli.output import console
from newsroom.common.lag import LagRow, lag_rows
from newsroom.common.settings import get_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lag``."""
    p = sub.add_parser(
        "lag",
        help="consumer lag per group and partition",
        description="Committed offset, end offset and lag of every consumer group.",
    )
    p.add_argument("--group", action="append", help="only this group (repeatable)")
    p.set_defaults(func=cmd_lag)


def lag_table(rows: Sequence[LagRow]) -> Table:
    table = Table(title="consumer lag")
    for col in ("group", "topic", "partition", "committed", "end", "lag"):
        table.add_column(col, justify="left" if col in ("group", "topic") else "right")
    for row in rows:
        style = "red" if row.lag > 1000 else "yellow" if row.lag > 0 else ""
        table.add_row(row.group, row.tp.topic, str(row.tp.partition), str(row.committed), str(row.end),
                      Text(str(row.lag), style=style))  # fmt: skip
    return table


def cmd_lag(args: argparse.Namespace) -> int:
    rows = asyncio.run(lag_rows(get_settings(), args.group))
    if rows:
        console().print(lag_table(rows))
    elif args.group:
        console().print(
            f"no committed offsets for group {', '.join(args.group)} (no such group, or none yet)"
        )
    else:
        console().print("no consumer group has committed offsets yet")
    return 0
