"""A fragments rebuild's local worker processes: this process and forked workers share the enriched
topic's partitions (``newsroom rebuild fragments --workers N``; across machines, see
:mod:`newsroom.rendering.members`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
from collections.abc import Callable
from typing import Any

from newsroom.common.settings import Settings
from newsroom.rendering.replay import ArticleCounts, apply_articles, apply_in_worker, start_worker


def default_workers() -> int:
    """Worker processes for a fragments rebuild: at most two per core (capped by partitions later)."""
    return 2 * (os.cpu_count() or 1)


WORKER_PRELOAD = ["newsroom.rendering.replay"]  # the workers' code, and none of the CLI's


def worker_context() -> multiprocessing.context.BaseContext:
    """Where the rebuild's workers come from: forked from a fork server that imported their code once.

    Not forked from this process, which runs an event loop; and not spawned, which would import
    everything again in every worker (about 0.7 s of CPU each).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():  # not on this platform
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    return context


async def in_workers(
    settings: Settings, writer: Any, groups: list[list[int]], chunk: int, report: Callable[[int], None]
) -> ArticleCounts:
    """Apply the first group of partitions here with ``writer``, each other one in a worker process of its
    own; ``report`` sees the records done, four times a second.

    This process starts at once, while the workers wait for the fork server to import their code (the
    better part of a second). Cancelled, or when any of them fails, it asks the others to stop after the
    chunk in hand and waits for them, so no worker outlives the call.
    """
    context = worker_context()
    progress, stop = context.Value("q", 0), context.Event()
    here = 0

    def advance(n: int) -> None:
        nonlocal here
        here += n

    with concurrent.futures.ProcessPoolExecutor(
        len(groups) - 1, mp_context=context, initializer=start_worker, initargs=(progress, stop)
    ) as pool:

        def submit_all() -> list[concurrent.futures.Future[ArticleCounts]]:
            return [
                pool.submit(apply_in_worker, settings, writer.namespace, group, chunk) for group in groups[1:]
            ]

        mine = asyncio.ensure_future(apply_articles(settings, writer, groups[0], chunk, advance, stop.is_set))
        # From a thread: a submit returns once the fork server has imported the workers' code.
        submitting = asyncio.ensure_future(asyncio.to_thread(submit_all))
        try:
            while not submitting.done():
                await asyncio.wait({t for t in (mine, submitting) if not t.done()}, timeout=0.25)
                report(here + progress.value)
                if mine.done():
                    mine.result()  # raises if this process's share failed
            running = asyncio.gather(mine, *map(asyncio.wrap_future, submitting.result()))
            while not running.done():
                await asyncio.wait({running}, timeout=0.25)
                report(here + progress.value)
            results = await running
        except BaseException:  # cancelled, or one failed: the others stop too
            stop.set()
            with contextlib.suppress(Exception):
                submitted = await asyncio.shield(submitting)  # its thread submits them all regardless
                others = map(asyncio.wrap_future, submitted)
                await asyncio.shield(asyncio.gather(mine, *others, return_exceptions=True))
            raise
    return sum(results, ArticleCounts())
