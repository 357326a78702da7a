"""Soak: the whole stack at ``make run``'s rates for a while; how fresh do pages stay?

Runs every service on the embedded broker with the demo simulator publishing a burst of ten
ticks every NEWSROOM_DEMO_TICK_INTERVAL seconds (as ``make run`` does), plus an article every
ten seconds. Every few seconds a probe tick is published and timed until its snapshot is in
Redis; each article is timed until its page is served. Freshness is printed per quarter of
the run, so a trend (the embedded broker slowing as partitions fill with small batches) shows,
with records per partition at the end. Not a test: it reports, it does not judge.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks._infra import embedded
from newsroom.cli.core import publish_ticks
from newsroom.cli.stack import SERVICE_ORDER
from newsroom.common.events import QuoteUpdated, TickReceived
from newsroom.common.redis_client import connect
from newsroom.common.settings import Settings
from newsroom.common.store import Keys, Pointers
from newsroom.common.topics import ALL_TOPICS

SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "60"))
PROBE_EVERY = 3.0
ARTICLE_EVERY = 10.0


async def probe_tick(settings: Settings, keys: Keys, n: int) -> float:
    """Seconds from publishing a tick to its snapshot being in Redis."""
    redis = connect(settings.redis_url)
    price = Decimal(100) + Decimal(n) / 100
    started = time.perf_counter()
    tick = TickReceived(
        symbol="PRBE", exchange="NASDAQ", price=price, exchange_time=datetime.now(UTC), source="soak"
    )
    await publish_ticks(settings, [tick])
    try:
        while time.perf_counter() - started < 120:
            raw = await redis.get(keys.quote("NASDAQ:PRBE"))
            if raw and QuoteUpdated.model_validate_json(raw).price == price:
                return time.perf_counter() - started
            await asyncio.sleep(0.02)
        return float("inf")
    finally:
        await redis.aclose()


async def probe_article(settings: Settings, n: int) -> float:
    """Seconds from an accepted POST to its page being served."""
    async with httpx.AsyncClient(timeout=30) as client:
        started = time.perf_counter()
        body = {
            "headline": f"Soak story {n}",
            "body": f"Intel Corp. (NASDAQ: INTC) rose. {uuid.uuid4().hex}.",
            "source": "soak",
            "published_at": datetime.now(UTC).isoformat(),
        }
        auth = {"Authorization": f"Bearer {settings.api_keys[0].get_secret_value()}"}
        r = await client.post(f"http://127.0.0.1:{settings.api_port}/v1/articles", json=body, headers=auth)
        url = f"http://127.0.0.1:{settings.web_port}{r.json()['url']}"
        while time.perf_counter() - started < 120:
            if (await client.get(url)).status_code == 200:
                return time.perf_counter() - started
            await asyncio.sleep(0.02)
        return float("inf")


async def records_per_partition(settings: Settings) -> dict[str, list[int]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        out = {}
        for topic in ALL_TOPICS:
            tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
            end = await consumer.end_offsets(tps)
            out[topic.name] = [end[tp] for tp in tps]
        return out
    finally:
        await consumer.stop()


async def soak(settings: Settings) -> list[tuple[float, str, float]]:
    redis = connect(settings.redis_url)
    namespace, _ = await Pointers(settings.template_version).resolve(redis)
    await redis.aclose()
    keys = Keys(namespace)
    samples: list[tuple[float, str, float]] = []
    start = time.perf_counter()
    next_tick = next_article = 0.0
    n = 0
    while (elapsed := time.perf_counter() - start) < SECONDS:
        if elapsed >= next_tick:
            samples.append((elapsed, "tick", await probe_tick(settings, keys, n)))
            next_tick += PROBE_EVERY
        if elapsed >= next_article:
            samples.append((elapsed, "article", await probe_article(settings, n)))
            next_article += ARTICLE_EVERY
        n += 1
        await asyncio.sleep(0.1)
    return samples


def main() -> int:
    env = {"NEWSROOM_QUOTE_DELAY_MINUTES": "0"}  # freshness of the pipeline itself, not of the delay policy
    simulator = {"simulator": ["quotes", "simulate"]}
    with embedded(services=SERVICE_ORDER, extra_env=env, commands=simulator) as settings:
        samples = asyncio.run(soak(settings))
        partitions = asyncio.run(records_per_partition(settings))
    print(f"soak: {SECONDS:.0f}s at make run's rates (simulator every {settings.demo_tick_interval}s)")
    quarter = SECONDS / 4
    for kind in ("tick", "article"):
        for q in range(4):
            values = [v for t, k, v in samples if k == kind and q * quarter <= t < (q + 1) * quarter]
            if values:
                median, worst = statistics.median(values) * 1000, max(values) * 1000
                print(
                    f"  {kind:<7} freshness, quarter {q + 1}: median {median:7.0f} ms"
                    f"   max {worst:7.0f} ms   ({len(values)} probes)"
                )
    for topic, counts in partitions.items():
        print(f"  {topic:<28} records per partition {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
