from __future__ import annotations

import os

import pytest

from tests.helpers import aws_client

# Tests never reach AWS: fake credentials, and no shared config or credentials file is read.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

from ecs_emulator import Emulator

# Tests of code that imports no Airflow (import-linter's contracts in pyproject.toml keep it so; a
# test below checks that these test modules import none either) run once, on the newest Airflow:
# make test's run on the oldest one deselects the marker (see the Makefile).
AIRFLOW_INDEPENDENT = (
    "tests/airflow_ecs_executor/aws/",
    "tests/airflow_ecs_executor/core/",
    "tests/airflow_ecs_executor/runtime/",
    "tests/deploy/",
    "tests/docker/",
    "tests/ecs_emulator/",
    "tests/test_import_rules.py",
)
# ... except the emulator's tests with Airflow's own operators and hooks as clients.
AIRFLOW_CLIENTS = ("tests/ecs_emulator/test_real_clients.py",)


def airflow_independent(nodeid: str) -> bool:
    return nodeid.startswith(AIRFLOW_INDEPENDENT) and not nodeid.startswith(AIRFLOW_CLIENTS)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the Airflow-independent tests; group and order the end-to-end ones for pytest-xdist.

    make test runs pytest-xdist with ``--dist loadgroup``. Every test that uses the session's Airflow
    stack runs on one worker (one stack, not one per worker); the end-to-end tests with stacks of their
    own run one after another on a second worker, so no more than two Airflow stacks share the
    machine; each module with a module-scoped fixture stays together; everything else is spread test
    by test. The end-to-end tests come first: they are the longest chains, so they start at once.
    """
    for item in items:
        nodeid = item.nodeid
        if airflow_independent(nodeid):
            item.add_marker(pytest.mark.airflow_independent)
        module = nodeid.split("::", 1)[0]
        if module.startswith("tests/e2e/"):
            uses_session_stack = "stack" in getattr(item, "fixturenames", ())
            item.add_marker(pytest.mark.xdist_group("e2e-session-stack" if uses_session_stack else "e2e-own-stacks"))
        elif module.startswith(AIRFLOW_CLIENTS):
            item.add_marker(pytest.mark.xdist_group(module))
    items.sort(key=lambda item: not item.nodeid.startswith("tests/e2e/"))  # stable: order kept otherwise


@pytest.fixture
def emulator(ecs_emulator_server: Emulator) -> Emulator:
    """The emulator's own pytest fixture (ecs_emulator.pytest_plugin): fast profile, shapes checked."""
    return ecs_emulator_server


@pytest.fixture
def ecs(emulator: Emulator):  # type: ignore[no-untyped-def]
    return aws_client("ecs", emulator)


@pytest.fixture
def logs(emulator: Emulator):  # type: ignore[no-untyped-def]
    return aws_client("logs", emulator)
