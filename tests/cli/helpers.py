"""Helpers for the replay tests: the CLI against the session stack, Redis snapshots, consumer lag."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis

from newsroom.common.lag import lag_rows
from newsroom.common.redis_client import connect
from newsroom.common.settings import Settings
from newsroom.common.store import Keys, Pointers
from tests.conftest import apoll

GROUPS = ("enrichment", "rendering-articles", "rendering-quotes", "quotes")


def new_article(**over: Any) -> dict[str, Any]:
    """An API submission naming two instruments, unique to this call."""
    tag = uuid.uuid4().hex
    body = {
        "headline": f"Replay story {tag[:6]}",
        "body": (
            f"Advanced Micro Devices, Inc. (NASDAQ: AMD) rose while Intel Corp. (NASDAQ: INTC) fell.\n\n"
            f"Analysts at the desk weighed in. Ref {tag}."
        ),
        "source": "replay-test",
        "id": tag,
        "published_at": datetime.now(UTC).isoformat(),
    }
    body.update(over)
    return body


async def active_namespace(settings: Settings) -> str:
    """The namespace the web serves now."""
    redis = connect(settings.redis_url)
    try:
        active = (await Pointers(settings.template_version).read(redis))[0]
        assert active is not None, "no namespace is served"
        return active
    finally:
        await redis.aclose()


async def pipeline_idle(settings: Settings) -> None:
    """Wait until every service group has consumed up to the end of its topics (lag 0)."""

    async def lags() -> list[Any]:
        return [r for r in await lag_rows(settings, list(GROUPS)) if r.lag > 0]

    await apoll(lags, lambda rows: not rows, timeout=60, interval=0.5)


async def snapshot_pages(redis: aioredis.Redis, namespace: str, paths: Iterable[str]) -> dict[str, Any]:
    """Each page (its own HTML inline) and every shared fragment it names (not ``@z`` lists' items)."""
    out: dict[str, Any] = {}
    for path in paths:
        page = await redis.get(f"{namespace}:page:{path}")
        entries = orjson.loads(page) if page is not None else None
        out[f"page:{path}"] = entries
        for entry in entries or ():
            if isinstance(entry, str) and not entry.startswith("@"):
                out[f"frag:{entry}"] = await redis.get(f"{namespace}:frag:{entry}")
    return out


async def snapshot_namespace(redis: aioredis.Redis, namespace: str) -> dict[str, Any]:
    """Every key of ``namespace`` (its name cut off) with its value, whatever its type."""
    out: dict[str, Any] = {}
    async for raw in Keys(namespace).scan(redis):
        key = raw.decode().removeprefix(f"{namespace}:")
        kind = await redis.type(raw)
        if kind == b"string":
            out[key] = await redis.get(raw)
        elif kind == b"zset":
            out[key] = await redis.zrange(raw, 0, -1, withscores=True)
        elif kind == b"hash":
            out[key] = await redis.hgetall(raw)
        else:
            out[key] = kind  # no other kinds are written; a change shows up as a difference
    return out


async def snapshot_frags(redis: aioredis.Redis, namespace: str, names: Iterable[str]) -> dict[str, Any]:
    """The named fragments' bytes (None where absent)."""
    return {f"frag:{n}": await redis.get(f"{namespace}:frag:{n}") for n in names}


def quote_paths(iids: Iterable[str]) -> list[str]:
    return [f"quote/{iid.replace(':', '/')}" for iid in iids]


def slug_of(path: str) -> str:
    match = re.fullmatch(r"/news/(.+)", path)
    assert match, path
    return match.group(1)
