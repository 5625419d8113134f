# Two commands on a fresh clone: `make demo` and `make test`. Both install what they need into
# .venv from the pinned lock file first. Nothing else needs to be installed by hand.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
# The newest Airflow 3 release is the default; AIRFLOW=3.1 selects the oldest supported one.
AIRFLOW ?= 3.3
VENV ?= .venv
ifneq ($(AIRFLOW),3.3)
VENV := .venv-airflow-$(AIRFLOW)
endif
LOCK := requirements/lock-airflow-$(AIRFLOW).txt
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install venv-python browser postgres demo test checks-and-oldest-venv oldest-venv lint typecheck importlint pytest pytest-oldest lock clean bench-emulator bench chaos

install: venv-python $(STAMP)

# A venv built by another Python (an older checkout, another PYTHON=) is never silently reused.
PYVER = import sys; print("%d.%d" % sys.version_info[:2])
venv-python:
	@if [ -e $(PY) ]; then \
	  have=$$($(PY) -c '$(PYVER)' 2>/dev/null || echo "a Python that no longer runs"); \
	  want=$$($(PYTHON) -c '$(PYVER)'); \
	  if [ "$$have" != "$$want" ]; then \
	    echo "$(VENV) was built with Python $$have, but this make uses Python $$want ($(PYTHON))."; \
	    echo "Run 'make clean' (it removes .venv and .venv-airflow-*), then run your make command again."; \
	    exit 1; \
	  fi; \
	fi

# Development: the locked dependencies, then both distributions of this repository editable (the
# product, airflow-ecs-executor, and the emulator, distributions/emulator), built by the lock's
# setuptools (no build isolation: nothing is fetched). devstack/, benchmarks/ and tests/ are in no
# distribution (docs/emulator.md, "Packages"): a .pth file puts the repository root on this venv's
# path, so `python -m devstack ...` works from any directory, as a development tool should.
PTH = $(VENV)/lib/python$(shell $(PYTHON) -c '$(PYVER)')/site-packages/airflow_ecs_executor_repository.pth
$(STAMP): $(LOCK) pyproject.toml distributions/emulator/pyproject.toml
	@echo "==> creating $(VENV) with $(PYTHON) and installing $(LOCK)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@$(VENV)/bin/uv pip install --quiet --python $(PY) -r $(LOCK)
	@$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps --no-build-isolation -e . -e distributions/emulator
	@echo "$(CURDIR)" > $(PTH)
	@touch $(STAMP)

demo: install
	$(PY) -m devstack

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

importlint: install
	$(VENV)/bin/lint-imports

# Debian's Chromium for the browser test; Playwright (from the lock file) drives it, so no browser
# is downloaded from anywhere but the package registries.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -y -q
browser:
	@command -v chromium >/dev/null || { \
	  echo "==> installing Debian's chromium for the browser test"; \
	  $(APT) install chromium >/dev/null 2>&1 || { $(APT) update >/dev/null && $(APT) install chromium >/dev/null; }; }

# Debian's PostgreSQL for the several-schedulers test (Airflow needs it to run two schedulers at
# once); devstack/postgres.py starts a throwaway cluster on 127.0.0.1 with its initdb and pg_ctl,
# which Debian keeps in /usr/lib/postgresql/<version>/bin.
postgres:
	@{ command -v initdb && command -v pg_ctl; } >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  echo "==> installing Debian's postgresql for the several-schedulers test"; \
	  $(APT) install postgresql >/dev/null 2>&1 || { $(APT) update >/dev/null && $(APT) install postgresql >/dev/null; }; }

# Most tests wait (for ECS lifecycles, Airflow's loops) rather than compute: pytest-xdist runs them
# on PYTEST_WORKERS processes; tests/conftest.py keeps tests that share a costly fixture on one worker
# and starts the end-to-end tests first.
PYTEST_WORKERS ?= 4
pytest: install browser postgres
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Every test on the newest Airflow 3 release, then on the oldest one we support. The oldest one's venv
# is built while the linters run (it mostly waits on the disk; they mostly compute).
test: checks-and-oldest-venv pytest pytest-oldest

checks-and-oldest-venv: install
	$(MAKE) --no-print-directory -j2 --output-sync=target lint typecheck importlint oldest-venv

oldest-venv:
	$(MAKE) --no-print-directory install AIRFLOW=3.1

# On the oldest Airflow the tests of code that imports no Airflow (marked airflow_independent by
# tests/conftest.py) and the tests marked newest_only are left out, to keep make test within its
# budget: the executor scenarios on AWS's lifecycle timings (the fast-profile run covers each Airflow
# version; the timings exercise our own logic, which does not change with Airflow), the e2e
# comparison with LocalExecutor (Airflow's reference; the ECS side of those DAGs runs on both), and
# tests of what does not change with Airflow (docs, the emulator, the chaos and two-scheduler runs).
# The e2e session stack tracks tasks by ECS events on the newest Airflow and by polling DescribeTasks
# on the oldest (tests/e2e/conftest.py), so the e2e suite passes both ways within one make test;
# tests/e2e/test_task_events.py, which needs events, is newest only. On the oldest Airflow its tests
# run in two chains, each with a stack of its own (tests/conftest.py, SECOND_SESSION_STACK).
pytest-oldest:
	$(MAKE) --no-print-directory pytest AIRFLOW=3.1 PYTEST_ARGS="-m 'not newest_only and not airflow_independent' $(PYTEST_ARGS)"

# The long chaos run (a small one is part of make test): CHAOS_TASKS task instances, three passes:
#   python -m devstack.chaos --tasks N --task-events      one scheduler, tracked by ECS events
#   python -m devstack.chaos --tasks N --no-task-events   one scheduler, tracked by DescribeTasks polling
#   python -m devstack.chaos --tasks N --schedulers 2 --kill-scheduler --task-events
#       two schedulers on PostgreSQL, each reading its own events queue; the busiest is killed with
#       SIGKILL and the other adopts its ECS tasks and follows them by events (docs/setup.md, section 14).
#       Its DAG run may take 30 s per task instance (1800 s for 60): see devstack/chaos.py TIMEOUT.
CHAOS_TASKS ?= 60
chaos: install postgres
	$(PY) -m devstack.chaos --tasks $(CHAOS_TASKS) --task-events
	$(PY) -m devstack.chaos --tasks $(CHAOS_TASKS) --no-task-events
	$(PY) -m devstack.chaos --tasks $(CHAOS_TASKS) --schedulers 2 --kill-scheduler --task-events

bench-emulator: install
	$(PY) -m ecs_emulator.bench

# Ours and upstream's AwsEcsExecutor side by side (BENCH_ARGS=--quick for small sizes).
bench: install
	@$(VENV)/bin/uv pip install --quiet --python $(PY) -r requirements/lock-bench.txt
	$(PY) -m benchmarks.compare $(BENCH_ARGS)

# Re-resolve the pinned lock files (run by a maintainer, never by the test command).
# The newest Airflow 3 release and the oldest supported one share requirements/base.in.
lock:
	for v in 3.3 3.1; do \
	  $(VENV)/bin/uv pip compile requirements/airflow-$$v.in --python-version 3.11 -o requirements/lock-airflow-$$v.txt; \
	done
	$(VENV)/bin/uv pip compile requirements/bench.in --python-version 3.11 -o requirements/lock-bench.txt

clean:
	rm -rf .venv .venv-airflow-* .mypy_cache .ruff_cache .pytest_cache
