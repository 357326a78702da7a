"""Shared fixtures: the real embedded broker, a private Redis and the service processes.

The stack is started once per test session on free ports and stopped at the end; tests
that need it ask for ``stack``. Tests isolate themselves by using their own article ids.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from newsroom.cli.stack import Stack, private_stack
from newsroom.common.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SEED_TEXT = REPO.parent / "shared" / "seed" / "nikkei-record-article.txt"
API_KEY = "test-key-0123456789"
T = TypeVar("T")


STACK_FIXTURES = frozenset({"stack", "infra"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the real broker and Redis are marked ``stack``: ``pytest -m "not stack"`` is the fast tier."""
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"the shared corpus is absent ({SHARED_DATA}); it sits beside the checkout in this workspace"
        )
    return SHARED_DATA


async def scratch_topic(settings: Settings, purpose: str) -> str:
    """A new one-partition topic of this test's own, named after ``purpose``."""
    topic = f"newsroom.test-{purpose}-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    return topic


def poll(
    fetch: Callable[[], T], until: Callable[[T], bool], timeout: float = 60.0, interval: float = 0.2
) -> T:
    """Call ``fetch`` until ``until`` accepts its result, or fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fetch()
            if until(last):
                return last
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout:.0f}s; last value: {str(last)[:500]}")


async def apoll(
    fetch: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    timeout: float = 60.0,
    interval: float = 0.2,
) -> T:
    """The async twin of :func:`poll`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await fetch()
        if until(last):
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout:.0f}s; last value: {str(last)[:500]}")


@dataclass
class RunningStack:
    """Addresses of the stack started for this test session."""

    settings: Settings
    env: dict[str, str]
    stack: Stack

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}"}


def publish_and_wait(
    stack: RunningStack, article: dict[str, Any], until: Callable[[str], bool] | None = None
) -> str:
    """Submit an article through the API and wait until its page is served; returns the page path."""
    r = httpx.post(f"{stack.api}/v1/articles", json=article, headers=stack.auth(), timeout=30)
    assert r.status_code == 202, r.text
    path: str = r.json()["url"]
    poll(
        lambda: httpx.get(stack.web + path),
        lambda resp: resp.status_code == 200 and (until is None or until(resp.text)),
    )
    return path


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The real broker and a private Redis, without the services."""
    extra = {
        "NEWSROOM_ENVIRONMENT": "test",
        "NEWSROOM_API_KEYS": f"{API_KEY},other-key-9876543210",
        "NEWSROOM_DEMO_SIMULATE": "0",
    }
    with private_stack(tmp_path_factory.mktemp("stack"), extra) as (settings, env, stack):
        yield RunningStack(settings, env, stack)


@pytest.fixture(scope="session")
def stack(infra: RunningStack) -> RunningStack:
    """Every service running as its own process against the session's broker and Redis."""
    infra.stack.start_services(infra.settings, infra.env)
    return infra
