# onyxia-py: `make run` starts the platform, `make test` runs everything. `make help` lists targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE ?= $(HOME)/.cache/onyxia-py
DEV_CLUSTER_DIR ?= $(CACHE)/dev-cluster
export ONYXIA_CACHE_DIR := $(CACHE)

.PHONY: help install system-deps k8s oidc-deps lint bench bench-usable bench-services bench-sessions bench-scale format test test-unit run dev-cluster dev-cluster-stop config-docs clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

install: $(BIN)/.installed ## Install Python dependencies (runtime and dev tools) into .venv

system-deps: ## Install the Debian packages the local cluster and tests need (PostgreSQL, nginx, dnsmasq, registry, Chromium, Ceph RGW)
	@bash devtools/system-deps.sh
	@bash devtools/system-deps-net.sh
	@bash devtools/system-deps-node.sh
	@bash devtools/system-deps-images.sh
	@bash devtools/system-deps-oci.sh
	@bash devtools/system-deps-browser.sh
	@bash devtools/system-deps-s3.sh

k8s: system-deps ## Build kube-apiserver, controller-manager and scheduler once (cached in ~/.cache)
	@bash devtools/build-k8s.sh

lint: install ## ruff, mypy --strict and the import-linter layer contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install ## Reformat the code and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

oidc-deps: system-deps ## Install the test OpenID Provider (npm oidc-provider) in devtools/oidc
	@test -d devtools/oidc/node_modules/oidc-provider || (cd devtools/oidc && npm ci --no-audit --no-fund)

test: install k8s oidc-deps lint ## Install what is missing, lint, type-check and run the whole suite
	@$(BIN)/pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; \
	exit $$rc

test-unit: install ## Run the unit tests only (no cluster, no servers)
	$(BIN)/pytest tests/unit

bench: install ## Catalogue benchmark (prints a table: median, p95, targets)
	$(BIN)/python -m bench.catalog_bench

bench-usable: install k8s ## Launch-to-usable benchmark: Jupyter on a real node, POST -> HTTP 200 vs a bare Helm install
	$(BIN)/python -m bench.usable_bench

bench-sessions: install ## Session lookup benchmark: GET /api/me with the session cache off and on (SQLite and PostgreSQL)
	$(BIN)/python -m bench.session_bench --database both

bench-services: install k8s ## Services benchmark: 2,000 services, listings vs Helm, launches (~15 min)
	$(BIN)/python -m bench.services_bench

bench-scale: install k8s ## Scale benchmark: 10,000 services in 5,000 projects, a fresh server at 0/2,000/10,000 (hours)
	$(BIN)/python -m bench.scale_bench

dev-cluster: install k8s ## Start the local control plane in the background (idempotent; resumes a state kept by KEEP=1)
	@$(BIN)/python -m devtools.localcluster start --state-dir $(DEV_CLUSTER_DIR) $(DEV_CLUSTER_NODES)

# KEEP=1 keeps etcd, the volumes and the local S3 data for the next start; without it they are
# dropped (said first; at a terminal it asks when there is something to lose, YES=1 does not).
dev-cluster-stop: ## Stop the local control plane and S3 server, dropping their state (KEEP=1 keeps it for the next start)
	@if [ -x $(BIN)/python ]; then \
	  $(BIN)/python -m devtools.localcluster stop --state-dir $(DEV_CLUSTER_DIR) \
	    $(if $(filter 1 yes true,$(KEEP)),--keep-data) $(if $(filter 1 yes true,$(YES)),--yes) || exit $$?; \
	  $(BIN)/python -m devtools.localstack stop --state-dir $(DEV_CLUSTER_DIR); \
	fi

run: install k8s ## Serve on http://127.0.0.1:8000 (no kubeconfig set: dev cluster + local S3; AUTH=oidc adds login)
	@DEV_CLUSTER_DIR=$(DEV_CLUSTER_DIR) AUTH=$(AUTH) bash devtools/run.sh

config-docs: install ## Regenerate docs/configuration.md from the settings
	$(BIN)/python -m onyxia_py config-docs

clean: ## Remove the virtualenv, caches and the local SQLite database
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache onyxia.db onyxia.db-wal onyxia.db-shm
