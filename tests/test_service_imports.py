"""Importing a service's ``service`` module builds nothing: no settings, broker, client or app (#18)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from newsroom.cli import SERVICES

# what one import may not leave behind; run in a fresh interpreter so nothing else was imported first
CHECK = """
import gc, importlib, sys
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis
from starlette.applications import Starlette
from newsroom.common.settings import Settings
module = importlib.import_module(sys.argv[1])
kinds = KafkaBroker | Redis | Settings | Starlette
built = [type(o).__name__ for o in gc.get_objects() if isinstance(o, kinds)]
print(" ".join(built))
assert callable(module.create_app)
"""


@pytest.mark.parametrize("service", SERVICES)
def test_importing_a_service_module_builds_nothing(service: str) -> None:
    """After ``import newsroom.<service>.service`` no settings, broker, Redis client or app exists."""
    done = subprocess.run(
        [sys.executable, "-c", CHECK, f"newsroom.{service}.service"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [], f"built at import: {done.stdout}"
