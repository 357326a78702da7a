"""Shared test data for the enrichment tests (and the rendering tests that tag text), and the tagger's
modules as plain Python beside their mypyc builds."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import random
import sys
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from newsroom.enrichment.master import SecurityMaster


def wire_stories(master: SecurityMaster, count: int) -> list[str]:
    """Stories that name companies every way the tagger knows: explicit forms, names, aliases, tickers."""
    rng = random.Random(20261125)
    listed = [s for s in master if s.aliases]
    stories = []
    for _ in range(count):
        parts = []
        for security in rng.sample(listed, 8):
            alias, symbol = rng.choice(security.aliases), security.symbol
            parts.append(
                rng.choice(
                    [
                        f"{alias} ({security.exchange}: {symbol}) said on Monday it would grow.",
                        f"Shares of {alias} rose; {symbol} gained 3% and the Nikkei 225 fell.",
                        f"{alias.upper()} ANNOUNCES RESULTS. Analysts at {alias}'s rival were all in.",
                        f"The S&P 500 and the Dow rose, while ${symbol} and <{symbol}.N> fell.",
                        f"{symbol}.T, {alias} Co., Ltd. and {alias}-linked funds were on watch.",
                    ]
                )
            )
        stories.append(" ".join(parts))
    return stories


TAGGER_MODULES = tuple(
    f"newsroom.enrichment.{name}"
    for name in ("tagger", "forms", "names", "targets", "resolution", "tickers", "relevance")
)
"""The tagger and the modules of its stages (deploy/native.py compiles them)."""


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds ``names`` as their ``.py`` files, whatever build sits beside them."""

    def __init__(self, names: Collection[str]) -> None:
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        found = importlib.machinery.PathFinder.find_spec(fullname, path)
        assert found is not None
        assert found.origin is not None
        source = Path(found.origin).with_name(fullname.rpartition(".")[2] + ".py")
        return importlib.util.spec_from_file_location(fullname, source)


@contextmanager
def pure_modules(names: Collection[str] = TAGGER_MODULES) -> Iterator[dict[str, ModuleType]]:
    """``names`` imported afresh as plain Python (each importing the others' plain copies), by name; the
    modules imported before are back in place afterwards."""
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    finder = _FromSource(names)
    sys.meta_path.insert(0, finder)
    try:
        yield {name: importlib.import_module(name) for name in names}
    finally:
        sys.meta_path.remove(finder)
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
        for name, module in saved.items():  # the package's attributes too: ``import a.b as m`` reads them
            package, _, leaf = name.rpartition(".")
            setattr(sys.modules[package], leaf, module)
