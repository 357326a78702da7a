"""Quotes as replicas over the real embedded broker: shared partitions, a SIGKILL, a restart from snapshots.

Each test runs on a broker of its own (``private_stack``): the replicas form consumer group ``quotes``,
which the session's stack also uses, and they must own every ticks partition between them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from newsroom.cli.stack import Proc, free_port, private_stack, stop_process, wait_ready
from newsroom.common.admin import group_offsets
from newsroom.common.events import QuoteUpdated
from newsroom.common.reading import read_topic
from newsroom.common.records import Record
from newsroom.common.settings import Settings
from newsroom.common.topics import QUOTE_STATE, SNAPSHOTS, TICKS
from newsroom.quotes import snapshots
from newsroom.quotes.book import QuoteBook
from newsroom.quotes.engine import book_config, ingest
from newsroom.quotes.service import GROUP
from newsroom.quotes.snapshots import SnapshotWriter, read_snapshot
from tests.conftest import API_KEY, RunningStack, apoll
from tests.quotes.helpers import old_ticks

pytestmark = pytest.mark.stack
SNAPSHOT_EVERY = 250  # ticks between two snapshots of a partition: a SIGKILL leaves a short tail


@pytest.fixture
def own(tmp_path: Path) -> Iterator[RunningStack]:
    """A broker, Redis and topics of this test's own."""
    extra = {
        "NEWSROOM_ENVIRONMENT": "test",
        "NEWSROOM_API_KEYS": API_KEY,
        "NEWSROOM_DEMO_SIMULATE": "0",
        "NEWSROOM_QUOTE_SNAPSHOT_EVERY_TICKS": str(SNAPSHOT_EVERY),
        "NEWSROOM_QUOTE_SNAPSHOT_SECONDS": "1",
    }
    with private_stack(tmp_path, extra) as (settings, env, stack):
        yield RunningStack(settings, env, stack)


def replica(own: RunningStack) -> tuple[Proc, str]:
    """Start one more quotes replica on a port of its own; returns it and its metrics URL once ready."""
    port = free_port()
    proc = own.stack.start_service("quotes", {**own.env, "NEWSROOM_QUOTES_PORT": str(port)})
    wait_ready(f"http://127.0.0.1:{port}/readyz", 120, proc)
    return proc, f"http://127.0.0.1:{port}/metrics"


def producer_of(proc: Proc) -> str:
    """The producer a replica's snapshots name (``quotes@host:pid``)."""
    return f"quotes@{socket.gethostname()}:{proc.popen.pid}"


async def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    """Put ticks on the ticks topic, keyed by instrument (so an instrument stays on its partition)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=10)
    await producer.start()
    try:
        sent = [await producer.send(TICKS.name, value, key=key) for key, value in records]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def caught_up(settings: Settings) -> dict[int, int]:
    """Wait until the group committed the end of every ticks partition."""
    ends: dict[int, int] = {}
    async for batch in read_topic(settings, TICKS.name):
        for rec in batch:
            ends[rec.partition] = rec.offset + 1
    return await apoll(
        lambda: group_offsets(settings, GROUP, TICKS.name),
        lambda got: all(got.get(p, 0) >= end for p, end in ends.items()),
        timeout=120,
    )


def fields(q: QuoteUpdated) -> tuple[object, ...]:
    """What a snapshot says about the instrument (not when it was taken)."""
    return (q.price, q.previous_close, q.change, q.day_open, q.day_high, q.day_low, q.volume)


async def single_replica(settings: Settings) -> dict[str, tuple[object, ...]]:
    """Every instrument's snapshot as one replica folding every tick on the topic would show it."""
    by_partition: dict[int, list[Any]] = {}
    async for batch in read_topic(settings, TICKS.name):
        for rec in batch:
            by_partition.setdefault(rec.partition, []).append(rec)
    book = QuoteBook(**book_config(settings))
    now = datetime.now(UTC)
    for recs in by_partition.values():  # an instrument lives on one partition: each in its own order
        ingest(book, recs, now.timestamp())
    book.due(now)
    out = {}
    for iid in book.instrument_ids:
        snap = book.snapshot(iid, now)
        assert snap is not None
        out[iid] = fields(snap)
    return out


async def published(settings: Settings) -> dict[str, list[tuple[QuoteUpdated, str]]]:
    """Every public snapshot per instrument, oldest first, with the replica that published it."""
    out: dict[str, list[tuple[QuoteUpdated, str]]] = {}
    async for batch in read_topic(settings, SNAPSHOTS.name):
        for rec in batch:
            env = Record.from_consumer_record(rec).envelope
            if env is not None and isinstance(env.data, QuoteUpdated):
                out.setdefault(env.data.instrument_id, []).append((env.data, env.producer))
    return out


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of a replica's samples of one metric (with these labels)."""
    text = httpx.get(url, timeout=5).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_two_replicas_and_a_sigkill_give_the_single_replica_snapshots_and_no_stale_one(
    own: RunningStack,
) -> None:
    """Two replicas share the ticks, one is SIGKILLed mid-load: the final snapshots equal one replica's, and
    no replica publishes an instrument again after another one took it over."""
    first, _ = replica(own)
    # Ticks still on the delay line when partitions move: a replica that kept a revoked partition
    # would release them itself, besides (and after) their new owner.
    delay = timedelta(minutes=own.settings.quote_delay_minutes)
    base = datetime.now(UTC) - delay + timedelta(seconds=12)
    waves = [
        old_ticks(2400, instruments=48, seed=s, start_index=2400 * s, base=base, step_ms=2) for s in range(3)
    ]

    async def until_public(index: int) -> None:
        """Sleep until the ticks up to ``index`` are past their delay (and a flush more)."""
        at = base + delay + timedelta(milliseconds=2 * index, seconds=2)
        await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))

    await produce(own.settings, waves[0])
    await caught_up(own.settings)
    second, _ = replica(own)  # the group rebalances: some partitions move to the second
    await produce(own.settings, waves[1])
    await caught_up(own.settings)
    await until_public(4800)  # both had time to publish what they hold
    loading = asyncio.create_task(produce(own.settings, waves[2]))
    await asyncio.sleep(0.3)
    os.kill(first.popen.pid, signal.SIGKILL)  # mid-load: its partitions come back from their snapshots
    await loading
    await asyncio.to_thread(first.popen.wait)
    await caught_up(own.settings)
    await until_public(7200)
    want = await single_replica(own.settings)
    assert len(want) == 48

    def last_fields(found: dict[str, list[tuple[QuoteUpdated, str]]]) -> dict[str, tuple[object, ...]]:
        return {iid: fields(snaps[-1][0]) for iid, snaps in found.items()}

    found = await apoll(lambda: published(own.settings), lambda got: last_fields(got) == want, timeout=90)
    a, b = producer_of(first), producer_of(second)
    moved = 0
    for iid, snaps in found.items():
        producers = [p for _, p in snaps]
        assert set(producers) <= {a, b}, (iid, set(producers))
        took_over = producers.index(b) if b in producers else len(producers)
        assert a not in producers[took_over:], f"{iid}: {a} published after {b} took the instrument over"
        moved += took_over < len(producers)
    assert moved == len(found)  # the survivor ended up with every instrument
    stop_process(second.popen)


async def test_a_restart_reads_the_last_snapshot_and_the_tail_only(own: RunningStack) -> None:
    """A replica restarted after thousands of ticks reads one snapshot record per partition and no tick
    of history; afterwards it takes only the new ticks."""
    history = old_ticks(3000, instruments=30, seed=1)
    proc, _ = replica(own)
    await produce(own.settings, history)
    await caught_up(own.settings)
    stop_process(proc.popen)  # SIGTERM: every partition's state is written at shutdown
    again, metrics = replica(own)
    try:
        assert 1 <= metric(metrics, "newsroom_quote_restore_records_total") <= TICKS.partitions
        assert metric(metrics, "newsroom_quote_ticks_total") == 0
        await produce(own.settings, old_ticks(12, instruments=30, seed=1, start_index=3000))
        await caught_up(own.settings)
        assert metric(metrics, "newsroom_quote_ticks_total", outcome="applied") == 12
        want = await single_replica(own.settings)
        await apoll(
            lambda: published(own.settings),
            lambda got: {iid: fields(s[-1][0]) for iid, s in got.items()} == want,
            timeout=60,
        )
    finally:
        stop_process(again.popen)


async def test_a_snapshot_cut_short_by_a_crash_is_passed_over_for_the_whole_one_before_it(
    own: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a writer died between chunks, a restore reads one torn chunk, then the last whole snapshot."""
    monkeypatch.setattr(snapshots, "CHUNK_CHARS", 200)
    producer = AIOKafkaProducer(bootstrap_servers=own.settings.bootstrap_servers)
    await producer.start()
    sent: list[bytes] = []

    async def publish(value: bytes, partition: int, event_type: str) -> int:
        sent.append(value)
        meta = await producer.send_and_wait(QUOTE_STATE.name, value, key=b"2", partition=partition)
        return meta.offset

    def state(n: int) -> dict[str, Any]:
        return {"version": 1, "instruments": {f"NASDAQ:S{i}": {"n": i, "of": n} for i in range(60)}}

    writer = SnapshotWriter(publish, "quotes@test")
    try:
        await writer.write(2, state(1), covers=100)
        whole = await writer.write(2, state(2), covers=200)
        sent.clear()
        await writer.write(2, state(3), covers=300)
        torn = sent[: len(sent) // 2]  # the same chunks again, as a writer that died half-way left them
        for value in torn:
            await producer.send_and_wait(QUOTE_STATE.name, value, key=b"2", partition=2)
    finally:
        await producer.stop()
    assert whole > 2
    found = await read_snapshot(own.settings, 2)
    assert found is not None
    assert (found.covers, found.state) == (300, state(3))
    assert found.records_read == 1 + whole  # the torn tail's last chunk, then the marker and its chunks
    assert await read_snapshot(own.settings, 3) is None
