# The two set-up commands of the README. Each installs what it needs (uv from PyPI, the locked
# Python dependencies) and runs: `make demo` the main job on the bundled demo data, `make test`
# the whole test suite (the same command .ci/run calls).
SHELL := /bin/bash
PY ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PY) -m uv")

.PHONY: demo test lint bench uv system-deps

uv:
	@command -v uv >/dev/null 2>&1 || $(PY) -m uv --version >/dev/null 2>&1 || $(PY) -m pip install --quiet uv

# System packages the tests need (headless Chromium for the report tests); installed only when
# missing and when we may (root with apt-get), otherwise the tests that need them say so.
system-deps:
	@bash scripts/system-deps.sh

demo: uv
	$(UV) run --frozen --no-dev trdstage demo

test: uv system-deps
	$(UV) run --frozen pytest

lint: uv
	$(UV) run --frozen ruff check src tests bench
	$(UV) run --frozen mypy

bench: uv
	$(UV) run --frozen python bench/bench_assess.py
