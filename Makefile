# Two commands on a fresh machine:  make run   and   make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PORTAL_ENV ?= development

.PHONY: run test venv system-deps lock clean

# Dependencies come from requirements.lock (pinned, with hashes); `make lock` regenerates it.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

## Set up everything (virtualenv, dependencies, migrations, demo data) and serve on http://127.0.0.1:5000
run: venv
	bash scripts/system-deps.sh --runtime
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi demo-data
	$(BIN)/flask --app wsgi run --host 127.0.0.1 --port 5000

## Run the whole test suite: static checks, SQLite leg always, PostgreSQL leg when reachable
test: venv system-deps
	bash scripts/test.sh

## Regenerate requirements.lock from pyproject.toml (after adding a dependency)
lock:
	bash scripts/lock.sh

## Debian packages the portal and the tests need (fonts for PDFs, poppler-utils, chromium)
system-deps:
	bash scripts/system-deps.sh

clean:
	rm -rf $(VENV) instance/*.sqlite3* .pytest_cache
