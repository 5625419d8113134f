from __future__ import annotations

import os
from typing import Any

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


# make test runs pytest-xdist (-n): most tests wait on ECS lifecycles and Airflow's loops rather
# than compute. Tests that share a costly fixture must run on one worker, or each worker builds its
# own: every test using the session's Airflow stack (tests/e2e/conftest.py ``stack``) runs on one
# worker; the tests that start Airflow stacks of their own run one after another in two chains of
# about equal length, each on a worker of its own, so no more than three Airflow stacks share the
# machine; a module with a module-scoped fixture stays together; everything else is spread test by
# test on the fourth worker and on each worker whose chain has ended. (xdist's own ``xdist_group``
# marker has no effect with this pytest: it renames ``item._nodeid``, which pytest 9 no longer reads.)
OWN_AIRFLOW_STACKS = {
    "tests/e2e/test_chaos.py": "airflow-stacks-of-their-own-1",
    "tests/e2e/test_ha.py": "airflow-stacks-of-their-own-1",  # two schedulers on PostgreSQL
    "tests/e2e/test_remote_logging.py": "airflow-stacks-of-their-own-2",
    "tests/e2e/test_stuck_in_queued.py": "airflow-stacks-of-their-own-2",
    "tests/docs/test_docs.py": "airflow-stacks-of-their-own-2",  # the "try it by hand" path
}
CHAINS = ("e2e-session-stack", *sorted(set(OWN_AIRFLOW_STACKS.values())))
KEPT_TOGETHER = AIRFLOW_CLIENTS  # module-scoped fixtures


def xdist_scope(nodeid: str) -> str:
    """The unit pytest-xdist hands to one worker: a group name, a module, or the test itself."""
    module = nodeid.split("::", 1)[0]
    if module in OWN_AIRFLOW_STACKS:
        return OWN_AIRFLOW_STACKS[module]
    if module.startswith("tests/e2e/"):
        return "e2e-session-stack"
    if module.startswith(KEPT_TOGETHER):
        return module
    return nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return Scheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the Airflow-independent tests; put the end-to-end ones first (the longest chains)."""
    for item in items:
        nodeid = item.nodeid
        if airflow_independent(nodeid):
            item.add_marker(pytest.mark.airflow_independent)
        module = nodeid.split("::", 1)[0]
        uses_session_stack = "stack" in getattr(item, "fixturenames", ())
        if uses_session_stack and xdist_scope(nodeid) != "e2e-session-stack":
            raise pytest.UsageError(f"{module} uses the session's Airflow stack: keep it out of OWN_AIRFLOW_STACKS")
    items.sort(key=lambda item: xdist_scope(item.nodeid) not in CHAINS)


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
