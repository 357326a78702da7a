"""The stack under test: the broker and Redis owned here (so they can be killed and restarted),
the five services run by ``newsroom dev --no-demo`` as a child process (so its supervision is
what heals a killed service), or, with ``CHAOS_SERVICES=direct``, started one by one here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from newsroom.cli.stack import SERVICE_ORDER, Stack, isolated_env, stop_process, wait_until
from newsroom.common.admin import ensure_topics
from newsroom.common.settings import Settings

API_KEY = "chaos-key-0123456789abcdef"


def _children(pid: int) -> Iterator[int]:
    """Every descendant of ``pid`` (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            yield child
            todo.append(child)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").rstrip("\0").split("\0")
    except OSError:
        return []


class StackUnderTest:
    """Start, break and (when the stack did not heal itself) repair the stack the run measures."""

    def __init__(self, run_dir: Path, mode: str | None = None) -> None:
        self.run_dir = run_dir
        self.mode = mode or os.environ.get("CHAOS_SERVICES", "dev")
        self.env = isolated_env(
            run_dir,
            {
                "NEWSROOM_API_KEYS": API_KEY,
                "NEWSROOM_QUOTE_DELAY_MINUTES": "0",
                "NEWSROOM_DEMO_SIMULATE": "0",
                "NEWSROOM_LOG_FORMAT": "json",
            },
        )
        os.environ.update(self.env)  # this process's clients (read_topic, producers) use the same settings
        self.settings = Settings()
        self.infra = Stack.for_settings(self.settings, run_dir, quiet=True)
        self.direct = Stack.for_settings(self.settings, run_dir, own_redis=False, quiet=True)
        self.dev: subprocess.Popen[bytes] | None = None
        self.dev_log = run_dir / "dev.log"

    # ------------------------------------------------------------------ addresses

    def url(self, service: str) -> str:
        return f"http://{self.settings.host}:{self.settings.port_of(service)}"

    @property
    def api(self) -> str:
        return self.url("ingestion")

    @property
    def web(self) -> str:
        return self.url("web")

    # ------------------------------------------------------------------ start and stop

    def start(self) -> None:
        self.infra.start_broker()
        self.infra.start_redis()
        asyncio.run(ensure_topics(self.settings))
        self.start_services()

    def start_services(self) -> None:
        if self.mode == "direct":
            self.direct.start_services(self.settings, self.env)
            return
        log = open(self.dev_log, "ab")  # noqa: SIM115 - the child keeps it
        self.dev = subprocess.Popen(
            [sys.executable, "-m", "newsroom.cli", "dev", "--no-demo"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        log.close()
        wait_until(lambda: all(self.readiness().values()) or self.dev_exited(), 240, "the services")
        if self.dev_exited():
            tail = self.dev_log.read_text("utf-8", "replace").splitlines()[-15:]
            code = self.dev.returncode if self.dev else "?"
            raise RuntimeError(f"newsroom dev exited with {code}:\n" + "\n".join(tail))

    def dev_exited(self) -> bool:
        return self.dev is not None and self.dev.poll() is not None

    def stop_services(self) -> None:
        if self.mode == "direct":
            self.direct.stop()
            return
        if self.dev is not None:
            stop_process(self.dev, timeout=60)
            self.dev = None
        for name in SERVICE_ORDER:  # a service that outlived its parent (it should not)
            for pid in self.service_pids(name, orphans=True):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        self.stop_services()
        self.infra.stop()

    def restart_services(self) -> None:
        """The harness's repair when the stack did not heal itself: every service started again."""
        self.stop_services()
        asyncio.run(ensure_topics(self.settings))
        self.start_services()

    # ------------------------------------------------------------------ processes

    def service_pids(self, name: str, *, orphans: bool = False) -> list[int]:
        """The pids of ``newsroom run NAME`` processes of this stack."""
        if self.mode == "direct":
            return [p.popen.pid for p in self.direct.procs if p.name == name and p.popen.poll() is None]
        roots = [self.dev.pid] if self.dev is not None else []
        pids = [pid for root in roots for pid in _children(root)]
        if orphans:  # whatever runs with this stack's run dir, parent or not
            pids = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]
            pids = [p for p in pids if self._ours(p)]
        return [p for p in pids if _cmdline(p)[-2:] == ["run", name]]

    def _ours(self, pid: int) -> bool:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return False
        return f"NEWSROOM_RUN_DIR={self.run_dir}".encode() in environ.split(b"\0")

    def kill_service(self, name: str) -> int:
        """kill -9 the service; the pid killed."""
        pids = self.service_pids(name)
        if not pids:
            raise RuntimeError(f"no running {name} to kill")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids[0]

    def _infra_proc(self, name: str) -> subprocess.Popen[bytes]:
        for proc in self.infra.procs:
            if proc.name == name and proc.popen.poll() is None:
                return proc.popen
        raise RuntimeError(f"{name} is not running")

    def kill_infra(self, name: str) -> None:
        """kill -9 the broker or Redis (both memory-only: they come back empty)."""
        popen = self._infra_proc(name)
        popen.kill()
        popen.wait(10)
        self.infra.procs = [p for p in self.infra.procs if p.popen is not popen]

    def start_infra(self, name: str) -> None:
        if name == "broker":
            self.infra.start_broker()
        else:
            self.infra.start_redis()

    # ------------------------------------------------------------------ observation

    def readiness(self) -> dict[str, bool]:
        out = {}
        for name in SERVICE_ORDER:
            try:
                out[name] = httpx.get(self.url(name) + "/readyz", timeout=2.0).status_code == 200
            except httpx.HTTPError:
                out[name] = False
        return out

    def _logs(self) -> list[Path]:
        if self.mode == "direct":
            return [self.run_dir / f"{n}.log" for n in SERVICE_ORDER]
        return [self.dev_log]

    def log_mark(self) -> dict[Path, int]:
        """Where each log ends now (for :meth:`alarms_since`)."""
        return {p: p.stat().st_size if p.exists() else 0 for p in self._logs()}

    def alarms_since(self, mark: dict[Path, int]) -> list[str]:
        """Error-level log lines (and tracebacks, exits) written since ``mark``."""
        out = []
        for path in self._logs():
            if not path.exists():
                continue
            with open(path, "rb") as f:
                f.seek(mark.get(path, 0))
                text = f.read().decode("utf-8", "replace")
            for line in text.splitlines():
                name, bar, rest = line.partition("| ")  # a child's line: "name      | {json}"
                if not bar:
                    name, rest = "", line  # newsroom dev's own line
                try:
                    doc = json.loads(rest)
                except ValueError:
                    if "Traceback" in line or "exited" in line or "restart" in line:
                        out.append(line.strip()[:200])
                    continue
                if not isinstance(doc, dict):
                    continue
                level = str(doc.get("level", "")).lower()
                if level in ("error", "critical", "fatal") or "restart" in str(doc.get("event", "")):
                    who = name.strip() or str(doc.get("service") or path.stem)
                    child = f" {doc['child']}" if "child" in doc else ""
                    out.append(f"{who}: {level} {doc.get('event', '')}{child}"[:200])
        return out


def wait_for(check: object, timeout: float, interval: float = 0.5) -> float | None:
    """Seconds until ``check()`` held, or None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(interval)
    return None
