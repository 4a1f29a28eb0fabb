# Callcenter developer tasks. `make` alone lists them.
#
# Postgres and Redis: `make services` uses DATABASE_URL / REDIS_URL when they answer, else the
# local defaults (127.0.0.1:5432, 127.0.0.1:6379), else starts embedded servers under .local/.
# The chosen URLs are written to .local/services.env, which the recipes below load.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV          := .venv
PYTHON        := $(VENV)/bin/python
STAMP         := $(VENV)/.stamp
REQUIREMENTS  := $(wildcard requirements/*.txt)
SYSTEM_PYTHON := $(shell command -v python3.11 || command -v python3)
WITH_SERVICES := . .local/services.env &&
PYTEST_ARGS   ?=
# pytest's own exit code, for .ci/run: make itself always exits 2 when a recipe fails.
PYTEST_EXIT_CODE := .local/pytest-exit-code
# The process id of `make run`'s honcho, for `make stop`.
RUN_PID       ?= .local/run.pid

.PHONY: help venv services migrate static demo-tenant run stop info lint test coverage down clean

help: ## List the targets
	@echo "Usage: make <target>"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(STAMP) ## Create .venv; (re)install requirements/dev.txt when requirements/*.txt change

$(STAMP): $(REQUIREMENTS)
	@test -x $(PYTHON) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install -r requirements/dev.txt
	@touch $@

services: venv ## Find or start Postgres and Redis, write .local/services.env
	$(PYTHON) scripts/services.py up

migrate: services ## Apply migrations to the shared schema, then to every tenant schema
	$(WITH_SERVICES) $(PYTHON) manage.py migrate_schemas --shared && $(PYTHON) manage.py migrate_schemas

static: venv ## Collect static files (admin, API docs, dashboard) for the web server to serve
	$(PYTHON) manage.py collectstatic --noinput --verbosity 0

demo-tenant: migrate ## Create the demo tenant (idempotent); `make info` prints its logins and API key
	$(WITH_SERVICES) $(PYTHON) manage.py demo_setup --quiet

# honcho gives every process its own PORT (web gets the -p value), so the web's port is also passed
# as WEB_PORT, for the banner. Its process id goes to $(RUN_PID), for `make stop`.
run: venv services migrate static demo-tenant ## Run web, worker, beat and demo traffic; prints the logins once the web answers; Ctrl-C (or `make stop`) stops them (webhooks may target 127.0.0.1 here)
	$(WITH_SERVICES) echo $$$$ > $(RUN_PID) && WEB_PORT=$${PORT:-8000} WEBHOOKS_ALLOW_PRIVATE=$${WEBHOOKS_ALLOW_PRIVATE:-true} exec $(VENV)/bin/honcho start -f Procfile -p $${PORT:-8000}

# Only a honcho process is signalled: a stale file naming another process is ignored.
stop: ## Stop what `make run` started (from another terminal), and wait until it has
	@pid=$$(cat $(RUN_PID) 2>/dev/null); \
	if [ -n "$$pid" ] && ps -o args= -p "$$pid" 2>/dev/null | grep -q honcho; then \
		echo "Stopping make run (honcho, pid $$pid) and its processes..."; kill -TERM "$$pid"; \
		for _ in $$(seq 100); do ps -o stat= -p "$$pid" 2>/dev/null | grep -qv Z || break; sleep 0.2; done; \
		if ps -o stat= -p "$$pid" 2>/dev/null | grep -qv Z; then echo "still running after 20 s: kill $$pid"; exit 1; fi; \
		rm -f $(RUN_PID); echo "Stopped."; \
	else \
		rm -f $(RUN_PID); echo "Nothing started by make run is running."; \
	fi

info: venv ## Print the logins, API key and URLs again (port: PORT, else the last `make run`'s, else 8000)
	@$(WITH_SERVICES) $(PYTHON) manage.py info

lint: venv ## ruff check, ruff format --check, mypy, lint-imports (import rules between apps)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy . && $(VENV)/bin/lint-imports --no-logo

test: venv services lint ## Lint, make sure Chromium exists, then run pytest (extra options: PYTEST_ARGS=...)
	$(WITH_SERVICES) $(PYTHON) scripts/browsers.py ensure
	@rm -f $(PYTEST_EXIT_CODE)
	$(WITH_SERVICES) { $(VENV)/bin/pytest $(PYTEST_ARGS); code=$$?; echo $$code > $(PYTEST_EXIT_CODE); exit $$code; }

# Coverage roughly doubles the suite's time (Python 3.11 traces every line), so `make test` runs
# without it and this target adds it.
coverage: ## `make test` with a line-coverage report of the product's packages
	$(MAKE) test PYTEST_ARGS="--cov --cov-report=term:skip-covered --no-cov-on-fail $(PYTEST_ARGS)"

# services.py down is stdlib only, so this also works when .venv is gone.
down: ## Stop the embedded Postgres and Redis (external servers are left alone)
	@if [ -x $(PYTHON) ]; then $(PYTHON) scripts/services.py down; else $(SYSTEM_PYTHON) scripts/services.py down; fi

clean: down ## Stop embedded services, remove .local and .venv
	rm -rf .local $(VENV)
