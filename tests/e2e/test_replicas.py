"""Two replicas of every article service (two ingestion APIs, two enrichment, two rendering), one of
each killed with SIGKILL mid-load, under a stack of its own: every accepted article reaches the site,
once, and nothing accepted is lost while the survivors take the dead replicas' partitions over."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from newsroom.cli.stack import Proc, free_port, private_stack, wait_ready
from newsroom.common.events import ArticleSubmitted, decode
from newsroom.common.reading import read_topic
from newsroom.common.redis_client import connect
from newsroom.common.store import Pointers
from newsroom.common.topics import ARTICLES
from tests.conftest import API_KEY, RunningStack, poll

pytestmark = pytest.mark.stack

PORT_SETTING = {"ingestion": "NEWSROOM_API_PORT", "enrichment": "NEWSROOM_ENRICHMENT_PORT",
                "rendering": "NEWSROOM_RENDERING_PORT"}  # fmt: skip


@dataclass
class Replicated:
    """A stack with a second replica of each article service, and where each replica's API listens."""

    stack: RunningStack
    replicas: dict[str, list[tuple[Proc, int]]]  # service -> [(process, port)], the first started first


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicated]:
    """A whole stack of this module's own, each article service started twice, so replicas can be killed."""
    extra = {"NEWSROOM_ENVIRONMENT": "test", "NEWSROOM_API_KEYS": API_KEY, "NEWSROOM_DEMO_SIMULATE": "0"}
    with private_stack(tmp_path_factory.mktemp("replicas"), extra) as (settings, env, stack):
        stack.start_services(settings, env)
        replicas: dict[str, list[tuple[Proc, int]]] = {}
        for name, setting in PORT_SETTING.items():
            first = next(p for p in stack.procs if p.name == name)
            port = free_port()
            second = stack.start_service(name, {**env, setting: str(port)})
            wait_ready(f"http://127.0.0.1:{port}/readyz", 120, second)
            replicas[name] = [(first, settings.port_of(name)), (second, port)]
        yield Replicated(RunningStack(settings, env, stack), replicas)


def article(n: int) -> dict[str, Any]:
    return {
        "headline": f"Replica story {n} {uuid.uuid4().hex[:8]}",
        "body": f"Intel Corp. (NASDAQ: INTC) and Advanced Micro Devices (NASDAQ: AMD) moved. Item {n}.",
        "source": "replica-test",
        "id": uuid.uuid4().hex,
        "published_at": datetime.now(UTC).isoformat(),
    }


def kill(replicated: Replicated, service: str, which: int) -> None:
    """SIGKILL one replica of ``service``: no drain, no commit, no leaving the group."""
    proc, _ = replicated.replicas[service][which]
    proc.popen.send_signal(signal.SIGKILL)
    proc.popen.wait(10)
    replicated.stack.stack.procs.remove(proc)


async def submissions(stack: RunningStack) -> list[str]:
    """The article id of every ArticleSubmitted on the log."""
    found: list[str] = []
    async for batch in read_topic(stack.settings, ARTICLES.name):
        for rec in batch:
            data = decode(rec.value).data
            if isinstance(data, ArticleSubmitted):
                found.append(data.article_id)
    return found


async def latest(stack: RunningStack) -> list[str]:
    """The article ids of the site's latest list, as served."""
    redis = connect(stack.settings.redis_url)
    try:
        active, _ = await Pointers(stack.settings.template_version).read(redis)
        assert active is not None
        members = await redis.zrange(f"{active}:z:latest", 0, -1)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]
    finally:
        await redis.aclose()


def test_killing_a_replica_of_each_service_mid_load_loses_nothing(replicated: Replicated) -> None:
    """Articles posted through both APIs while one enrichment and one rendering replica (and an API) are
    killed all appear on the site, each once: the survivors take the partitions over."""
    stack = replicated.stack
    apis = [f"http://127.0.0.1:{port}" for _, port in replicated.replicas["ingestion"]]
    accepted: dict[str, str] = {}  # article id -> its page
    with httpx.Client(timeout=60, headers=stack.auth()) as client:
        for n in range(240):
            if n == 80:
                kill(replicated, "enrichment", 0)
                kill(replicated, "rendering", 1)
            if n == 160:
                kill(replicated, "ingestion", 1)
            api = apis[0] if n >= 160 else apis[n % 2]
            r = client.post(f"{api}/v1/articles", json=article(n))
            assert r.status_code == 202, r.text
            accepted[r.json()["article_id"]] = r.json()["url"]

    def missing() -> list[str]:
        return [p for p in accepted.values() if httpx.get(stack.web + p, timeout=10).status_code != 200]

    assert poll(missing, lambda left: not left, timeout=180) == []
    on_log = asyncio.run(submissions(stack))
    assert sorted(a for a in on_log if a in accepted) == sorted(accepted)  # each accepted article once
    listed = asyncio.run(latest(stack))
    assert set(accepted) <= set(listed)
    assert len(listed) == len(set(listed))
