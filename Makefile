# tidecast: `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install test test-unit test-integration lint demo bench chaos clean

help:  ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[embedded,bench,dev,parquet]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv from scratch with everything (torch pinned to 2.13.0)

test: lint  ## Lint, then every test: unit, then integration on the embedded broker and Redis
	$(BIN)/pytest -q

test-unit: $(STAMP)  ## Unit tests only (no servers)
	$(BIN)/pytest -q tests/unit -m "not integration"

test-integration: $(STAMP)  ## Integration tests only (embedded broker and Redis)
	$(BIN)/pytest -q -m integration

lint: $(STAMP)  ## ruff, the import-linter contracts (pyproject.toml) and mypy
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

demo: $(STAMP)  ## Run the main job on the embedded broker and Redis
	$(BIN)/tidecast demo

bench: $(STAMP)  ## Run the benchmarks in bench/ (prints reports; about 15 minutes)
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/forecast_cycle.py
	$(BIN)/python bench/adaptation.py
	$(BIN)/python bench/backtest.py

chaos: $(STAMP)  ## The chaos bench: ~586k events through killed processes and failing servers (bench/chaos.py)
	$(BIN)/python bench/chaos.py

clean:  ## Remove the venv and local state
	rm -rf $(VENV) .tidecast build *.egg-info
