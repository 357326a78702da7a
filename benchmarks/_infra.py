"""Start a private embedded broker and Redis for one benchmark (free ports, stopped on exit)."""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from newsroom.cli.stack import private_stack
from newsroom.common.settings import Settings


@dataclass(frozen=True)
class Rate:
    """A measured throughput."""

    records: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds used so far: this process and its children (with theirs), Redis, and the broker."""

    python: float
    redis: float
    broker: float

    @classmethod
    def now(cls, settings: Settings) -> CpuSplit:
        mine, children = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        redis_port = urlsplit(settings.redis_url).port
        return cls(
            mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime + live_children_cpu(),
            cpu_seconds_of("redis-server", f":{redis_port}\0"),  # its process title: redis-server HOST:PORT
            sum(cpu_seconds_of("tansu", f"tcp://{server}\0") for server in settings.bootstrap_servers),
        )

    def __sub__(self, other: CpuSplit) -> CpuSplit:
        return CpuSplit(self.python - other.python, self.redis - other.redis, self.broker - other.broker)

    def per_event(self, events: int, wall: float) -> str:
        """The split per event, in µs, and how busy the machine's cores were."""
        us = 1e6 / max(events, 1)
        busy = (self.python + self.redis + self.broker) / (wall * (os.cpu_count() or 1))
        return (
            f"cpu per event: python {self.python * us:.0f} µs (this process and its workers), "
            f"Redis {self.redis * us:.0f} µs, broker {self.broker * us:.0f} µs; "
            f"{busy:.0%} of {os.cpu_count()} cores busy"
        )


def _processes() -> Iterator[tuple[Path, list[str]]]:
    """Each running process's /proc folder and the fields of its ``stat`` after the command name (Linux).

    ``fields[1]`` is the parent pid; ``fields[11:15]`` are utime, stime, cutime and cstime in ticks.
    """
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield entry, (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # it ended meanwhile
                continue


def _ticks(fields: list[str], last: int) -> float:
    return sum(int(f) for f in fields[11:last]) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_of(*needles: str) -> float:
    """User and system CPU seconds of the processes whose command line holds every needle (Linux)."""
    total = 0.0
    for entry, fields in _processes():
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().decode("utf-8", "replace") + "\0"
            if all(needle in cmdline for needle in needles):
                total += _ticks(fields, 13)
    return total


def live_children_cpu() -> float:
    """CPU seconds of this process's running Python children and of the children they reaped (Linux).

    A rebuild's workers are forked by a fork server that outlives them: their time shows up as
    the server's reaped children, not as ours until the server exits.
    """
    total = 0.0
    me, python = str(os.getpid()), os.path.realpath(sys.executable)
    for entry, fields in _processes():
        with contextlib.suppress(OSError):
            if fields[1] == me and os.path.realpath(entry / "exe") == python:  # not Redis, the broker
                total += _ticks(fields, 15)
    return total


async def raw_consume(
    settings: Settings, topic: str, *, keep: bool = False
) -> tuple[Rate, list[ConsumerRecord[Any, Any]]]:
    """The baseline: read a whole topic with a plain aiokafka consumer (``getmany``, no decoding).

    Whole fetches are kept and reading stops once every partition's position reaches the end
    offset seen at the start (the embedded broker reports that end as the last batch's base + 1).
    ``keep`` also returns the records, for a second pass over the very same data.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms, max_poll_records=5000,
    )  # fmt: skip
    await consumer.start()
    kept: list[ConsumerRecord[Any, Any]] = []
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        started = time.perf_counter()
        remaining = {tp for tp in tps if end[tp] > 0}
        n = 0
        while remaining:
            fetched = await consumer.getmany(*remaining, timeout_ms=500, max_records=5000)
            for tp, recs in fetched.items():
                n += len(recs)
                if keep:
                    kept.extend(recs)
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return Rate(n, time.perf_counter() - started), kept
    finally:
        await consumer.stop()


@contextlib.contextmanager
def embedded(
    *,
    services: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
    commands: dict[str, list[str]] | None = None,
) -> Iterator[Settings]:
    """Yield Settings pointing at a fresh broker and Redis (and the named services, started).

    ``commands`` are further ``newsroom`` commands (name -> arguments) started after the services.
    """
    with tempfile.TemporaryDirectory(prefix="newsroom-bench-") as tmp:
        extra = {"NEWSROOM_API_KEYS": "bench-key-0123456789", **(extra_env or {})}
        with private_stack(Path(tmp), extra) as (settings, env, stack):
            stack.start_services(settings, env, services)
            for name, args in (commands or {}).items():
                stack.start_command(name, args, env)
            yield settings
