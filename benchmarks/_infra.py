"""Start a private embedded broker and Redis for one benchmark (free ports, stopped on exit)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from newsroom.cli.stack import SERVICE_ORDER, Stack, free_port, wait_ready
from newsroom.common.settings import Settings
from newsroom.common.topics import ensure_topics


@contextlib.contextmanager
def embedded(
    *,
    services: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
    commands: dict[str, list[str]] | None = None,
) -> Iterator[Settings]:
    """Yield Settings pointing at a fresh broker and Redis (and the named services, started).

    ``commands`` are further ``newsroom`` commands (name -> arguments) started after the services.
    """
    with tempfile.TemporaryDirectory(prefix="newsroom-bench-") as tmp:
        env = {
            "NEWSROOM_BROKER_URL": f"127.0.0.1:{free_port()}",
            "NEWSROOM_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "NEWSROOM_WEB_PORT": str(free_port()),
            "NEWSROOM_API_PORT": str(free_port()),
            "NEWSROOM_ENRICHMENT_PORT": str(free_port()),
            "NEWSROOM_QUOTES_PORT": str(free_port()),
            "NEWSROOM_RENDERING_PORT": str(free_port()),
            "NEWSROOM_API_KEYS": "bench-key-0123456789",
            "NEWSROOM_LOG_FORMAT": "json",
            **(extra_env or {}),
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        settings = Settings()
        stack = Stack(
            broker_port=int(settings.bootstrap_servers[0].rsplit(":", 1)[1]),
            redis_port=int(settings.redis_url.rsplit(":", 1)[1].split("/")[0]),
            run_dir=Path(tmp),
            quiet=True,
        )
        try:
            stack.start_broker()
            stack.start_redis()
            asyncio.run(ensure_topics(settings.bootstrap_servers))
            for name in SERVICE_ORDER:
                if name in services:
                    proc = stack.start_service(name, env)
                    wait_ready(f"http://127.0.0.1:{settings.port_of(name)}/readyz", 120, proc)
            for name, args in (commands or {}).items():
                stack.start_command(name, args, env)
            yield settings
        finally:
            stack.stop()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
