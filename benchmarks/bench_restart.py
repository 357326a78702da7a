"""Quotes restart time against the length of history: restart-to-ready after 30,000 and 300,000 ticks.

Run ``python -m benchmarks.bench_restart`` from the checkout. For each history length, on a fresh
embedded broker: the ticks topic is filled (the ticks of :mod:`benchmarks.bench_quotes`), the quotes
service takes them all and is stopped with SIGTERM (writing every partition's snapshot), then started
again; the figure is the time from that start until ``/readyz`` answers 200, i.e. every assigned ticks
partition restored from its snapshot. Also printed: what the restore itself took and read (from the
service's log), the rest being the consumer group's join (on the embedded broker, the stopped member's
session running out). A restart whose cost followed history would be about 10x apart;
the goal is the two within 1.5x of each other. Prints both figures and the ratio; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from benchmarks._infra import embedded
from benchmarks.bench_quotes import GROUP, INSTRUMENTS, committed_total, end_offsets, fill, tick_values
from newsroom.cli.stack import Proc, Stack, free_port, stop_process
from newsroom.common.settings import Settings

HISTORIES = (30_000, 300_000)
TIMEOUT_S = 180.0


def start(stack: Stack, port: int) -> tuple[Proc, float]:
    """Start the quotes service; returns it and the seconds until its ``/readyz`` answered 200."""
    env = {k: v for k, v in os.environ.items() if k.startswith("NEWSROOM_")}
    started = time.perf_counter()
    proc = stack.start_service("quotes", {**env, "NEWSROOM_QUOTES_PORT": str(port)})
    deadline = started + TIMEOUT_S
    while time.perf_counter() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"quotes exited with {proc.popen.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"quotes was not ready within {TIMEOUT_S:.0f}s")


async def caught_up(settings: Settings) -> None:
    """Wait until group ``quotes`` committed the end of every ticks partition."""
    end = await end_offsets(settings)
    watcher = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=GROUP)
    await watcher.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while await committed_total(watcher, list(end)) < sum(end.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("quotes did not catch up")
            await asyncio.sleep(0.1)
    finally:
        await watcher.stop()


def last_restore(log: Path) -> str:
    """What the service's last restore took and read, from its log."""
    for line in reversed(log.read_text().splitlines()):
        if "ticks partitions restored" in line:
            doc = orjson.loads(line.partition("| ")[2])
            return f"restore {doc['seconds']:.2f}s, {doc['state_records_read']} state records read"
    return "no restore logged"


def restart_after(history: int) -> float:
    """Seconds from a restart of quotes to ready, after ``history`` ticks taken."""
    with embedded() as settings, tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
        asyncio.run(fill(settings, tick_values(history, INSTRUMENTS)))
        stack = Stack(broker_port=0, redis_port=None, run_dir=Path(tmp), quiet=True)
        port = free_port()
        try:
            first, cold = start(stack, port)
            asyncio.run(caught_up(settings))
            stop_process(first.popen)  # SIGTERM: every partition's snapshot is written at shutdown
            _, ready = start(stack, port)
        finally:
            stack.stop()
        restored = last_restore(Path(tmp) / "quotes.log")
        print(
            f"{history:>9,} ticks: first start ready in {cold:.2f}s; "
            f"restart ready in {ready:.2f}s ({restored})"
        )
        return ready


def main() -> None:
    short, long = (restart_after(n) for n in HISTORIES)
    ratio = long / short if short else float("inf")
    verdict = "meets" if ratio <= 1.5 else "MISSES"
    print(
        f"restart-to-ready: {short:.2f}s after {HISTORIES[0]:,} ticks, {long:.2f}s after {HISTORIES[1]:,}; "
        f"ratio {ratio:.2f} (goal <= 1.5: {verdict})"
    )


if __name__ == "__main__":
    main()
