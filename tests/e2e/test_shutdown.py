"""SIGTERM: a service stops consuming, finishes what it holds, commits and exits cleanly."""

from __future__ import annotations

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from newsroom.cli.stack import stop_process, wait_ready
from newsroom.common.topics import ARTICLES
from tests.conftest import RunningStack, poll, publish_and_wait
from tests.ingestion.test_api import new_article


async def _lag(stack: RunningStack, group: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.settings.bootstrap_servers, group_id=group)
    await consumer.start()
    try:
        tps = [TopicPartition(ARTICLES.name, p) for p in range(ARTICLES.partitions)]
        end = await consumer.end_offsets(tps)
        lag = 0
        for tp in tps:
            committed = await consumer.committed(tp) or 0
            lag += end[tp] - committed
        return lag
    finally:
        await consumer.stop()


async def test_sigterm_commits_and_a_restart_resumes(stack: RunningStack) -> None:
    """Enrichment exits 0 on SIGTERM with all it consumed committed; a new process picks up new work."""
    publish_and_wait(stack, new_article())

    proc = next(p for p in stack.stack.procs if p.name == "enrichment")
    assert stop_process(proc.popen) == 0
    stack.stack.procs.remove(proc)
    assert await _lag(stack, "enrichment") == 0

    r = httpx.post(f"{stack.api}/v1/articles", json=new_article(), headers=stack.auth())
    second = r.json()["url"]
    restarted = stack.stack.start_service("enrichment", stack.env)
    wait_ready(f"http://127.0.0.1:{stack.settings.enrichment_port}/readyz", 120, restarted)
    poll(lambda: httpx.get(stack.web + second), lambda resp: resp.status_code == 200)
