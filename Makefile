# bik-sync — every command a newcomer needs. `make demo` and `make test` install what they use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Python 3.13 (the Lambda runtime) when it runs here, else python3 (>= 3.11). pyenv's shim only runs
# 3.13 with PYENV_VERSION set, so we test that it runs rather than that it exists.
BOOT_PY := $(shell if PYENV_VERSION=3.13.0 python3.13 -c 'import sys' >/dev/null 2>&1; then \
             echo "env PYENV_VERSION=3.13.0 python3.13"; else echo python3; fi)
FILE ?=

.PHONY: help install demo test lint typecheck unit integration bench clean

help:
	@echo "make demo   run the main job on the local stack (FILE=path/to/customers.csv for your own file)"
	@echo "make test   lint, type-check, unit and integration tests"
	@echo "make bench  benchmarks, one JSON line each"

install: $(STAMP)

$(STAMP): pyproject.toml src/requirements.txt requirements-dev.txt
	@$(BOOT_PY) -c 'import sys; assert sys.version_info >= (3, 11), "bik-sync needs Python >= 3.11, found " + sys.version' 
	$(BOOT_PY) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

demo: install
	$(PY) -m bik_local.demo $(if $(FILE),--file "$(FILE)")

lint: install
	$(VENV)/bin/ruff check src local tests
	$(VENV)/bin/ruff format --check src local tests

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(PY) -m pytest tests/unit -q

integration: install
	$(PY) -m pytest tests/integration -q

test: lint typecheck
	$(PY) -m pytest tests -q

bench: install
	$(PY) -m bik_local.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam
