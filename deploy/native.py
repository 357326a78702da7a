"""Compile the hot pure-Python modules to C extensions with mypyc (it ships with mypy), in place.

Python imports ``tagger.cpython-311-….so`` before ``tagger.py`` when both sit in the package folder.
The ``.py`` stays the source of truth: each build records a stamp (a hash of the module, of the
modules whose types the compiled code relies on, of the mypy settings and of the Python and mypy
versions), and a module is rebuilt when its stamp differs.

    python deploy/native.py            build what is missing or out of date (``make native``)
    python deploy/native.py --check    exit 1, saying which, if a build is out of date

``NEWSROOM_PURE_PYTHON=1`` removes the builds instead: everything then runs as plain Python.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import mypy.version

ROOT = Path(__file__).resolve().parents[1]
# Each compiled module, with the modules its compiled code takes types from. The tagger's modules are
# the ones whose compilation was measured to make tagging faster (newsroom.enrichment.tagger says how much).
MODULES = {
    "services/enrichment/newsroom/enrichment/tagger.py": (
        "services/enrichment/newsroom/enrichment/forms.py",
        "services/enrichment/newsroom/enrichment/legal_names.py",
        "services/enrichment/newsroom/enrichment/master.py",
        "services/enrichment/newsroom/enrichment/names.py",
        "services/enrichment/newsroom/enrichment/relevance.py",
        "services/enrichment/newsroom/enrichment/resolution.py",
        "services/enrichment/newsroom/enrichment/targets.py",
        "services/enrichment/newsroom/enrichment/tickers.py",
        "libs/common/newsroom/common/events.py",
        "libs/common/newsroom/common/text.py",
    ),
    "services/enrichment/newsroom/enrichment/forms.py": (),
    "services/enrichment/newsroom/enrichment/names.py": (
        "services/enrichment/newsroom/enrichment/forms.py",
        "services/enrichment/newsroom/enrichment/legal_names.py",
        "services/enrichment/newsroom/enrichment/master.py",
    ),
    "services/enrichment/newsroom/enrichment/resolution.py": (
        "services/enrichment/newsroom/enrichment/targets.py",
    ),
    "services/enrichment/newsroom/enrichment/tickers.py": (
        "services/enrichment/newsroom/enrichment/resolution.py",
        "services/enrichment/newsroom/enrichment/targets.py",
    ),
    "services/enrichment/newsroom/enrichment/relevance.py": ("libs/common/newsroom/common/events.py",),
    "libs/common/newsroom/common/text.py": (),
    "services/rendering/newsroom/rendering/links.py": (
        "libs/common/newsroom/common/events.py",
        "libs/common/newsroom/common/text.py",
    ),
}
STAMPS = ROOT / "build" / "native-stamps"
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def stamp(module: str) -> str:
    """What a build of ``module`` depends on, hashed."""
    digest = hashlib.sha256(f"{sys.version}\n{mypy.version.__version__}\n".encode())
    for path in (module, *MODULES[module], "pyproject.toml"):
        digest.update(path.encode() + b"\n" + (ROOT / path).read_bytes())
    return digest.hexdigest()


def built_files(module: str) -> list[Path]:
    """The extension files a build of ``module`` makes: the import shim and the compiled code."""
    base = ROOT / module.removesuffix(".py")
    return [base.with_name(base.name + SUFFIX), base.with_name(base.name + "__mypyc" + SUFFIX)]


def stamp_file(module: str) -> Path:
    return STAMPS / (module.replace("/", "__") + ".sha256")


def current(module: str) -> bool:
    """Whether ``module``'s build exists and was made from what is there now."""
    recorded = stamp_file(module)
    return (
        all(path.exists() for path in built_files(module))
        and recorded.exists()
        and recorded.read_text().strip() == stamp(module)
    )


def remove(module: str) -> None:
    """Delete ``module``'s build, here and in setuptools' build tree (whence a wheel could take it)."""
    for path in built_files(module):
        path.unlink(missing_ok=True)
        for copy in (ROOT / "build").glob(f"lib*/**/{path.name}"):
            copy.unlink()
    stamp_file(module).unlink(missing_ok=True)


def build(module: str) -> None:
    """Compile ``module``; on failure leave no build behind (so the ``.py`` runs) and raise."""
    expected = stamp(module)  # before compiling: an edit made meanwhile shows up as out of date
    remove(module)
    print(f"native: compiling {module} with mypyc", flush=True)
    log = ROOT / "build" / "native.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("w") as out:
        # mypyc type-checks with the project's mypy settings (pyproject.toml) and builds under build/.
        command = [sys.executable, "-m", "mypyc", module]
        done = subprocess.run(command, cwd=ROOT, stdout=out, stderr=out)  # noqa: S603 - our interpreter, our module
    if done.returncode != 0 or not all(path.exists() for path in built_files(module)):
        remove(module)
        sys.stderr.write(log.read_text())
        raise SystemExit(
            f"native: compiling {module} failed (NEWSROOM_PURE_PYTHON=1 runs it as plain Python)"
        )
    STAMPS.mkdir(parents=True, exist_ok=True)
    stamp_file(module).write_text(expected + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only say whether every build is current")
    args = parser.parse_args(argv)
    stale = [module for module in MODULES if not current(module)]
    if args.check:  # reads only, whatever NEWSROOM_PURE_PYTHON says
        for module in stale:
            print(f"native: the build of {module} is missing or out of date: run `make native`")
        return 1 if stale else 0
    if os.environ.get("NEWSROOM_PURE_PYTHON") == "1":
        for module in MODULES:
            remove(module)
        print("native: NEWSROOM_PURE_PYTHON=1, modules run as plain Python")
        return 0
    for module in stale:
        build(module)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
