# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
# The suite's Python (and the servers and commands it starts) keeps compiled bytecode, pytest's
# rewritten test modules included, under the virtualenv: an environment that turns bytecode off
# would otherwise compile every module in every process of every run.
TESTENV := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(abspath $(VENV))/pycache

.PHONY: run test check lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip || true

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

## run: install, migrate, seed the demo and serve on http://127.0.0.1:$(PORT), 5000 unless PORT is given (SQLite, in-process jobs)
run: $(VENV)/.installed
	$(BIN)/groundwork db upgrade
	$(BIN)/groundwork demo
	@echo "Serving on http://$(HOST):$(PORT)  (Ctrl+C to stop)"
	$(BIN)/groundwork run --host $(HOST) --port $(PORT)

## test: install the dev extras, check the layer contracts, run the whole suite (SQLite + PostgreSQL, inline + RQ, browser)
test: $(VENV)/.dev-installed
	$(BIN)/lint-imports
	$(TESTENV) $(BIN)/python -m pytest -n auto --dist worksteal $(PYTEST_ARGS)

## check: the inner loop, under a minute: lint, the layer contracts, and the fast tests (SQLite, no browser)
check: $(VENV)/.dev-installed
	$(BIN)/ruff check app tasks tests bench migrations
	$(BIN)/lint-imports
	$(TESTENV) $(BIN)/python -m pytest -n auto --dist worksteal -q -m "not postgres and not redis and not browser and not slow" $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check app tasks tests bench migrations
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache
