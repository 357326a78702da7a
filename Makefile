# Newsroom — the commands the README promises.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup native run test lint bench soak chaos clean

setup: ## everything a fresh Debian machine needs
	bash deploy/setup.sh

native: ## compile the hot modules with mypyc where a build is missing or out of date (deploy/native.py)
	$(BIN)/python deploy/native.py

run: native ## the whole stack on the embedded broker, demo loaded (Ctrl-C stops it)
	$(BIN)/newsroom dev

test: native ## the whole suite; starts and stops the broker and Redis it needs
	NEWSROOM_REQUIRE_NATIVE=$$([ "$${NEWSROOM_PURE_PYTHON:-0}" = 1 ] && echo 0 || echo 1) $(BIN)/python -m pytest

lint: ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs services tests benchmarks deploy

bench: native ## benchmarks, printed as ratios against baselines measured in the same run
	$(BIN)/python -m benchmarks

soak: native ## the stack at `make run` rates for longer (BENCH_SOAK_SECONDS, default 600 here): freshness per quarter
	BENCH_SOAK_SECONDS=$${BENCH_SOAK_SECONDS:-600} $(BIN)/python -m benchmarks soak

chaos: native ## fault injection under load (kills, Redis/broker restarts, poison, bad HTTP, XSS): exit 1 if anything was lost
	$(BIN)/python -m benchmarks.chaos $(CHAOS_ARGS)

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache artifacts build
	find libs services -name "*.so" -delete
