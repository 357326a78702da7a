"""What the deploy tests share: the time a service's SIGTERM drain takes, read from the code."""

from __future__ import annotations

import ast
import inspect
import textwrap

from newsroom.cli import core as cli_core
from newsroom.common.messaging import make_broker
from newsroom.common.settings import Settings


def drain_seconds() -> float:
    """How long a service's SIGTERM may take: uvicorn's graceful shutdown, then the broker's."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cli_core.cmd_run)))
    (uvicorn_grace,) = [
        ast.literal_eval(kw.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "timeout_graceful_shutdown"
    ]
    broker_grace = make_broker("k8s-test", Settings()).config.graceful_timeout
    assert broker_grace is not None
    return float(uvicorn_grace) + float(broker_grace)
