"""Ingestion throughput: articles/s accepted by the API into Kafka, against raw aiokafka produce.

Run ``python -m benchmarks.bench_ingestion``. It starts a private broker and the ingestion service,
generates ~400-word articles, then times, in the same run:

* raw produce: aiokafka sending the very events the API would publish (encoded up front), acks=all;
* the batch endpoint: ``POST /v1/articles:batch``, 200 articles a request, two requests in flight;
* single submissions: ``POST /v1/articles``, eight requests in flight (a smaller sample).

An API answer means the events were acknowledged by the broker, so both sides count articles
durably in Kafka. Nothing is asserted; the run is bounded (well under two minutes).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from benchmarks._infra import embedded
from newsroom.common.admin import ensure_topics
from newsroom.common.events import encode, new_envelope
from newsroom.common.settings import Settings
from newsroom.common.topics import Topic
from newsroom.ingestion.domain import ArticleIn, ArticleRegistry

BATCH_ARTICLES = 3000
SINGLE_ARTICLES = 400
BATCH_SIZE = 200
BATCH_IN_FLIGHT = 2
SINGLE_IN_FLIGHT = 8
WORDS = 400
RAW_TOPIC = Topic("bench.ingestion.raw", partitions=3, key="article id", events=())
FILLER = (
    "shares rose in early trade as investors weighed the outlook for rates and earnings while analysts "
    "said demand for chips stayed strong and the company raised its forecast for the year the market "
    "closed higher after a volatile session with energy and financial stocks leading gains"
)
NAMES = ("Intel Corp. (NASDAQ: INTC)", "Advantest Corp. (TYO: 6857)", "Caterpillar Inc. (NYSE: CAT)")
VOCABULARY = (*FILLER.split(), *NAMES)


def make_articles(count: int, prefix: str, seed: int) -> list[dict[str, Any]]:
    """``count`` distinct articles in the API's JSON shape."""
    rng = random.Random(seed)  # reproducible text, not security
    out = []
    for i in range(count):
        paragraphs = [" ".join(rng.choices(VOCABULARY, k=WORDS // 4)) + "." for _ in range(4)]
        out.append(
            {
                "headline": f"Markets update {prefix}-{i}: chips lead gains",
                "body": "\n\n".join(paragraphs),
                "source": "bench",
                "id": f"{prefix}-{i}",
                "published_at": "2026-01-13T09:00:00Z",
                "tickers": ["INTC", "CAT"],
            }
        )
    return out


def encoded_events(articles: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """(key, value) of the events the API would publish for ``articles``."""
    registry = ArticleRegistry()
    out = []
    for article in articles:
        decision = registry.submit(ArticleIn.model_validate(article))
        assert decision.event is not None  # every generated article is new
        registry.apply(decision.event)
        out.append((decision.article_id.encode(), encode(new_envelope(decision.event, producer="bench"))))
    return out


async def raw_produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> float:
    """Articles/s of aiokafka producing ``records`` (same producer settings as the services)."""
    await ensure_topics(settings, (RAW_TOPIC,))
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        linger_ms=settings.linger_ms,
        acks="all",
        enable_idempotence=False,
        max_request_size=4_000_000,
    )
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(RAW_TOPIC.name, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return len(records) / elapsed


async def api_batches(api: str, key: str, articles: list[dict[str, Any]]) -> float:
    """Articles/s through ``POST /v1/articles:batch``."""
    chunks = [articles[i : i + BATCH_SIZE] for i in range(0, len(articles), BATCH_SIZE)]
    gate = asyncio.Semaphore(BATCH_IN_FLIGHT)
    async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {key}"}) as http:

        async def send(chunk: list[dict[str, Any]]) -> int:
            async with gate:
                response = await http.post(
                    f"{api}/v1/articles:batch",
                    content=orjson.dumps({"articles": chunk}),
                    headers={"Content-Type": "application/json"},
                )
                response.raise_for_status()
                return sum(1 for r in response.json()["results"] if r["outcome"] == "accepted")

        started = time.perf_counter()
        accepted = sum(await asyncio.gather(*(send(c) for c in chunks)))
        elapsed = time.perf_counter() - started
    if accepted != len(articles):
        print(f"warning: only {accepted} of {len(articles)} batch articles were accepted")
    return accepted / elapsed


async def api_singles(api: str, key: str, articles: list[dict[str, Any]]) -> float:
    """Articles/s through ``POST /v1/articles``, one article a request."""
    gate = asyncio.Semaphore(SINGLE_IN_FLIGHT)
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {key}"}) as http:

        async def send(article: dict[str, Any]) -> bool:
            async with gate:
                response = await http.post(f"{api}/v1/articles", json=article)
                return response.status_code == 202

        started = time.perf_counter()
        accepted = sum(await asyncio.gather(*(send(a) for a in articles)))
        elapsed = time.perf_counter() - started
    return accepted / elapsed


def main() -> None:
    batch_articles = make_articles(BATCH_ARTICLES, "b", seed=1)
    single_articles = make_articles(SINGLE_ARTICLES, "s", seed=2)
    records = encoded_events(batch_articles)
    size = sum(len(v) for _, v in records) / len(records)
    with embedded(services=("ingestion",)) as settings:
        api = f"http://127.0.0.1:{settings.api_port}"
        key = settings.api_keys[0].get_secret_value()
        raw = asyncio.run(raw_produce(settings, records))
        batch = asyncio.run(api_batches(api, key, batch_articles))
        single = asyncio.run(api_singles(api, key, single_articles))
    print(
        f"articles: {len(batch_articles)} raw and batch, {len(single_articles)} single; {size:,.0f} B/event"
    )
    print(f"raw aiokafka produce:   {raw:>9,.0f} articles/s")
    print(f"API batch endpoint:     {batch:>9,.0f} articles/s  (ratio to raw {batch / raw:.3f})")
    print(f"API single POSTs:       {single:>9,.0f} articles/s  (ratio to raw {single / raw:.3f})")


if __name__ == "__main__":
    main()
