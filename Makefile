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

# The main job on the embedded default: the bundled demo patients staged one by one, then a
# synthetic OMOP cohort on DuckDB staged under every model, with its research report.
DEMO_OUT ?= demo-output
demo: uv
	$(UV) run --frozen --no-dev --inexact trdstage demo
	$(UV) run --frozen --no-dev --inexact trdstage cohort synth --persons 5000 --seed 1 --out $(DEMO_OUT)/cdm.duckdb
	$(UV) run --frozen --no-dev --inexact trdstage cohort stage --omop $(DEMO_OUT)/cdm.duckdb --out $(DEMO_OUT)/results.parquet --as-of 2026-01-01
	$(UV) run --frozen --no-dev --inexact trdstage cohort report --results $(DEMO_OUT)/results.parquet --out $(DEMO_OUT)/report
	@echo "Open $(DEMO_OUT)/report/index.html for the cohort report."

test: uv system-deps
	$(UV) run --frozen pytest

lint: uv
	$(UV) run --frozen ruff check src tests bench
	$(UV) run --frozen mypy

bench: uv
	$(UV) run --frozen python bench/bench_assess.py
