# Custody — the two set-up commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

# The test environment: real PostgreSQL and Redis on this machine (DESIGN §9), DEBUG off like production.
TEST_ENV := CUSTODY_DEBUG=0 \
	SECRET_KEY=test-secret-key-not-for-production \
	DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/custody} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/5} \
	CUSTODY_TASKS_EAGER=1 \
	CUSTODY_SECURE_COOKIES=0 \
	CUSTODY_STATIC_STORAGE=django.contrib.staticfiles.storage.StaticFilesStorage \
	CUSTODY_VAR_DIR=$(CURDIR)/var/test \
	CUSTODY_SIGNING_KEY_AUTOCREATE=1 \
	CUSTODY_PASSWORD_HASHERS=django.contrib.auth.hashers.MD5PasswordHasher \
	CUSTODY_EMAIL_BACKEND=django.core.mail.backends.locmem.EmailBackend

RUN_ENV := CUSTODY_DEBUG=1 CUSTODY_TASKS_EAGER=1 CUSTODY_VAR_DIR=$(CURDIR)/var \
	CUSTODY_AUDIT_WITNESSES=file:$(CURDIR)/var/witness/checkpoints.jsonl

.PHONY: run test fuzz lint bench install system-packages lock clean

$(STAMP): requirements/app.txt requirements/dev.txt pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements/app.txt -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## Debian packages the browser tests and PDF rendering need (Chromium, Pango for WeasyPrint, poppler for pdftoppm).
system-packages:
	@missing=""; \
	for pkg in chromium libpango-1.0-0 libpangoft2-1.0-0 poppler-utils fonts-dejavu-core; do \
		dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

## The embedded default: SQLite, in-process tasks, demo data, server on 127.0.0.1:8000.
run: $(STAMP)
	mkdir -p var
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py seed_demo
	$(RUN_ENV) $(PY) manage.py runserver 127.0.0.1:8000

## The whole suite against PostgreSQL and Redis, browsers included. Exit 5 (no tests collected) fails.
test: $(STAMP) system-packages
	mkdir -p var/test staticfiles
	@# Tests that use the Redis broker for real (marked `worker`) run first, alone: parallel test processes
	@# share the broker's queue, so a worker could take another process's task or a purge drop its own.
	$(TEST_ENV) $(PY) -m pytest -q -m worker $(PYTEST_ARGS); status=$$?; \
	if [ $$status -ne 0 ] && [ $$status -ne 5 ]; then exit $$status; fi
	$(TEST_ENV) $(PY) -m pytest -n 2 --dist loadgroup -q -m "not worker" $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$status

## The schema fuzzer with a larger budget than `make test` gives it (docs/security.md, "Input limits and fuzzing").
fuzz: $(STAMP)
	mkdir -p var/test staticfiles
	$(TEST_ENV) CUSTODY_FUZZ_EXAMPLES=$${CUSTODY_FUZZ_EXAMPLES:-200} \
		CUSTODY_FUZZ_PHASES=$${CUSTODY_FUZZ_PHASES:-examples,coverage,fuzzing,stateful} \
		$(PY) -m pytest -q -m fuzz $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check --exclude "*.md" .
	@# DESIGN §3: every import points down the app list (contracts in pyproject.toml).
	$(BIN)/lint-imports --no-cache
	@# One of each idea: no run of lines written twice in the product code (settings in pyproject.toml).
	$(BIN)/pylint --score=n config home reports runtime approvals traceability evidence alerts changecontrol common custody_cli

## Benchmarks: each measures its floor in the same run and reports the ratio (docs/benchmarks.md).
bench: $(STAMP)
	mkdir -p var/test staticfiles
	$(TEST_ENV) $(PY) -m benchmarks

## Re-pin every dependency with hashes after editing requirements/*.in.
lock:
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile --python-version 3.11 --generate-hashes requirements/app.in -o requirements/app.txt
	$(BIN)/uv pip compile --python-version 3.11 --generate-hashes requirements/dev.in -o requirements/dev.txt

clean:
	rm -rf $(VENV) var staticfiles
