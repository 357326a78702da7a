"""``newsroom quotes replay`` and ``newsroom quotes simulate``: ticks onto the ticks topic."""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.progress import Progress

from newsroom.common.events import QuoteUpdated, TickReceived, instrument_id, new_envelope
from newsroom.common.messaging import Publisher, make_broker
from newsroom.common.reading import read_topic
from newsroom.common.records import Record
from newsroom.common.settings import Settings, get_settings
from newsroom.common.topics import SNAPSHOTS, TICKS
from newsroom.quotes.feeds import merge_ticks, read_ticks
from newsroom.quotes.streams import paced, simulate

BURST = 2000  # ticks per produce burst when replaying as fast as possible


def register(sub: Any) -> None:
    quotes = sub.add_parser("quotes", help="publish quote ticks (recorded files or a simulation)")
    qsub = quotes.add_subparsers(dest="quotes_command", required=True, metavar="ACTION")

    p = qsub.add_parser("replay", help="publish recorded data (TSV bars, Yahoo CSV/JSON) as ticks")
    p.add_argument("files", nargs="+", help="files in the formats of shared/data/quotes")
    p.add_argument("--speed", type=float, default=0.0, help="recorded pace x SPEED (0 = as fast as possible)")
    p.add_argument("--symbol", help="symbol, when the file name does not say")
    p.add_argument("--exchange", help="NYSE, NASDAQ or TYO, when the file name does not say")
    p.add_argument("--max-gap", type=float, default=5.0, help="cap on one wait at recorded pace (seconds)")
    p.add_argument("--dry-run", action="store_true", help="count the ticks, publish nothing")
    p.set_defaults(func=cmd_replay)

    p = qsub.add_parser("simulate", help="a random walk from the last known prices (Ctrl-C stops)")
    p.add_argument(
        "--interval", type=float, help="seconds between bursts (default NEWSROOM_DEMO_TICK_INTERVAL)"
    )
    p.add_argument("--seed", type=int, default=225)
    p.add_argument("--count", type=int, help="stop after this many bursts")
    p.set_defaults(func=cmd_simulate)


async def _publish(
    settings: Settings, bursts: Iterable[tuple[float, list[TickReceived]]], total: int | None
) -> int:
    broker = make_broker("quotes-cli", settings)
    await broker.start()
    publisher = Publisher(broker, "quotes-cli")
    sent = 0
    try:
        with Progress(transient=False) as progress:
            task = progress.add_task("ticks", total=total)
            for wait, ticks in bursts:
                if wait > 0:
                    await asyncio.sleep(wait)
                sent += await publisher.publish(
                    (TICKS, instrument_id(t.exchange, t.symbol), new_envelope(t, producer="quotes-cli"))
                    for t in ticks
                )
                progress.update(task, advance=len(ticks))
    finally:
        await broker.stop()
    return sent


def _bursts(
    ticks: Iterator[TickReceived], speed: float, max_gap: float
) -> Iterator[tuple[float, list[TickReceived]]]:
    """Group ticks into produce bursts: by recorded pace, or BURST at a time as fast as possible."""
    if speed <= 0:
        burst: list[TickReceived] = []
        for tick in ticks:
            burst.append(tick)
            if len(burst) >= BURST:
                yield 0.0, burst
                burst = []
        if burst:
            yield 0.0, burst
        return
    pending: list[TickReceived] = []
    for wait, tick in paced(ticks, speed=speed, max_gap=max_gap):
        if wait > 0.01 and pending:
            yield 0.0, pending
            pending = []
        if wait > 0:
            yield wait, []
        pending.append(tick)
    if pending:
        yield 0.0, pending


def cmd_replay(args: argparse.Namespace) -> int:
    settings = get_settings()
    streams = [read_ticks(f, symbol=args.symbol, exchange=args.exchange) for f in args.files]
    ticks = list(merge_ticks(*streams))
    if args.dry_run:
        print(f"{len(ticks)} ticks from {len(args.files)} file(s); nothing published (dry run)")
        return 0
    started = time.perf_counter()
    sent = asyncio.run(_publish(settings, _bursts(iter(ticks), args.speed, args.max_gap), len(ticks)))
    elapsed = time.perf_counter() - started
    print(f"published {sent} ticks to {TICKS.name} in {elapsed:.1f}s ({sent / max(elapsed, 1e-9):,.0f}/s)")
    return 0


async def last_prices(settings: Settings) -> dict[str, tuple[Decimal, Decimal | None]]:
    """Latest public price and previous close per instrument, read from the snapshots topic."""
    prices: dict[str, tuple[Decimal, Decimal | None]] = {}
    async for batch in read_topic(settings, SNAPSHOTS.name):
        for rec in batch:
            env = Record.from_consumer_record(rec).envelope
            if env and isinstance(env.data, QuoteUpdated):
                prices[env.data.instrument_id] = (env.data.price, env.data.previous_close)
    return prices


def cmd_simulate(args: argparse.Namespace) -> int:
    from newsroom.cli import demo

    settings = get_settings()
    interval = args.interval or settings.demo_tick_interval
    known = asyncio.run(last_prices(settings))
    if not known:
        known = {
            instrument_id(t.exchange, t.symbol): (t.price, t.previous_close)
            for t in demo.seed_ticks(settings.quote_delay_minutes)
        }
    start = datetime.now(UTC)
    walk = simulate(
        {iid: p for iid, (p, _) in known.items()},
        previous_closes={iid: c for iid, (_, c) in known.items() if c is not None},
        seed=args.seed,
        start=start,
        step=timedelta(seconds=interval),
        count=args.count,
    )
    stop = asyncio.Event()

    def bursts() -> Iterator[tuple[float, list[TickReceived]]]:
        step: list[TickReceived] = []
        for tick in walk:
            if step and tick.exchange_time != step[0].exchange_time:
                yield max(0.0, (step[0].exchange_time - datetime.now(UTC)).total_seconds()), step
                step = []
            if stop.is_set():
                return
            step.append(tick)
        if step:
            yield 0.0, step

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await _publish(settings, bursts(), None)

    sent = asyncio.run(main())
    print(f"simulator stopped after {sent} ticks")
    return 0
