"""The mypyc builds of deploy/native.py, seen from the tests: which module is in use, and its source."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

# `make test` requires the builds (unless NEWSROOM_PURE_PYTHON=1); a bare pytest run skips without them.
REQUIRED = os.environ.get("NEWSROOM_REQUIRE_NATIVE") == "1"


def compiled(module: ModuleType) -> bool:
    """Whether ``module`` was imported from a mypyc build rather than its ``.py``."""
    return not (module.__file__ or "").endswith(".py")


def needs_build(module: ModuleType) -> pytest.MarkDecorator:
    """Skip unless ``module`` is compiled here (or the build is required, and then fail without it)."""
    return pytest.mark.skipif(
        not compiled(module) and not REQUIRED,
        reason=f"{module.__name__} runs as plain Python here (no mypyc build: `make native` makes one)",
    )


@contextmanager
def source_of(module: ModuleType) -> Iterator[ModuleType]:
    """``module``'s ``.py`` loaded as plain Python, beside the compiled module the package imports."""
    path = Path(module.__file__ or "").with_name(module.__name__.rpartition(".")[2] + ".py")
    name = f"{module.__name__}_source"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    source = importlib.util.module_from_spec(spec)
    sys.modules[name] = source  # its dataclasses look their module up while they are made
    try:
        spec.loader.exec_module(source)
        yield source
    finally:
        del sys.modules[name]
