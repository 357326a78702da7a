"""``rebuild fragments --group`` / ``--join``: a rebuild shared by processes through a consumer group."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from typing import Any

from newsroom.common.redis_client import connect
from newsroom.rendering.members import write_plan
from tests.cli.helpers import active_namespace, new_article, pipeline_idle, snapshot_namespace
from tests.conftest import RunningStack
from tests.fakes import REPO, newsroom, submit


def rendered(output: str, label: str) -> int:
    """The count a summary table prints on the row ``label``."""
    found = re.search(rf"{label}\D*([\d,]+)", output)
    assert found is not None, output
    return int(found.group(1).replace(",", ""))


def test_a_rebuild_shared_with_a_joined_process_writes_what_one_process_writes(stack: RunningStack) -> None:
    """Two processes in the rebuild's group write, byte for byte, what one writes alone, each article once."""
    settings = stack.settings
    for _ in range(6):
        submit(stack, new_article())
    asyncio.run(pipeline_idle(settings))
    alone = newsroom(stack, "rebuild", "fragments", "--no-progress", "--workers", "1")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    by_one = asyncio.run(active_namespace(settings))

    joiner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "newsroom.cli",
            "rebuild",
            "fragments",
            "--join",
            "--wait",
            "120",
            "--chunk",
            "1",
        ],
        env={**os.environ, **stack.env, "NEWSROOM_LOG_FORMAT": "json"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        shared = newsroom(
            stack, "rebuild", "fragments", "--no-progress", "--group", "--members", "2", "--wait", "120",
            "--chunk", "1",
        )  # fmt: skip
        out, err = joiner.communicate(timeout=180)
    finally:
        if joiner.poll() is None:
            joiner.kill()
    assert shared.returncode == 0, shared.stdout + shared.stderr
    assert joiner.returncode == 0, out + err
    by_two = asyncio.run(active_namespace(settings))
    assert by_two != by_one
    assert "(active)" in shared.stdout
    # between them they rendered each article once, as one process alone did: none lost, none twice
    # (a chunk applied again after a rebalance is skipped as stale); how the partitions were shared
    # depends on the broker's rebalance timing
    by_both = rendered(shared.stdout, "articles rendered") + rendered(out, "articles rendered here")
    assert by_both == rendered(alone.stdout, "articles rendered") > 0

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        redis = connect(settings.redis_url)
        try:
            return await snapshot_namespace(redis, by_one), await snapshot_namespace(redis, by_two)
        finally:
            await redis.aclose()

    written_by_one, written_by_two = asyncio.run(both())
    assert written_by_one  # a namespace with the site in it
    assert written_by_two == written_by_one


def test_joining_when_no_rebuild_runs_is_one_line_and_exit_1(stack: RunningStack) -> None:
    """``--join`` with nothing to join says so in one line after its wait, exit 1, no traceback."""
    done = newsroom(stack, "rebuild", "fragments", "--join", "--wait", "1")
    assert done.returncode == 1
    assert "no rebuild to join" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_a_member_of_a_rebuild_that_is_no_longer_the_shadow_one_stops_in_one_line(
    stack: RunningStack,
) -> None:
    """A joined process whose namespace stopped being the shadow one writes nothing there and says so."""
    submit(stack, new_article())
    stale = f"nr:{stack.settings.template_version}:19700101T000000000000Z"

    async def plan_a_stale_rebuild() -> None:
        redis = connect(stack.settings.redis_url)
        try:
            await write_plan(redis, stale, {0: 1, 1: 1, 2: 1})
        finally:
            await redis.aclose()

    asyncio.run(plan_a_stale_rebuild())
    done = newsroom(stack, "rebuild", "fragments", "--join", stale, "--wait", "5")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"the rebuild into {stale} ended before this process was done" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
