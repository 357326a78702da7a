"""How the operator commands print: a console fit for a pipe, key-value tables, record times."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table


def console() -> Console:
    """A rich console; wide enough for tables when output goes to a pipe or a file."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=200)


def key_values(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    """A two-column table without a header: a summary or a plan."""
    table = Table(title=title, show_header=False)
    for key, value in rows:
        table.add_row(key, value)
    return table


def when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
