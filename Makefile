# Open Licence Registry: developer and CI entry points.
#
#   make run        migrate the database, serve on http://127.0.0.1:$PORT (PORT default 5000)
#   make test       test suite on SQLite            (PYTEST_ARGS='-k foo -x' passes through)
#   make test-pg    test suite on PostgreSQL        (PG_URL=postgresql+psycopg://… to override)
#   make lint       ruff check, ruff format --check, mypy
#   make format     ruff format, then ruff check --fix
#   make bench      quick benchmark                 (make bench-full for the full one)
#   make translations        compile the pages' catalogues (.po → .mo; run, test do it too)
#   make translations-update extract the pages' messages into the .po files to translate
#   make screenshots         browser tests, saving the main pages to docs/screenshots/
#   make clean      remove caches                   (make distclean also removes .venv, instance/)
#
# Works from a fresh clone: every target that needs Python first checks the Debian packages
# (scripts/ensure-system-packages.sh), creates .venv and installs the project into it.

SHELL := /bin/bash
# -e and pipefail so that a failing command in a multi-line recipe fails the target.
.SHELLFLAGS := -eu -o pipefail -c
# The targets share one apt/dpkg lock and one .venv: running them in parallel only races.
.NOTPARALLEL:
.DEFAULT_GOAL := help

PYTHON ?= python3
PORT ?= 5000
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

VENV := .venv
VENV_PY := $(VENV)/bin/python
PIP := $(VENV_PY) -m pip --disable-pip-version-check
FLASK := $(VENV)/bin/flask --app wsgi
# Stamps live inside .venv so that a new venv never inherits an old stamp. Each holds the
# sha256 of pyproject.toml it was installed from: a hash, not a timestamp, so a git checkout
# that touches pyproject.toml without changing it does not cost a reinstall.
STAMP_RUN := $(VENV)/.registry-installed-run
STAMP_DEV := $(VENV)/.registry-installed-dev
HASH = $$(sha256sum pyproject.toml | cut -d' ' -f1)

export PYTHON

.PHONY: help run db-upgrade test test-pg lint format bench bench-full smoke clean distclean \
	system-packages system-packages-test venv venv-dev translations translations-update \
	screenshots

help:
	@sed -n 's/^#   \(make \)/\1/p' $(firstword $(MAKEFILE_LIST))

# --- system ------------------------------------------------------------------------------------

system-packages:
	@bash scripts/ensure-system-packages.sh run

system-packages-test:
	@bash scripts/ensure-system-packages.sh test

# --- virtual environment -----------------------------------------------------------------------

# Only (re)created when its interpreter is missing or broken (e.g. the Python it was made from
# was removed); --clear then wipes the remains, stamps included, so the project is reinstalled.
$(VENV_PY): | system-packages
	$(PYTHON) -m venv --clear $(VENV)

# A venv whose python no longer starts counts as missing: force the rule above.
ifneq ($(wildcard $(VENV_PY)),)
ifneq ($(shell $(VENV_PY) -c 'print(1)' 2>/dev/null),1)
.PHONY: $(VENV_PY)
endif
endif

# The project alone, for run. A dev install is a superset, so its stamp counts too.
venv: $(VENV_PY) | system-packages
	@want="$(HASH)"; \
	if [[ "$$(cat $(STAMP_RUN) 2>/dev/null)" == "$$want" || "$$(cat $(STAMP_DEV) 2>/dev/null)" == "$$want" ]]; then \
		echo "$(VENV): project installed, pyproject.toml unchanged"; \
	else \
		echo "$(VENV): installing the project (pyproject.toml is new or changed)"; \
		$(PIP) install -e .; \
		echo "$$want" > $(STAMP_RUN); \
	fi

# The project with its dev extras, for tests, lint and benchmarks.
venv-dev: $(VENV_PY) | system-packages
	@want="$(HASH)"; \
	if [[ "$$(cat $(STAMP_DEV) 2>/dev/null)" == "$$want" ]]; then \
		echo "$(VENV): project and dev tools installed, pyproject.toml unchanged"; \
	else \
		echo "$(VENV): installing the project with [dev] (pyproject.toml is new or changed)"; \
		$(PIP) install -e '.[dev]'; \
		echo "$$want" > $(STAMP_DEV); \
		echo "$$want" > $(STAMP_RUN); \
	fi

# --- translations ------------------------------------------------------------------------------

# The .po files are the source (in git); the .mo files gettext reads are built, never committed.
CATALOGUES := registry/web/translations
PO_FILES := $(wildcard $(CATALOGUES)/*/LC_MESSAGES/messages.po)

translations: $(PO_FILES:.po=.mo)

$(CATALOGUES)/%/LC_MESSAGES/messages.mo: $(CATALOGUES)/%/LC_MESSAGES/messages.po | venv
	$(VENV)/bin/pybabel compile --statistics -l $* -i $< -o $@

# After changing the pages' wording: new messages appear in each .po with an empty msgstr.
translations-update: venv
	$(VENV)/bin/pybabel extract -F registry/web/babel.cfg -k _l -k N_ --no-location \
		--sort-output -o $(CATALOGUES)/messages.pot registry/web
	$(VENV)/bin/pybabel update -i $(CATALOGUES)/messages.pot -d $(CATALOGUES) \
		--width 100 --ignore-obsolete
	rm $(CATALOGUES)/messages.pot

# --- run ---------------------------------------------------------------------------------------

db-upgrade: venv
	$(FLASK) db upgrade

# FLASK_DEBUG=0: the Werkzeug debugger runs code typed into the browser, so it is never
# switched on by an environment variable left over in someone's shell.
# REGISTRY_INSTANCE_PATH passes through the environment; the app reads it itself.
run: venv db-upgrade translations
	FLASK_DEBUG=0 exec $(FLASK) run --host 127.0.0.1 --port "$(PORT)"

# `make run` end to end on a throwaway instance folder and a free port: migrate, serve, answer
# HTTP, stop. setsid puts the server in its own process group so that all of it is stopped.
smoke: venv
	@tmp="$$(mktemp -d)"; \
	port="$$($(VENV_PY) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"; \
	echo "smoke: make run on port $$port, instance $$tmp"; \
	setsid $(MAKE) --no-print-directory run PORT="$$port" REGISTRY_INSTANCE_PATH="$$tmp" >"$$tmp/server.log" 2>&1 & \
	pid=$$!; \
	trap 'kill -TERM -- -$$pid 2>/dev/null || true; wait $$pid 2>/dev/null || true; rm -rf "$$tmp"' EXIT; \
	if ! PYTHON=$(VENV_PY) bash scripts/wait-for-http.sh "http://127.0.0.1:$$port/" 120 "$$pid"; then \
		echo "smoke: server log follows" >&2; cat "$$tmp/server.log" >&2; exit 1; \
	fi; \
	echo "smoke: ok"

# --- checks ------------------------------------------------------------------------------------

# pytest exits 5 when it collected no test: make fails on any non-zero status, and we say why.
define PYTEST
	@rc=0; $(1) $(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "pytest collected no tests: that counts as a failure" >&2; fi; \
	exit $$rc
endef

# system-packages-test first: it installs the run set too, with a single apt-get update.
test: system-packages-test venv-dev translations
	$(call PYTEST,)

test-pg: system-packages-test venv-dev translations
	@if command -v pg_isready >/dev/null && ! pg_isready -q -d "$(subst +psycopg,,$(PG_URL))"; then \
		echo "PostgreSQL at $(PG_URL) is not answering (start it, or set PG_URL)" >&2; exit 1; \
	fi
	$(call PYTEST,REGISTRY_TEST_DATABASE_URL="$(PG_URL)")

# All three run even when one fails, so one CI run shows every problem.
lint: venv-dev
	@rc=0; \
	echo "+ ruff check ."; $(VENV)/bin/ruff check . || rc=1; \
	echo "+ ruff format --check ."; $(VENV)/bin/ruff format --check . || rc=1; \
	echo "+ mypy"; $(VENV)/bin/mypy || rc=1; \
	exit $$rc

format: venv-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Browser tests only, keeping their screenshots as the README's pictures.
screenshots: system-packages-test venv-dev translations
	REGISTRY_SCREENSHOTS=docs/screenshots $(VENV)/bin/pytest tests/browser -q

bench: venv-dev
	$(VENV_PY) -m bench.run --quick

bench-full: venv-dev
	$(VENV_PY) -m bench.run --full

# --- cleaning ----------------------------------------------------------------------------------

# Caches and build output only: instance/ holds the development database and secret key.
clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist bench/results/tmp
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) instance
