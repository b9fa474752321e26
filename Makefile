# slatesim: `make run` serves the app, `make test` passes the tests; both set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SERVICES := scripts/services.sh
SERVICES_ENV := .run/services.env
PYTEST_ARGS ?=

.PHONY: help install tools services-up services-down services-status run seed test test-fast test-container test-long lint bench \
        bench-http bench-store bench-sim bench-lifecycle bench-instance bench-dashboard soak clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(INSTALLED): setup.cfg setup.py requirements.txt requirements-dev.txt app/slates/_kernel.c
	scripts/install-build-deps.sh $(PYTHON)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e '.[test]'
	touch $@

install: $(INSTALLED) ## Create .venv and install the package with its test extras

tools: ## Install nginx, HAProxy, wrk, curl, chromium (Debian) and Toxiproxy (go install) for e2e and benchmarks
	scripts/install-tools.sh

services-up: ## Start the local Redis and Neo4j under .run/ (installs them when missing)
	$(SERVICES) up

services-down: ## Stop the local Redis and Neo4j that services-up started
	$(SERVICES) down

services-status: ## Say what runs where
	$(SERVICES) status

run: install ## Serve the app with gunicorn on 127.0.0.1:8000 (local services unless configured)
	exec scripts/run.sh

seed: install ## Load the demo slates into Neo4j (idempotent)
	scripts/run.sh seed

PYTEST := set -a && source $(SERVICES_ENV) && set +a && $(BIN)/python -m pytest
# Test processes of `make test` (pytest-xdist), each on a Redis database of its own.
TEST_PROCESSES ?= 2

test: install tools services-up ## Run the test suite against the real local Redis and Neo4j
	$(PYTEST) -n $(TEST_PROCESSES) -m "not long and not container" $(PYTEST_ARGS)

test-fast: install ## Unit tests with no service at all (fakeredis, Flask's test client)
	$(BIN)/python -m pytest -m "not services and not e2e and not long and not container" $(PYTEST_ARGS)

test-container: install services-up ## Build the image with podman (base made with debootstrap) and run it for real
	scripts/container-image.sh
	$(PYTEST) -m container $(PYTEST_ARGS)

test-long: install tools services-up ## The long variants: million-job backlog, repeated failovers
	$(PYTEST) -m long $(PYTEST_ARGS)

lint: install ## Lint with ruff and type-check with mypy (settings in setup.cfg)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Benchmarks run against the local services with the demo slates loaded; they never fail.
BENCH := set -a && source $(SERVICES_ENV) && set +a && $(BIN)/flask --app app.wsgi seed --if-empty \
	&& $(BIN)/python -m bench.run

bench: install tools services-up ## Every benchmark: a table, MISSED lines, bench/results/latest.json
	$(BENCH)

bench-http: install tools services-up ## HTTP: wrk against production gunicorn vs a bare Flask app
	$(BENCH) http

bench-store: install services-up ## Store: submits/s vs python-rq, Redis round trips per operation
	$(BENCH) store

bench-sim: install services-up ## Simulation throughput against numpy's raw normal rate
	$(BENCH) sim

bench-lifecycle: install services-up ## Shutdown and crash-recovery timings of a real gunicorn
	$(BENCH) lifecycle

bench-instance: install services-up ## A full instance at defaults: aggregate job rate, probes under load
	$(BENCH) instance

bench-dashboard: install services-up ## Dashboard: a 494-player job page's server time, the overview's Redis CPU
	$(BENCH) dashboard

soak: install tools services-up ## Seeded random faults under load, then every record checked (SOAK_SECONDS, SOAK_SEED)
	set -a && source $(SERVICES_ENV) && set +a && $(BIN)/flask --app app.wsgi seed --if-empty \
		&& $(BIN)/python -m tests.soak

clean: ## Remove the venv, caches and logs (keeps .run/ data: use services-down first)
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache logs
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
