"""``newsroom status``: each service's readiness (and restarts under ``newsroom dev``), lag per group,
and the dead letters."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Group
from rich.table import Table
from rich.text import Text

from newsroom.cli import SERVICES
from newsroom.cli.arguments import at_least
from newsroom.cli.output import console
from newsroom.common.admin import (
    partitions_of,
    plain_consumer,
)
from newsroom.common.lag import lag_rows
from newsroom.common.reading import running, spans
from newsroom.common.settings import Settings, get_settings
from newsroom.common.topics import DEAD_LETTERS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``status``."""
    p = sub.add_parser("status", help="services' readiness, consumer lag and dead letters")
    p.add_argument("--watch", action="store_true", help="refresh live until Ctrl-C")
    p.add_argument(
        "--interval", type=at_least(0.1, float), default=2.0, help="seconds between refreshes with --watch"
    )
    p.set_defaults(func=cmd_status)


async def readiness(settings: Settings) -> dict[str, tuple[int | None, float]]:
    """Each service's /readyz status code (None if unreachable) and how long it took to answer."""

    async def probe(client: httpx.AsyncClient, service: str) -> tuple[str, tuple[int | None, float]]:
        started = time.perf_counter()
        try:
            r = await client.get(f"http://{settings.host}:{settings.port_of(service)}/readyz")
            return service, (r.status_code, time.perf_counter() - started)
        except httpx.HTTPError:
            return service, (None, time.perf_counter() - started)

    async with httpx.AsyncClient(timeout=2.0) as client:
        return dict(await asyncio.gather(*(probe(client, s) for s in SERVICES)))


def supervised(settings: Settings) -> dict[str, Any]:
    """What a running `newsroom dev` says of its children (pid, restarts, last exit), or {} if none runs."""
    from newsroom.cli.core import STATE_FILE

    path = Path(settings.run_dir) / STATE_FILE
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["supervisor_pid"]), 0)  # a file left by a dev that died says nothing
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    children: dict[str, Any] = state.get("children", {})
    return children


async def status_view(settings: Settings) -> Group:
    """The services table (with restarts under `newsroom dev`), lag per group and dead-letter count."""
    ready = await readiness(settings)
    children = supervised(settings)
    services = Table(title=f"services ({datetime.now(UTC).isoformat(timespec='seconds')})")
    for col in ("service", "port", "ready", "answered in", "restarts"):
        services.add_column(col)
    for service, (code, took) in ready.items():
        state = (
            Text("ready", style="green")
            if code == 200
            else Text("down" if code is None else f"not ready ({code})", style="red")
        )
        child = children.get(service)
        restarts = "-" if child is None else str(child["restarts"])
        if child is not None and child.get("last_exit") is not None:
            restarts += f" (last exit {child['last_exit']})"
        services.add_row(service, str(settings.port_of(service)), state, f"{took * 1000:.0f} ms", restarts)
    parts: list[Any] = [services]
    try:
        rows = await lag_rows(settings)
        groups = Table(title="consumer groups")
        for col in ("group", "partitions", "lag"):
            groups.add_column(col, justify="left" if col == "group" else "right")
        totals: dict[str, tuple[int, int]] = {}
        for row in rows:
            n, lag = totals.get(row.group, (0, 0))
            totals[row.group] = (n + 1, lag + row.lag)
        for group, (n, lag) in sorted(totals.items()):
            groups.add_row(group, str(n), Text(str(lag), style="yellow" if lag else ""))
        parts.append(groups)
        async with running(plain_consumer(settings)) as consumer:
            dlq = await spans(consumer, partitions_of(consumer, [DEAD_LETTERS.name]))
        count = sum(s.approx_count for s in dlq.values())
        parts.append(Text(f"dead letters: ≈{count}", style="red" if count else "green"))
    except Exception as exc:  # the broker being down is a status to show, not a crash
        parts.append(Text(f"broker unreachable: {type(exc).__name__}: {exc}", style="bold red"))
    return Group(*parts)


def cmd_status(args: argparse.Namespace) -> int:
    settings = get_settings()
    out = console()
    if not args.watch:
        view = asyncio.run(status_view(settings))
        out.print(view)
        return 0
    from rich.live import Live

    async def watch() -> None:
        with Live(await status_view(settings), console=out, refresh_per_second=4) as live:
            while True:
                await asyncio.sleep(args.interval)
                live.update(await status_view(settings))

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch())
    return 0
