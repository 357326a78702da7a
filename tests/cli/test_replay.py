"""``newsroom replay`` on the real broker: refuses live groups, dry-runs, moves only the group named."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer, TopicPartition

from newsroom.common.admin import (
    admin_client,
    commit_offsets,
    committed_offsets,
    partitions_of,
    plain_consumer,
)
from newsroom.common.reading import running, spans
from newsroom.common.settings import Settings
from newsroom.common.topics import ARTICLES, ENRICHED
from tests.cli.helpers import new_article, pipeline_idle
from tests.conftest import RunningStack, scratch_topic
from tests.fakes import newsroom, submit


async def offsets_of(settings: Settings, group: str, topic: str) -> dict[TopicPartition, int]:
    """The group's committed offsets on one topic."""
    async with admin_client(settings) as admin, running(plain_consumer(settings)) as consumer:
        return await committed_offsets(admin, group, partitions_of(consumer, [topic]))


async def log_span(settings: Settings, topic: str) -> dict[TopicPartition, tuple[int, int]]:
    """Start and end offsets of a topic's partitions."""
    consumer = plain_consumer(settings)
    await consumer.start()
    try:
        return {
            tp: (s.begin, s.end)
            for tp, s in (await spans(consumer, partitions_of(consumer, [topic]))).items()
        }
    finally:
        await consumer.stop()


async def idle_group(settings: Settings, topic: str) -> str:
    """A throwaway group that consumed ``topic`` to its end and committed, without ever joining."""
    group = f"replay-test-{uuid.uuid4().hex[:8]}"
    ends = {tp: end for tp, (_, end) in (await log_span(settings, topic)).items()}
    await commit_offsets(settings, group, ends)
    assert await offsets_of(settings, group, topic) == ends
    return group


async def test_replay_refuses_a_live_group(stack: RunningStack) -> None:
    """Moving the live renderer's group is refused and its offsets are not rewound."""
    submit(stack, new_article())
    await pipeline_idle(stack.settings)
    before = await offsets_of(stack.settings, "rendering-articles", ENRICHED.name)
    assert any(before.values())

    result = newsroom(stack, "replay", "--group", "rendering-articles", "--to-earliest")

    assert result.returncode == 2, result.stdout + result.stderr
    assert "refused" in result.stdout
    assert "live member" in result.stdout
    after = await offsets_of(stack.settings, "rendering-articles", ENRICHED.name)
    assert all(after[tp] >= off for tp, off in before.items())


async def test_a_forced_replay_of_a_live_group_the_broker_refuses_says_so(stack: RunningStack) -> None:
    """With --force the move is tried; the broker refusing it (live members) is a message, not a traceback."""
    submit(stack, new_article())
    await pipeline_idle(stack.settings)
    before = await offsets_of(stack.settings, "rendering-articles", ENRICHED.name)

    result = newsroom(stack, "replay", "--group", "rendering-articles", "--to-earliest", "--force")

    assert result.returncode == 3, result.stdout + result.stderr
    assert "refused the new offsets" in result.stdout
    assert "Traceback" not in result.stderr
    after = await offsets_of(stack.settings, "rendering-articles", ENRICHED.name)
    assert all(after[tp] >= off for tp, off in before.items())


async def test_replay_dry_run_prints_the_plan_and_commits_nothing(stack: RunningStack) -> None:
    """A dry run shows every partition's current and target offset and leaves the group where it was."""
    group = await idle_group(stack.settings, ARTICLES.name)
    before = await offsets_of(stack.settings, group, ARTICLES.name)

    result = newsroom(stack, "replay", "--group", group, "--to-earliest", "--dry-run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "dry run" in result.stdout
    assert ARTICLES.name in result.stdout
    assert await offsets_of(stack.settings, group, ARTICLES.name) == before


async def test_replay_moves_only_the_group_it_was_asked_to(stack: RunningStack) -> None:
    """An idle group goes back to the start of the log; another idle group and the live groups do not move."""
    settings = stack.settings
    moved, bystander = await idle_group(settings, ARTICLES.name), await idle_group(settings, ARTICLES.name)
    bystander_before = await offsets_of(settings, bystander, ARTICLES.name)
    live_before = await offsets_of(settings, "enrichment", ARTICLES.name)

    result = newsroom(stack, "replay", "--group", moved, "--to-earliest")

    assert result.returncode == 0, result.stdout + result.stderr
    starts = {tp: begin for tp, (begin, _) in (await log_span(settings, ARTICLES.name)).items()}
    assert await offsets_of(settings, moved, ARTICLES.name) == starts
    assert await offsets_of(settings, bystander, ARTICLES.name) == bystander_before
    live_after = await offsets_of(settings, "enrichment", ARTICLES.name)
    assert all(live_after[tp] >= off for tp, off in live_before.items())

    result = newsroom(stack, "replay", "--group", moved, "--shift-by", "1", "--topic", ARTICLES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    shifted = await offsets_of(settings, moved, ARTICLES.name)
    spans_now = await log_span(settings, ARTICLES.name)
    assert shifted == {tp: min(starts[tp] + 1, spans_now[tp][1]) for tp in starts}

    result = newsroom(stack, "replay", "--group", moved, "--to-datetime", "2999-01-01T00:00:00Z")
    assert result.returncode == 0, result.stdout + result.stderr
    assert await offsets_of(settings, moved, ARTICLES.name) == {tp: end for tp, (_, end) in spans_now.items()}


async def test_a_group_at_the_end_of_the_log_is_not_moved_back(stack: RunningStack) -> None:
    """A group that read a partition to its end stays there when shifted forward or sent to the latest.

    The partition's records share one batch, whose first offset + 1 the embedded broker reports as the
    end: taken at its word, the moves went back and the group would read records again.
    """
    topic = await scratch_topic(stack.settings, "ends")
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers, linger_ms=100)
    await producer.start()
    try:
        sent = [await producer.send(topic, b"x") for _ in range(5)]  # one batch
        await producer.flush()
        assert [(await s).offset for s in sent] == [0, 1, 2, 3, 4]
    finally:
        await producer.stop()
    group = f"replay-test-{uuid.uuid4().hex[:8]}"
    end = {TopicPartition(topic, 0): 5}
    await commit_offsets(stack.settings, group, end)

    for move in (["--shift-by", "2"], ["--to-latest"], ["--to-datetime", "2999-01-01T00:00:00Z"]):
        result = newsroom(stack, "replay", "--group", group, "--topic", topic, *move)
        assert result.returncode == 0, result.stdout + result.stderr
        assert await offsets_of(stack.settings, group, topic) == end, move
