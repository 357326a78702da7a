"""SIGTERM: a service stops consuming, finishes what it holds, commits and exits cleanly."""

from __future__ import annotations

import httpx

from newsroom.cli.stack import stop_process, wait_ready
from newsroom.common.lag import lag_rows
from newsroom.common.topics import ARTICLES
from tests.conftest import RunningStack, poll, publish_and_wait
from tests.fakes import new_article


async def _lag(stack: RunningStack, group: str) -> int:
    """The group's lag on the articles topic, against the partitions' real ends (the embedded broker
    reports an end short of a partition's last batch, which made this negative)."""
    rows = await lag_rows(stack.settings, [group])
    committed = {row.tp for row in rows if row.tp.topic == ARTICLES.name}
    assert committed  # a group that has committed nothing would have no lag to measure
    return sum(row.end - row.committed for row in rows if row.tp.topic == ARTICLES.name)


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
