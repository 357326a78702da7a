"""Start a private embedded broker and Redis for one benchmark (free ports, stopped on exit)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from newsroom.cli.stack import private_stack
from newsroom.common.settings import Settings


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
        extra = {"NEWSROOM_API_KEYS": "bench-key-0123456789", **(extra_env or {})}
        with private_stack(Path(tmp), extra) as (settings, env, stack):
            stack.start_services(settings, env, services)
            for name, args in (commands or {}).items():
                stack.start_command(name, args, env)
            yield settings
