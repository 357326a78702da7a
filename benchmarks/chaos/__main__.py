"""``python -m benchmarks.chaos [--quick] [FAULT…]``: the chaos run; exit 1 when anything was lost.

FAULT selects steps by prefix: baseline, kill-ingestion … kill-web, redis-restart, redis-wipe,
broker-restart, poison-articles … poison-quotes.snapshots, http, xss (default: all of them).
Durations and counts come from CHAOS_* variables (see :class:`benchmarks.chaos.run.Config`).
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.chaos.run import Config, run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="shorter loads, outages and deadlines; fewer XSS pages"
    )
    parser.add_argument("faults", nargs="*", help="only the steps whose name starts with one of these")
    args = parser.parse_args(argv)
    return run(Config.from_env(args.quick, tuple(args.faults)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
