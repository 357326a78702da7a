#!/usr/bin/env bash
# Installs what the project needs on a Debian machine: redis-server, Chromium for the
# browser test, wrk for the web benchmark, and the virtualenv at .venv with the project.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v wrk >/dev/null || need+=(wrk)
# deploy/native.py compiles the hot modules with mypyc: a C compiler and the interpreter's headers.
command -v gcc >/dev/null || need+=(gcc libc6-dev)
"$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
  || need+=("${PYTHON##*/}-dev")
if [ "${NEWSROOM_SKIP_BROWSER:-0}" != 1 ]; then
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
fi
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
.venv/bin/python deploy/native.py
.venv/bin/python -c "from newsroom.cli.stack import tansu_binary; print('setup: broker binary', tansu_binary())"
echo "setup: done (.venv/bin/newsroom)"
