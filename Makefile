# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install install-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

# Debian's Chromium drives the browser tests (tests/e2e/test_docs_offline.py).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null

# Debian's Prometheus and promtool run the monitoring test (tests/e2e/test_prometheus.py); the
# package lists are updated only when they are too old to install it.
PROMETHEUS := /usr/bin/prometheus

$(PROMETHEUS):
	SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); export DEBIAN_FRONTEND=noninteractive; \
	INSTALL="$$SUDO apt-get install -y -qq --no-install-recommends prometheus"; \
	$$INSTALL >/dev/null 2>&1 || { $$SUDO apt-get update -qq && $$INSTALL >/dev/null; }

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/lootcapital serve

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Test files run in parallel, one worker per core (at most 4): a file's module fixtures (a
# server, a database) stay in one worker. The tests driving Chromium run after them, alone: a
# real browser's timing suffered when it shared 2 cores with the workers.
test: lint $(CHROMIUM) $(PROMETHEUS)
	$(BIN)/pytest -q -n auto --maxprocesses 4 --dist loadfile -m "not browser"
	$(BIN)/pytest -q -m browser

bench: install-dev
	$(BIN)/python benchmarks/backtest_speed.py
	$(BIN)/python benchmarks/paper_latency.py
	$(BIN)/python benchmarks/api_latency.py
	$(BIN)/python benchmarks/panel_render.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
