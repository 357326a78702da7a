"""Operator commands over the real broker: rebuild enrichment, topics, tail, lag, status and demo."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from newsroom.common.reading import read_topic, to_ms
from newsroom.common.redis_client import connect
from newsroom.common.topics import ARTICLES, DEAD_LETTERS, ENRICHED
from newsroom.rendering.writer import stored_from_meta
from tests.cli.helpers import active_namespace, new_article, pipeline_idle
from tests.conftest import RunningStack, apoll, poll, scratch_topic
from tests.fakes import newsroom, send_batch, submit, submit_too_rich


async def enrichment_revision(redis: aioredis.Redis, namespace: str, article_id: str) -> int:
    """The enrichment revision the renderer last applied to an article (0 if none)."""
    version = stored_from_meta(await redis.get(f"{namespace}:meta:{article_id}")).version
    return version[1] if version else 0


async def test_rebuild_enrichment_publishes_new_revisions_the_renderer_applies(stack: RunningStack) -> None:
    """Re-tagging publishes enrichment revision 2 for a live article and the renderer renders it."""
    article_id, path = submit(stack, new_article())
    await pipeline_idle(stack.settings)
    dry = newsroom(stack, "rebuild", "enrichment", "--dry-run", "--no-progress")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run" in dry.stdout

    result = newsroom(stack, "rebuild", "enrichment", "--no-progress")

    assert result.returncode == 0, result.stdout + result.stderr
    redis = connect(stack.settings.redis_url)
    try:
        ns = await active_namespace(stack.settings)
        await apoll(partial(enrichment_revision, redis, ns, article_id), lambda erev: erev >= 2, timeout=60)
    finally:
        await redis.aclose()
    poll(lambda: httpx.get(stack.web + path), lambda r: r.status_code == 200 and "NASDAQ:AMD" in r.text)


async def test_rebuild_enrichment_leaves_an_article_too_large_to_publish_alone(stack: RunningStack) -> None:
    """Re-tagging goes through an article whose enriched event no broker takes, and says so."""
    await submit_too_rich(stack)
    await apoll(lambda: dead_letter_keys(stack), lambda keys: any(k.startswith("huge-") for k in keys))
    for args in (("--dry-run",), ()):
        result = newsroom(stack, "rebuild", "enrichment", "--no-progress", *args)
        assert result.returncode == 0, result.stdout + result.stderr
        (row,) = [line for line in result.stdout.splitlines() if line.startswith("│ too large to publish")]
        assert int(row.split("│")[2].strip().replace(",", "")) >= 1


async def dead_letter_keys(stack: RunningStack) -> set[str]:
    keys = set()
    async for batch in read_topic(stack.settings, DEAD_LETTERS.name):
        keys |= {rec.key.decode("utf-8", "replace") for rec in batch if rec.key}
    return keys


def test_topics_tail_lag_and_status_show_the_pipeline(stack: RunningStack) -> None:
    """The listing commands answer with the topics, a decoded event, the groups and the services."""
    article_id, _ = submit(stack, new_article())
    described = newsroom(stack, "topics")
    assert described.returncode == 0, described.stderr
    assert ENRICHED.name in described.stdout
    tail = newsroom(stack, "tail", ARTICLES.name, "--key", article_id, "--limit", "1")
    assert tail.returncode == 0, tail.stderr
    assert "ArticleSubmitted" in tail.stdout
    assert article_id in tail.stdout
    lag = poll(lambda: newsroom(stack, "lag"), lambda r: "rendering-articles" in r.stdout)
    assert lag.returncode == 0
    status = newsroom(stack, "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("ready") >= 5
    assert "dead letters" in status.stdout


def test_a_missing_topic_is_named_not_a_traceback(stack: RunningStack) -> None:
    """Tailing a topic the broker does not have says so, and shows no traceback."""
    missing = f"newsroom.no-such-topic-{uuid.uuid4().hex}"
    tail = newsroom(stack, "tail", missing)
    assert tail.returncode != 0
    assert f"no topic {missing}" in tail.stderr
    assert "Traceback" not in tail.stderr


async def test_tail_from_a_time_leaves_out_older_records_of_the_same_batch(stack: RunningStack) -> None:
    """Records written before the --from time are not shown, even when they share a batch with later ones."""
    topic = await scratch_topic(stack.settings, "tail")
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers, linger_ms=100)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, f"at +{i * 10}s".encode(), timestamp_ms=to_ms(start) + i * 10_000)
            for i in range(3)
        ]  # one batch
        await producer.flush()
        assert [(await s).offset for s in sent] == [0, 1, 2]
    finally:
        await producer.stop()

    later = start + timedelta(seconds=15)
    shown = [rec.value async for batch in read_topic(stack.settings, topic, start=later) for rec in batch]

    assert shown == [b"at +20s"]


def test_demo_dry_run_lists_the_content_and_sends_nothing(stack: RunningStack) -> None:
    """The demo's dry run names its articles and leaves the articles topic as it was."""
    before = newsroom(stack, "topics", "--exact")
    result = newsroom(stack, "demo", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Rising Sun, Record Highs" in result.stdout
    assert "nothing sent" in result.stdout
    after = newsroom(stack, "topics", "--exact")
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    articles = [line for line in after.stdout.splitlines() if f" {ARTICLES.name} " in line]
    assert articles
    assert articles == [line for line in before.stdout.splitlines() if f" {ARTICLES.name} " in line]


def test_redriving_a_dead_letter_that_is_not_there_says_so(stack: RunningStack) -> None:
    """Asking to redrive an offset the dead-letter topic does not hold is an error that names it."""
    result = newsroom(stack, "dlq", "redrive", "--offset", "999999999", "--dry-run")
    assert result.returncode == 1
    assert "no dead letter at offset(s) 999999999" in result.stdout


async def test_tail_reads_a_last_batch_larger_than_a_fetch_to_its_end(stack: RunningStack) -> None:
    """All of a 1,500-record final batch is read (1,000 per fetch), and --from latest shows none of it."""
    topic = await scratch_topic(stack.settings, "big-batch")
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers, max_batch_size=1_000_000)
    await producer.start()
    try:
        await send_batch(producer, topic, range(1500))
    finally:
        await producer.stop()

    read = [rec.offset async for batch in read_topic(stack.settings, topic) for rec in batch]
    latest = [
        rec.offset async for batch in read_topic(stack.settings, topic, start="latest") for rec in batch
    ]

    assert read == list(range(1500))
    assert latest == []
