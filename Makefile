# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip || true

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

## run: install, migrate, seed the demo and serve on http://127.0.0.1:5000 (SQLite, in-process jobs)
run: $(VENV)/.installed
	$(BIN)/groundwork db upgrade
	$(BIN)/groundwork demo
	@echo "Serving on http://$(HOST):$(PORT)  (Ctrl+C to stop)"
	$(BIN)/groundwork run --host $(HOST) --port $(PORT)

## test: install the dev extras and run the whole suite (SQLite + PostgreSQL, inline + RQ, browser)
test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check app tasks tests bench migrations

clean:
	rm -rf $(VENV) .pytest_cache
