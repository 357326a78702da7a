"""`newsroom dev` as an operator runs it: a private Redis where the URL names a free local port, and
children that die are restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsroom.cli.stack import free_port, isolated_env, stop_process
from tests.conftest import API_KEY, poll

pytestmark = pytest.mark.stack


def supervisor_state(run_dir: Path) -> dict[str, Any]:
    """What `newsroom dev` says of its children (the file `newsroom status` reads)."""
    path = run_dir / "dev-state.json"
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """`newsroom dev --no-demo` with NEWSROOM_REDIS_URL naming a local port where nothing listens."""
    run_dir = tmp_path_factory.mktemp("dev")
    env = isolated_env(run_dir, {"NEWSROOM_API_KEYS": API_KEY, "NEWSROOM_DEMO_SIMULATE": "0"})
    env["NEWSROOM_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    log = (run_dir / "dev.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsroom.cli", "dev", "--no-demo"],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        web = f"http://127.0.0.1:{env['NEWSROOM_WEB_PORT']}/readyz"
        poll(lambda: (proc.poll(), ready(web)), lambda s: s[0] is not None or s[1], timeout=180)
        assert proc.poll() is None, (run_dir / "dev.out").read_text()[-3000:]
        poll(lambda: supervisor_state(run_dir), lambda s: "web" in s.get("children", {}), timeout=30)
        yield env, run_dir
    finally:
        stop_process(proc, timeout=60)
        log.close()


def test_dev_starts_a_private_redis_on_a_free_local_port(dev: tuple[dict[str, str], Path]) -> None:
    """With NEWSROOM_REDIS_URL on a local port where nothing listens, dev starts Redis there and comes up."""
    env, run_dir = dev
    assert "redis" in supervisor_state(run_dir)["children"]
    assert ready(f"http://127.0.0.1:{env['NEWSROOM_RENDERING_PORT']}/readyz")


@pytest.mark.parametrize("service", ["enrichment", "web"])
def test_dev_restarts_a_killed_child(dev: tuple[dict[str, str], Path], service: str) -> None:
    """A service killed with SIGKILL is logged with its exit code, restarted, and counted in the state."""
    env, run_dir = dev
    before = supervisor_state(run_dir)["children"][service]
    os.kill(before["pid"], signal.SIGKILL)
    after = poll(
        lambda: supervisor_state(run_dir)["children"][service],
        lambda c: c["restarts"] == before["restarts"] + 1 and c["pid"] != before["pid"],
        timeout=60,
    )
    assert after["last_exit"] == -signal.SIGKILL
    port = env["NEWSROOM_API_PORT"] if service == "ingestion" else env[f"NEWSROOM_{service.upper()}_PORT"]
    poll(lambda: ready(f"http://127.0.0.1:{port}/readyz"), bool, timeout=120)
    logged = (run_dir / "dev.out").read_text()
    assert f'"child": "{service}"' in logged or f"child={service}" in logged, logged[-2000:]


def test_status_shows_restarts(dev: tuple[dict[str, str], Path]) -> None:
    """`newsroom status` lists each service's restarts under `newsroom dev`, with the last exit code."""
    env, run_dir = dev
    expected = supervisor_state(run_dir)["children"]["enrichment"]["restarts"]
    out = subprocess.run(
        [sys.executable, "-m", "newsroom.cli", "status"],
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    row = next(line for line in out.splitlines() if "enrichment" in line)
    assert "restarts" in out
    assert f"{expected} (last exit -9)" in row if expected else " - " in row, out
