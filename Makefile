# 群众监督 — the commands people use. Everything runs inside .venv, made here from pyproject.toml.
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint format bench loadtest messages check-migrations clean prod-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The background worker (emails, WeCom webhooks, the 15-minute overdue sweep) runs beside the
# development server and stops with it.
run: export SITE_URL ?= http://127.0.0.1:$(PORT)
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	$(BIN)/python manage.py escalate_overdue --schedule
	$(BIN)/python manage.py db_worker --no-reload --interval 2 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The inner loop (about a minute): everything but the whole-world walks, the demo-world loads,
# fuzzers, property and browser tests (marker slow, set in tests/conftest.py).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check-migrations: $(STAMP)
	$(BIN)/python manage.py makemigrations --check --dry-run

# Needs GNU gettext; the compiled .mo files are committed so nobody else does.
messages: $(STAMP)
	$(BIN)/python manage.py makemessages -l en --ignore '.venv/*' --ignore 'tests/*' --ignore 'benchmarks/*'
	$(BIN)/python manage.py compilemessages -l en -l zh_Hans --ignore '.venv/*'

# Mixed traffic against gunicorn for LOADTEST_SECONDS (default 120); honours DATABASE_URL.
loadtest: $(STAMP)
	$(BIN)/python benchmarks/loadtest.py

# Key pages, throughput and photo intake at BENCH_SCALE=small|province; honours DATABASE_URL.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# deploy/ as an operator installs it, on this machine: nginx (self-signed TLS, free 127.0.0.1
# ports) → gunicorn → a throwaway PostgreSQL database + Redis db 13, checked from outside.
prod-check: $(STAMP)
	$(BIN)/python deploy/prod_check.py

# Back up and restore the generated province both ways (pg_dump/pg_restore, export_data/
# import_data) on PostgreSQL (DRILL_PG), timed, and compare rows, figures and photos; writes
# benchmarks/restore_drill.json. docs/operations.md has the figures.
.PHONY: restore-drill
restore-drill: $(STAMP)
	$(BIN)/python benchmarks/restore_drill.py

# The same stack with Redis db 12 and the demo world, under the mixed load through nginx for
# SOAK_SECONDS (1800) at SOAK_RATE (50) requests/s; writes benchmarks/soak.json, exit status 1
# when a budget (0 errors, p95 < 500 ms, worker memory < +10 %) is missed.
.PHONY: soak
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py

# The same stack on a PostgreSQL (initdb), a Redis and a media tmpfs of its own, filing issues
# with photos while each fault happens in turn: PostgreSQL restarted, Redis stopped 60 s,
# db_worker and a gunicorn worker killed -9, the media disk full. Needs root. Writes
# benchmarks/faults.json; exit status 1 when anything is lost or duplicated, a photo or a
# delivery is missing, a person sees anything but 「系统繁忙」, or recovery takes over 30 s.
.PHONY: faults
faults: $(STAMP)
	$(BIN)/python benchmarks/faults.py

clean:
	rm -rf $(VENV) .pytest_cache staticfiles
