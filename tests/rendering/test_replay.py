"""The rebuild's applying side, as its worker processes load it."""

from __future__ import annotations

import subprocess
import sys


def test_the_workers_module_loads_nothing_of_the_cli_or_faststream() -> None:
    """A rebuild's fork server imports the workers' module alone: none of the CLI, FastStream or brokers."""
    probe = (
        "import sys, newsroom.rendering.replay; "
        "print(sorted(m for m in sys.modules if m.startswith(('faststream', 'newsroom.cli'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
