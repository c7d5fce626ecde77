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
TIMEOUT ?= 600

# Template checks and `sam build` use tools in environments of their own (.tools/), pinned in tools/*.txt,
# so their pins never bend the project's. Installed once (a stamp file), then run offline.
TOOLS          := .tools
SAM_VENV       := $(TOOLS)/sam
CHECKOV_VENV   := $(TOOLS)/checkov
SAM_STAMP      := $(SAM_VENV)/.installed
CHECKOV_STAMP  := $(CHECKOV_VENV)/.installed
SAM            := $(SAM_VENV)/bin/sam
TEMPLATE       := template.yaml
# SAM CLI wants a region even to validate; no credentials and no network are needed for these checks.
SAM_ENV        := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1}
# `sam build` looks for python3.13 on PATH; with pyenv that is the shim dir plus PYENV_VERSION.
PYENV_SHIMS    := $(shell command -v pyenv >/dev/null 2>&1 && echo "$$(pyenv root)/shims")
BUILD_ENV      := $(SAM_ENV) PYENV_VERSION=3.13.0 $(if $(PYENV_SHIMS),PATH="$(PYENV_SHIMS):$$PATH")

.PHONY: help install demo test lint typecheck unit integration bench clean
.PHONY: tools template-check sam-validate cfn-lint checkov build

help:
	@echo "make demo   run the main job on the local stack (FILE=path/to/customers.csv for your own file, TIMEOUT=seconds)"
	@echo "make test   lint, type-check, template checks, unit and integration tests"
	@echo "make bench  benchmarks, one JSON line each"
	@echo "make build  sam build (arm64, python3.13) into .aws-sam/, ready for sam deploy --guided"
	@echo "make template-check  sam validate --lint, cfn-lint and checkov on template.yaml (part of make test)"

install: $(STAMP)

$(STAMP): pyproject.toml src/requirements.txt requirements-dev.txt
	@$(BOOT_PY) -c 'import sys; assert sys.version_info >= (3, 11), "bik-sync needs Python >= 3.11, found " + sys.version' 
	$(BOOT_PY) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e ".[cli]"
	@touch $(STAMP)

demo: install
	$(PY) -m bik_local.demo $(if $(FILE),--file "$(FILE)") --timeout $(TIMEOUT)

lint: install
	$(VENV)/bin/ruff check src local tests
	$(VENV)/bin/ruff format --check src local tests

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(PY) -m pytest tests/unit -q

integration: install
	$(PY) -m pytest tests/integration -q

# The checks (and the installs of their tools) side by side, then the tests in two workers, each with
# a local stack of its own: the integration tests mostly wait on it.
test:
	$(MAKE) --no-print-directory -j3 lint typecheck template-check
	$(PY) -m pytest tests -q -n 2

tools: $(SAM_STAMP) $(CHECKOV_STAMP)

$(SAM_STAMP): tools/sam.txt
	rm -rf $(SAM_VENV)
	$(BOOT_PY) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/sam.txt
	@touch $(SAM_STAMP)

$(CHECKOV_STAMP): tools/checkov.txt
	rm -rf $(CHECKOV_VENV)
	$(BOOT_PY) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/checkov.txt
	@touch $(CHECKOV_STAMP)

template-check: sam-validate cfn-lint checkov

sam-validate: $(SAM_STAMP)
	$(SAM_ENV) $(SAM) validate --lint --template $(TEMPLATE)

cfn-lint: $(SAM_STAMP)
	$(SAM_VENV)/bin/cfn-lint $(TEMPLATE)

# --skip-download: no calls to the vendor's platform (offline); every skip is justified in the template.
checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov -f $(TEMPLATE) --framework cloudformation --compact --quiet --skip-download

build: $(SAM_STAMP)
	$(BUILD_ENV) $(SAM) build --template $(TEMPLATE)

bench: install
	$(PY) -m bik_local.bench

clean:
	rm -rf $(VENV) $(TOOLS) .bench .pytest_cache .mypy_cache .ruff_cache .aws-sam
