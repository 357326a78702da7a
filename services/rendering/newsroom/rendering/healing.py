"""The fragment store watched: a wiped or replaced Redis is rebuilt from the log without a human.

The site is served from the namespace the active pointer names. When that pointer is gone (a Redis
that restarted empty, was flushed, or was replaced) or its namespace has lost its layout, the site
cannot be served: the renderer says so, is not ready, and runs ``newsroom rebuild fragments`` — the
blue/green rebuild (:mod:`newsroom.rendering.rebuild`), which fills a new namespace from the log and
switches the site to it once complete. It runs as a process of its own, as an operator's would: its
work (and its worker processes) must not slow the live consumers in this one. Until then the web
tier has no namespace to serve and is not ready either. Only one rebuild runs at a time: one holding
the shadow pointer is waited for, whichever process started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from newsroom.common.health import Health
from newsroom.common.store import Pointers, site_problem

log = structlog.get_logger(__name__)

STORE_CHECK_S = 2.0


class StoreWatch:
    """Checks the store every few seconds; rebuilds a lost site from the log."""

    def __init__(self, redis: aioredis.Redis, pointers: Pointers, health: Health) -> None:
        self.redis = redis
        self.pointers = pointers
        self.health = health
        self.rebuilding: asyncio.subprocess.Process | None = None
        self._reaper: asyncio.Task[None] | None = None
        self.rebuilds = 0

    async def run(self, interval: float = STORE_CHECK_S) -> None:
        try:
            while True:
                await self.check()
                await asyncio.sleep(interval)
        finally:
            if self.rebuilding is not None and self.rebuilding.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.rebuilding.terminate()  # it stops after the chunk in hand; its namespace expires
                await self.rebuilding.wait()

    async def check(self) -> None:
        try:
            problem = await site_problem(self.redis, self.pointers.template_version)
            shadow = (await self.pointers.read(self.redis))[1]
        except (RedisError, OSError) as exc:
            self.health.fail("store", f"Redis unreachable: {exc}")
            return
        if problem is None:
            self.health.clear("store")
            return
        self.health.fail("store", f"{problem}; rebuilding it from the log")
        if self.rebuilding is not None and self.rebuilding.returncode is None:
            return  # ours is running
        if shadow is not None:
            return  # someone's rebuild is running: its switch ends this
        self.rebuilds += 1
        log.error("the site is gone from the store; rebuilding it from the log", problem=problem,
                  rebuild=self.rebuilds)  # fmt: skip
        argv = ["-m", "newsroom.cli", "rebuild", "fragments", "--no-progress"]
        self.rebuilding = await asyncio.create_subprocess_exec(sys.executable, *argv, env=dict(os.environ))
        self._reaper = asyncio.create_task(self._reap(self.rebuilding))

    async def _reap(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if code == 0:
            log.info("the store was rebuilt from the log", rebuild=self.rebuilds)
        else:
            log.error("rebuilding the store failed; trying again", exit_code=code, rebuild=self.rebuilds)
