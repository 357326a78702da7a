"""Quotes throughput: ticks/s the quotes service sustains into snapshots, against raw aiokafka consume.

Run ``python -m benchmarks.bench_quotes`` from the checkout. On a private embedded broker it fills the
ticks topic with ``TICKS`` ticks over ``INSTRUMENTS`` instruments (old enough to be public at once,
produced in bursts over the topic's partitions), then measures in the same run:

* **raw**: a plain ``AIOKafkaConsumer`` reading the whole topic with ``getmany`` (decoding nothing);
* **service**: the real quotes service process consuming the pre-filled topic (decode, delay line,
  coalesced snapshots published, offsets committed): ticks / time from its first commit until the
  committed offsets of group ``quotes`` reach the end of every partition;
* **in-process**: the service's hot path alone (:func:`~newsroom.quotes.engine.ingest` plus
  ``QuoteBook.due``) over the same records, for how much of the time is the handler's own.

Goals: the service at least half the raw rate, and at least 50,000 ticks/s. Prints; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks._infra import Rate, embedded, raw_consume
from newsroom.cli.stack import Stack
from newsroom.common.events import TickReceived, encode, instrument_id, new_envelope
from newsroom.common.settings import Settings
from newsroom.common.topics import TICKS
from newsroom.quotes.book import QuoteBook
from newsroom.quotes.engine import book_config, ingest

TICKS_TOTAL = 300_000
INSTRUMENTS = 500
BURST = 20_000  # records produced before waiting for the acknowledgements
SERVICE_TIMEOUT_S = 90.0
GROUP = "quotes"


def tick_values(n: int, instruments: int, seed: int = 225) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``n`` TickReceived records: a random walk per instrument, two hours old."""
    rng = random.Random(seed)
    symbols = [f"B{i:04d}" for i in range(instruments)]
    prices = [Decimal(rng.randint(1000, 50000)) / 100 for _ in symbols]
    start = datetime.now(UTC) - timedelta(hours=2)
    template = new_envelope(
        TickReceived(symbol="X", exchange="NASDAQ", price=Decimal(1), exchange_time=start, source="bench"),
        producer="bench",
    )
    doc = orjson.loads(encode(template))
    out: list[tuple[bytes, bytes]] = []
    for i in range(n):
        j = i % instruments
        prices[j] = max(Decimal("0.01"), prices[j] + Decimal(rng.randint(-5, 5)) / 100)
        doc["data"] = {
            "symbol": symbols[j],
            "exchange": "NASDAQ",
            "price": str(prices[j]),
            "volume": rng.randint(1, 500),
            "exchange_time": (start + timedelta(milliseconds=10 * i)).isoformat(),
            "source": "bench",
            "previous_close": None,
            "sequence": i,
        }
        out.append((instrument_id("NASDAQ", symbols[j]).encode(), orjson.dumps(doc)))
    return out


async def fill(settings: Settings, records: list[tuple[bytes, bytes]]) -> Rate:
    """Produce every record onto the ticks topic in bursts (few, large batches per partition)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        linger_ms=20,
        max_batch_size=1_000_000,
        acks="all",
        enable_idempotence=False,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for i in range(0, len(records), BURST):
            futures = [await producer.send(TICKS.name, value=v, key=k) for k, v in records[i : i + BURST]]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return Rate(len(records), time.perf_counter() - started)


async def end_offsets(settings: Settings) -> dict[TopicPartition, int]:
    """The end offset of every ticks partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(TICKS.name, p) for p in sorted(consumer.partitions_for_topic(TICKS.name) or ())]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def committed_total(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> int:
    """Sum of the committed offsets of the group over ``tps``."""
    total = 0
    for tp in tps:
        total += await consumer.committed(tp) or 0
    return total


async def service_consume(settings: Settings, end: dict[TopicPartition, int], run_dir: Path) -> Rate | None:
    """Start the quotes service on the filled topic; rate from its first commit until it is caught up."""
    target = sum(end.values())
    env = {k: v for k, v in os.environ.items() if k.startswith("NEWSROOM_")}
    stack = Stack(broker_port=0, redis_port=None, run_dir=run_dir, quiet=True)
    watcher = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=GROUP)
    await watcher.start()
    tps = list(end)
    try:
        proc = stack.start_service("quotes", env)
        deadline = time.monotonic() + SERVICE_TIMEOUT_S
        first: tuple[float, int] | None = None
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                print(f"quotes service exited with {proc.popen.returncode}; see {run_dir}/quotes.log")
                return None
            done = await committed_total(watcher, tps)
            stamp = time.perf_counter()
            if first is None and done > 0:
                first = (stamp, done)
            if done >= target and first is not None:
                return Rate(target - first[1], stamp - first[0])
            await asyncio.sleep(0.05)
        print(f"quotes service did not catch up within {SERVICE_TIMEOUT_S:.0f}s")
        return None
    finally:
        await watcher.stop()
        await asyncio.to_thread(stack.stop)


def in_process(settings: Settings, records: list[Any]) -> Rate:
    """The handler's hot path alone: ingest in batches of 5000 and release due snapshots after each."""
    book = QuoteBook(**book_config(settings))
    ingest(book, records[:1])  # load the calendar outside the timing
    book = QuoteBook(**book_config(settings))
    started = time.perf_counter()
    snapshots = 0
    for i in range(0, len(records), 5000):
        ingest(book, records[i : i + 5000])
        snapshots += len(book.due(datetime.now(UTC)))
    return Rate(len(records), time.perf_counter() - started)


def show(label: str, rate: Rate) -> None:
    """Print one measured rate."""
    print(f"{label:<22}{rate.per_second:>10,.0f} ticks/s ({rate.records:,} in {rate.seconds:.2f}s)")


def main() -> None:
    with embedded() as settings, tempfile.TemporaryDirectory(prefix="bench-quotes-") as tmp:
        started = time.perf_counter()
        records = tick_values(TICKS_TOTAL, INSTRUMENTS)
        elapsed = time.perf_counter() - started
        print(f"generated {len(records):,} ticks over {INSTRUMENTS} instruments in {elapsed:.1f}s")
        show("produced (bursts):", asyncio.run(fill(settings, records)))
        end = asyncio.run(end_offsets(settings))
        print("partition ends:", {tp.partition: off for tp, off in sorted(end.items())})
        raw, consumed = asyncio.run(raw_consume(settings, TICKS.name, keep=True))
        show("raw aiokafka consume:", raw)
        show("in-process handler:", in_process(settings, consumed))
        service = asyncio.run(service_consume(settings, end, Path(tmp)))
        if service is None:
            return
        show("quotes service:", service)
        ratio = service.per_second / raw.per_second if raw.per_second else 0.0
        verdict = "meets" if ratio >= 0.5 and service.per_second >= 50_000 else "MISSES"
        print(f"service / raw = {ratio:.2f} (goal >= 0.5 and >= 50,000 ticks/s: {verdict})")


if __name__ == "__main__":
    main()
