"""The embedded broker killed and started again (empty: it keeps its log in memory), under a stack of
its own: the API answers 503 without hanging, readiness says so, and the stack carries on by itself."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsroom.cli.stack import private_stack
from tests.conftest import API_KEY, RunningStack, poll

CONSUMERS = ("enrichment", "quotes", "rendering")

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A whole stack of this module's own, so its broker can be killed without harm to other tests."""
    extra = {"NEWSROOM_ENVIRONMENT": "test", "NEWSROOM_API_KEYS": API_KEY, "NEWSROOM_DEMO_SIMULATE": "0"}
    with private_stack(tmp_path_factory.mktemp("restart"), extra) as (settings, env, stack):
        stack.start_services(settings, env)
        yield RunningStack(settings, env, stack)


def article(tag: str) -> dict[str, Any]:
    return {
        "headline": f"Restart story {tag} {uuid.uuid4().hex[:8]}",
        "body": "Intel Corp. (NASDAQ: INTC) said it would build another plant.",
        "source": "restart-test",
        "id": uuid.uuid4().hex,
        "published_at": datetime.now(UTC).isoformat(),
    }


def post(stack: RunningStack, body: dict[str, Any]) -> httpx.Response:
    # a generous client timeout: a request that hangs fails the test instead of blocking it
    return httpx.post(f"{stack.api}/v1/articles", json=body, headers=stack.auth(), timeout=60)


def post_as_a_client_would(stack: RunningStack, body: dict[str, Any]) -> httpx.Response:
    """Post, and post again while the answer is 503 with Retry-After (as the API asks), for a while."""
    return poll(lambda: post(stack, body), lambda r: r.status_code != 503 or "retry-after" not in r.headers)


def readiness(stack: RunningStack) -> dict[str, int]:
    out = {}
    for name in (*CONSUMERS, "ingestion"):
        try:
            url = f"http://127.0.0.1:{stack.settings.port_of(name)}/readyz"
            out[name] = httpx.get(url, timeout=10).status_code
        except httpx.HTTPError:
            out[name] = 0
    return out


def on_site(stack: RunningStack, paths: list[str]) -> list[str]:
    return [p for p in paths if httpx.get(stack.web + p, timeout=10).status_code != 200]


def test_after_a_broker_restart_accepted_work_reaches_the_site(own_stack: RunningStack) -> None:
    """While the broker is away the API says 503 with Retry-After and readiness fails; once it is back
    (empty) every service says the log was lost, is ready again by itself, and new articles appear."""
    stack = own_stack
    before = [post(stack, article(f"before {i}")) for i in range(30)]
    assert {r.status_code for r in before} == {202}
    paths = [r.json()["url"] for r in before]
    poll(lambda: on_site(stack, paths), lambda missing: not missing, timeout=120)

    broker = next(p for p in stack.stack.procs if p.name == "broker")
    broker.popen.send_signal(signal.SIGKILL)
    broker.popen.wait(10)
    stack.stack.procs.remove(broker)

    refused = post(stack, article("while down"))
    assert refused.status_code == 503, refused.text
    assert refused.headers.get("retry-after")
    poll(lambda: readiness(stack), lambda r: all(code == 503 for code in r.values()), timeout=60)

    stack.stack.start_broker()
    poll(lambda: readiness(stack), lambda r: all(code == 200 for code in r.values()), timeout=120)
    after = [post_as_a_client_would(stack, article(f"after {i}")) for i in range(30)]
    assert {r.status_code for r in after} == {202}, [r.text for r in after if r.status_code != 202]
    paths = [r.json()["url"] for r in after]
    poll(lambda: on_site(stack, paths), lambda missing: not missing, timeout=120)

    run_dir = Path(stack.settings.run_dir)
    for name in ("ingestion", *CONSUMERS):
        assert "the broker has lost its log" in (run_dir / f"{name}.log").read_text(), name


def test_a_redis_that_comes_back_empty_is_rebuilt_from_the_log(own_stack: RunningStack) -> None:
    """While Redis is down the renderer and the web tier are not ready; when it is back empty the renderer
    rebuilds the site from the log by itself, and the articles are served again."""
    stack = own_stack
    posted = [post(stack, article(f"kept {i}")) for i in range(5)]
    assert {r.status_code for r in posted} == {202}
    paths = [r.json()["url"] for r in posted]
    poll(lambda: on_site(stack, paths), lambda missing: not missing, timeout=120)
    web_ready = f"{stack.web}/readyz"

    redis = next(p for p in stack.stack.procs if p.name == "redis")
    redis.popen.send_signal(signal.SIGKILL)
    redis.popen.wait(10)
    stack.stack.procs.remove(redis)
    poll(lambda: (readiness(stack)["rendering"], httpx.get(web_ready).status_code), lambda s: s == (503, 503))

    stack.stack.start_redis()  # a new, empty Redis on the same port
    poll(lambda: on_site(stack, paths), lambda missing: not missing, timeout=180)
    poll(lambda: (readiness(stack)["rendering"], httpx.get(web_ready).status_code), lambda s: s == (200, 200))
    logged = (Path(stack.settings.run_dir) / "rendering.log").read_text()
    assert "the site is gone from the store; rebuilding it from the log" in logged
