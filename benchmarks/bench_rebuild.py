"""Fragments rebuild throughput: enriched events/s rendered into an empty Redis, against raw aiokafka consume.

Run ``python -m benchmarks.bench_rebuild [--count N]`` from the checkout (N defaults to 100,000). On a
private embedded broker and Redis (no services) it fills the enriched topic with ``N``
``ArticleEnriched`` events — bodies of 3–5 KB naming a few instruments, tagged once per body
template by the real tagger, each article with its own id, slug, headline and time — published in
bursts with :class:`~newsroom.common.messaging.Publisher`. Then, in the same run:

* **raw**: a plain ``AIOKafkaConsumer`` reading the whole topic with ``getmany`` (decoding nothing);
* **rebuild**: :func:`newsroom.cli.rebuild.rebuild_fragments` — the blue/green rebuild the
  ``newsroom rebuild fragments`` command runs (decode, render, write every fragment, switch).

Goal: rebuild at least 0.3 of the raw rate. Prints both rates, the ratio, the wall times and where the
rebuild's CPU went (this process and its workers, Redis, the broker); asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta

from faststream.kafka import KafkaBroker

from benchmarks._infra import CpuSplit, Rate, embedded, raw_consume
from newsroom.common.events import ArticleContent, ArticleEnriched, new_envelope
from newsroom.common.messaging import Outgoing, Publisher
from newsroom.common.settings import Settings
from newsroom.common.topics import ENRICHED
from newsroom.rendering.rebuild import CHUNK

DEFAULT_COUNT = 100_000
BURST = 2_000
TEMPLATES = 24

COMPANIES = [
    "Intel Corp. (NASDAQ: INTC)", "Advanced Micro Devices, Inc. (NASDAQ: AMD)", "NVIDIA Corp. (NASDAQ: NVDA)",
    "Apple Inc. (NASDAQ: AAPL)", "Microsoft Corp. (NASDAQ: MSFT)", "Caterpillar Inc. (NYSE: CAT)",
    "Bank of America Corp. (NYSE: BAC)", "Oracle Corp. (NYSE: ORCL)", "Tesla, Inc. (NASDAQ: TSLA)",
    "Amazon.com, Inc. (NASDAQ: AMZN)", "Meta Platforms, Inc. (NASDAQ: META)", "Alphabet Inc. (NASDAQ: GOOG)",
]  # fmt: skip
FILLER = (
    "Trading volumes were above their thirty-day average as investors weighed the outlook for demand, "
    "margins and capital spending in the second half, while analysts revised their estimates. "
)


def body_text(rng: random.Random) -> str:
    """3–5 KB of paragraphs naming three or four companies."""
    named = rng.sample(COMPANIES, rng.randint(3, 4))
    paras = []
    size = 0
    target = rng.randint(3000, 5000)
    i = 0
    while size < target:
        lead = f"{named[i % len(named)]} shares moved on the session. " if i < len(named) * 2 else ""
        para = lead + FILLER * rng.randint(1, 3)
        paras.append(para.strip())
        size += len(para)
        i += 1
    return "\n\n".join(paras)


async def templates(n: int) -> list[ArticleEnriched]:
    """``n`` enriched articles tagged by the real tagger over the bundled security master."""
    from newsroom.enrichment.enricher import Enricher
    from newsroom.enrichment.master import build_master

    enricher = Enricher()
    await enricher.update(build_master())
    rng = random.Random(7)
    out = []
    for i in range(n):
        text = body_text(rng)
        body_html = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
        article = ArticleContent(
            article_id=f"tmpl{i}", revision=1, headline=f"Template {i}", body_html=body_html, source="bench",
            published_at=datetime(2026, 1, 1, tzinfo=UTC), content_hash=f"h{i}", slug=f"template-{i}",
        )  # fmt: skip
        out.append(enricher.enrich_payload(article))
    return out


def article_events(n: int, base: list[ArticleEnriched]) -> list[Outgoing]:
    """``n`` distinct articles built from the templates (own id, slug, headline and time)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[Outgoing] = []
    for i in range(n):
        t = base[i % len(base)]
        aid = f"bench{i:07d}"
        body_html = t.article.body_html + f"<p>Reference {aid}.</p>"  # every body differs; mentions stay put
        article = t.article.model_copy(
            update={"article_id": aid, "slug": f"bench-story-{i}", "headline": f"Bench story number {i}",
                    "published_at": start + timedelta(seconds=i), "content_hash": f"h{i}",
                    "body_html": body_html}
        )  # fmt: skip
        out.append((ENRICHED, aid, new_envelope(t.model_copy(update={"article": article}), producer="bench")))
    return out


async def fill(settings: Settings, events: list[Outgoing]) -> Rate:
    """Publish every event in bursts, with batches large enough that the broker holds few of them."""
    broker = KafkaBroker(
        settings.bootstrap_servers,
        client_id="bench-rebuild",
        linger_ms=50,
        max_batch_size=1_000_000,
        max_request_size=4_000_000,
        enable_idempotence=False,
        acks="all",
        logger=None,
    )
    await broker.start()
    started = time.perf_counter()
    try:
        publisher = Publisher(broker, "bench")
        for i in range(0, len(events), BURST):
            await publisher.publish(events[i : i + BURST])
    finally:
        await broker.stop()
    return Rate(len(events), time.perf_counter() - started)


async def run(settings: Settings, count: int, chunk: int, workers: int | None) -> None:
    """Fill the topic, then measure raw consume and the rebuild over it."""
    base = await templates(TEMPLATES)
    events = article_events(count, base)
    sizes = [len(t.article.body_html) for t in base]
    tickers = [len(t.tickers) for t in base]
    print(f"articles: {count:,}; body {min(sizes):,}–{max(sizes):,} bytes; "
          f"tickers per article {min(tickers)}–{max(tickers)}")  # fmt: skip
    filled = await fill(settings, events)
    del events
    print(f"fill:    {filled.per_second:,.0f} events/s ({filled.seconds:.1f} s)")
    raw, _ = await raw_consume(settings, ENRICHED.name)
    print(f"raw:     {raw.per_second:,.0f} records/s ({raw.records:,} in {raw.seconds:.1f} s)")

    from newsroom.rendering.rebuild import rebuild_fragments

    cpu_before, started = CpuSplit.now(settings), time.perf_counter()
    summary = await rebuild_fragments(settings, chunk=chunk, workers=workers)
    wall = time.perf_counter() - started
    cpu = CpuSplit.now(settings) - cpu_before
    rebuilt = Rate(summary.articles + summary.skipped + summary.retractions, wall)
    print(f"rebuild: {rebuilt.per_second:,.0f} events/s ({rebuilt.records:,} in {wall:.1f} s; "
          f"namespace {summary.new_namespace}, switched={summary.switched})")  # fmt: skip
    ratio = rebuilt.per_second / raw.per_second if raw.per_second else 0.0
    print(f"ratio:   {ratio:.2f} of raw consume (goal >= 0.30)")
    print(f"         {cpu.per_event(rebuilt.records, wall)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--count", type=int, default=DEFAULT_COUNT, help=f"articles (default {DEFAULT_COUNT:,})"
    )
    parser.add_argument(
        "--chunk",
        type=int,
        default=CHUNK,
        help=f"events applied per atomic write (default: the CLI's, {CHUNK})",
    )
    parser.add_argument("--workers", type=int, default=None, help="rebuild processes (default: the CLI's)")
    args = parser.parse_args()
    with embedded() as settings:
        asyncio.run(run(settings, args.count, args.chunk, args.workers))


if __name__ == "__main__":
    main()
