#!/usr/bin/env bash
# Compiles the hot pure-Python modules below to C extensions with mypyc (it ships with mypy), in place:
# Python imports `tagger.cpython-311-….so` before `tagger.py` when both sit in the package folder.
# The .py stays the source of truth; a module is rebuilt only when its source is newer than its build,
# and tests/enrichment/test_native.py checks that the build is current and tags exactly as the source.
# NEWSROOM_PURE_PYTHON=1 skips compiling (and removes any build): everything then runs as plain Python.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PY:-.venv/bin/python}"
MODULES=(services/enrichment/newsroom/enrichment/tagger.py)
suffix="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"

if [ "${NEWSROOM_PURE_PYTHON:-0}" = 1 ]; then
  for source in "${MODULES[@]}"; do
    rm -f "${source%.py}${suffix}" "${source%.py}__mypyc${suffix}"
  done
  echo "native: NEWSROOM_PURE_PYTHON=1, modules run as plain Python"
  exit 0
fi

stale=()
for source in "${MODULES[@]}"; do
  built="${source%.py}${suffix}"
  if [ ! -e "$built" ] || [ "$source" -nt "$built" ]; then
    stale+=("$source")
  fi
done
[ ${#stale[@]} -gt 0 ] || exit 0

for source in "${stale[@]}"; do
  echo "native: compiling $source with mypyc"
  # mypyc type-checks with the project's mypy settings (pyproject.toml) and builds under build/.
  mkdir -p build
  if ! "$PY" -m mypyc "$source" >build/native.log 2>&1; then
    cat build/native.log >&2
    echo "native: compiling $source failed (NEWSROOM_PURE_PYTHON=1 runs it as plain Python)" >&2
    exit 1
  fi
  # The build leaves a file alone when its bytes did not change (the import shim): mark both as new.
  touch "${source%.py}${suffix}" "${source%.py}__mypyc${suffix}"
done
