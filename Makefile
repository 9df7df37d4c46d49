# Self-documenting: `make help` lists every target with the text after `##`.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STATE ?= $(CURDIR)/.state
PORT ?= 8080
TOPOLOGY ?= lab/topologies/metro.clab.yml
# Debian packages the test peers need; installed only when missing. FRR and lldpd run only
# inside the namespace lab: where systemd started them on install, they are stopped and disabled
# at once (a routing daemon and LLDP frames have no business on the host's own network).
DEBIAN_PACKAGES := postgresql netconfd openssh-server snmpd snmp openssl \
  mosquitto mosquitto-clients victoria-metrics prometheus snmptrapd iproute2 chromium \
  frr frr-snmp lldpd iputils-ping

.PHONY: help venv system-deps lint typecheck test test-unit bench run demo clean vendor-js \
  lab-real lab-real-down

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

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
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing && \
	  for unit in frr lldpd; do \
	    case " $$missing " in *" $$unit "*) \
	      if [ -d /run/systemd/system ]; then $$sudo systemctl disable --now $$unit >/dev/null 2>&1 || true; fi;; \
	    esac; \
	  done; \
	fi

lint: venv ## ruff and the import-linter layer contracts ([tool.importlinter] in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv ## mypy, strict
	$(BIN)/mypy

# The suite mostly waits on its peers (servers starting, lease periods, polls), so it runs on
# TEST_WORKERS pytest-xdist processes (3 on CI's 2 cores: more than cores); --dist loadfile
# keeps a file's tests, and the module fixtures they share (a lab, a daemon, a browser), on one
# worker. TEST_WORKERS=0 runs the suite in one process (pytest's own order). Tests marked
# `serial` (bounds of a few 1-2 s lease periods: the cluster's) run after, alone.
TEST_WORKERS ?= 3

test-unit: venv ## the fast tests only (no servers), on pytest-xdist workers (TEST_WORKERS=3)
	$(BIN)/pytest tests/unit -q -n $(TEST_WORKERS)

test: venv system-deps lint typecheck ## everything CI runs: lint, types, unit, integration and e2e tests (on TEST_WORKERS=3 workers)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25 -m "not serial"
	$(BIN)/pytest -q --durations=5 -m serial

bench: venv system-deps ## benchmarks against real peers, each printing ratios from one run
	$(BIN)/python -m bench.snmp_bench
	$(BIN)/python -m bench.netconf_bench
	$(BIN)/python -m bench.gnmi_bench
	$(BIN)/python -m bench.lab_scale
	$(BIN)/python -m bench.placement_bench
	$(BIN)/python -m bench.provisioning_bench
	$(BIN)/python -m bench.polling_bench
	$(BIN)/python -m bench.trap_storm_bench
	$(BIN)/python -m bench.bill_run_bench
	$(BIN)/python -m bench.mqtt_client_bench
	$(BIN)/python -m bench.cli_startup
	$(BIN)/python -m bench.api_listing_bench
	$(BIN)/python -m bench.console_bench
	$(BIN)/python -m bench.cluster_bench

# The daemon talks only to loopback, on the ports the lab uses for this user (the standard
# ones as root, a high-port scheme otherwise).
# Traps: the lab's devices send theirs to the daemon, which takes each device's own community.
TRAP_PORT ?= 10162
# The lab's nodes take the example's addresses, unless LAB_SUBNET (127.x.y.0/24) says otherwise:
# a second `make run` (a test's) beside one already up needs its own.
LAB_SUBNET ?=
LAB_ENV = OSS_DRIVERS__ALLOWED_NETWORKS='["127.0.0.0/8"]' OSS_ASSURANCE__POLLING__INTERVAL_S=10 \
  OSS_ASSURANCE__TRAPS_PORT=$(TRAP_PORT) \
  OSS_DRIVERS__PORTS="$$($(BIN)/python -c 'import json; import oss.known_warnings as w; w.silence_known_warnings(); \
  from lab.sim.lab import Ports; print(json.dumps(Ports.for_this_user().as_dict()))')"

run: venv ## the daemon on 127.0.0.1:$(PORT) (SQLite in .state/) with the metro example as a simulated lab
	@$(BIN)/oss --url http://127.0.0.1:$(PORT) token create --role operator --name make-run \
	  --replace --save --state-dir $(STATE) >/dev/null
	@echo "A token for the CLI is saved in your CLI config; try: $(BIN)/oss device list"
	@echo "The console: http://127.0.0.1:$(PORT)/ui/ -- sign in with the token make run saved: $(BIN)/oss console --show-token"
	@$(LAB_ENV) $(BIN)/oss serve --state-dir $(STATE) --port $(PORT) --topology $(TOPOLOGY) & pid=$$!; \
	trap '$(BIN)/oss lab down --state-dir $(STATE)/lab >/dev/null 2>&1; kill $$pid 2>/dev/null; wait $$pid' EXIT; \
	trap 'exit 0' INT TERM; \
	until $(BIN)/python -c "import httpx,sys; sys.exit(httpx.get('http://127.0.0.1:$(PORT)/readyz').status_code != 200)" 2>/dev/null; do \
	  kill -0 $$pid 2>/dev/null || exit 1; sleep 0.3; done; \
	$(BIN)/oss --url http://127.0.0.1:$(PORT) lab up $(TOPOLOGY) --state-dir $(STATE)/lab \
	  --trap-receiver 127.0.0.1:$(TRAP_PORT) $(if $(LAB_SUBNET),--subnet $(LAB_SUBNET)) && \
	echo "The lab is up; try: $(BIN)/oss slice create --from north --to south --bandwidth 200M --latency 5ms --customer acme"; \
	wait $$pid

# The real-dataplane lab (root): the topology in network namespaces, the daemon inside the
# management namespace (SQLite in $(STATE)/lab-real), published on the root's 127.0.0.1:$(PORT)
# by a forwarder; nothing in the root namespace ever addresses a lab address.
lab-real: venv system-deps ## (root) metro in network namespaces: FRR, snmpd, lldpd, sshd per node; the daemon inside, on 127.0.0.1:$(PORT)
	@$(BIN)/oss --url http://127.0.0.1:$(PORT) token create --role operator --name make-lab-real \
	  --replace --save --state-dir $(STATE)/lab-real >/dev/null
	$(BIN)/oss --url http://127.0.0.1:$(PORT) lab up --netns $(TOPOLOGY) \
	  --state-dir $(STATE)/lab-netns --serve $(STATE)/lab-real --port $(PORT)

lab-real-down: venv ## take the lab-real lab and its daemon down (idempotent)
	$(BIN)/oss lab down --netns --state-dir $(STATE)/lab-netns

vendor-js: venv ## re-fetch cytoscape.js for the console from the npm registry (VERSION=3.x.y; default latest), check its sha512 integrity, write the manifest
	$(BIN)/python -m oss.console.vendor $(VERSION)

demo: venv ## the BSS showcase: order a slice on the simulated lab, break its SLA, print the bill
	@$(BIN)/oss demo

clean: ## remove the venv, caches and the make-run state
	rm -rf $(VENV) $(STATE) .mypy_cache .ruff_cache .pytest_cache
