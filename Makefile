# Self-documenting: `make help` lists every target with the text after `##`.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STATE ?= $(CURDIR)/.state
PORT ?= 8080
TOPOLOGY ?= lab/topologies/metro.clab.yml
# Debian packages the test peers need; installed only when missing.
DEBIAN_PACKAGES := postgresql netconfd openssh-server snmpd snmp openssl

.PHONY: help venv system-deps lint typecheck test test-unit bench run clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/.installed ## create .venv and install the project with its test tools

system-deps: ## install the Debian packages the tests need, when missing (apt-get)
	@missing=""; \
	for pkg in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint: venv ## ruff: lint and formatting
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv ## mypy, strict
	$(BIN)/mypy

test-unit: venv ## the fast tests only (no servers)
	$(BIN)/pytest tests/unit -q

test: venv system-deps lint typecheck ## everything CI runs: lint, types, unit, integration and e2e tests
	$(BIN)/pytest -q

bench: venv system-deps ## benchmarks against real peers, each printing ratios from one run
	$(BIN)/python -m bench.snmp_bench
	$(BIN)/python -m bench.netconf_bench
	$(BIN)/python -m bench.gnmi_bench
	$(BIN)/python -m bench.lab_scale

run: venv ## serve the API on 127.0.0.1:$(PORT) with SQLite in .state/ and the metro example topology
	@$(BIN)/oss --url http://127.0.0.1:$(PORT) token create --role operator --name make-run \
	  --replace --save --state-dir $(STATE) >/dev/null
	@echo "A token for the CLI is saved in your CLI config; try: $(BIN)/oss device list"
	$(BIN)/oss serve --state-dir $(STATE) --port $(PORT) --topology $(TOPOLOGY)

clean: ## remove the venv, caches and the make-run state
	rm -rf $(VENV) $(STATE) .mypy_cache .ruff_cache .pytest_cache
