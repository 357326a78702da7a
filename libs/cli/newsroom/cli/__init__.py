"""The ``newsroom`` command: one entry point, a subcommand per job.

Core subcommands live in this package; a service contributes its own by exposing
``register(subparsers)`` in ``newsroom.<service>.commands``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from aiokafka.errors import KafkaConnectionError

from newsroom.common.errors import Refused
from newsroom.common.reading import TopicNotFound

SERVICES = ("ingestion", "enrichment", "quotes", "rendering", "web")
"""Every service `newsroom run` starts, in the order they are listed to people (stack.SERVICE_ORDER
is the order they start in)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsroom", description="Newsroom: event-sourced microservices that run a financial news site."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from newsroom.cli import core

    core.register(sub)
    for service in SERVICES:
        try:
            module = importlib.import_module(f"newsroom.{service}.commands")
        except ModuleNotFoundError as exc:
            if exc.name != f"newsroom.{service}.commands":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except KafkaConnectionError as exc:  # a command, not a service: say so and stop
        print(f"newsroom: the broker is unreachable ({exc})", file=sys.stderr)
        return 1
    except (TopicNotFound, Refused) as exc:  # an operator's error, or an operation that did not go ahead
        print(f"newsroom: {exc}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
