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
SESSION_STACK = "e2e-session-stack"
# When a chain of stacks of their own has nothing to run (make test's run on the oldest Airflow leaves
# out test_chaos and test_ha, newest only), its worker is not left idle: these session-stack modules
# go to it as a second chain, with a session stack of that worker's own (one more Airflow start, and
# still three stacks at most). They are about half of the session stack's time on Airflow 3.1.
# test_security runs last on the second and test_policies_recorded on the first: each still looks at
# everything its stack did.
SECOND_SESSION_STACK = {
    "tests/e2e/test_logs.py": f"{SESSION_STACK}-2",
    "tests/e2e/test_queueings.py": f"{SESSION_STACK}-2",
    "tests/e2e/test_security.py": f"{SESSION_STACK}-2",
}
CHAINS = (SESSION_STACK, f"{SESSION_STACK}-2", *sorted(set(OWN_AIRFLOW_STACKS.values())))
KEPT_TOGETHER = AIRFLOW_CLIENTS  # module-scoped fixtures


def xdist_scope(nodeid: str, *, second_session_stack: bool = False) -> str:
    """The unit pytest-xdist hands to one worker: a group name, a module, or the test itself."""
    module = nodeid.split("::", 1)[0]
    if module in OWN_AIRFLOW_STACKS:
        return OWN_AIRFLOW_STACKS[module]
    if module.startswith("tests/e2e/"):
        return SECOND_SESSION_STACK.get(module, SESSION_STACK) if second_session_stack else SESSION_STACK
    if module.startswith(KEPT_TOGETHER):
        return module
    return nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):  # type: ignore[misc]
        second_session_stack = False

        def schedule(self) -> None:
            if self.collection is None and self.registered_collections:
                collected = next(iter(self.registered_collections.values()))
                chains = {xdist_scope(nodeid) for nodeid in collected}
                idle = set(OWN_AIRFLOW_STACKS.values()) - chains
                self.second_session_stack = bool(idle) and SESSION_STACK in chains
            super().schedule()

        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid, second_session_stack=self.second_session_stack)

    # The chains first, in the order pytest_collection_modifyitems gives them (xdist would otherwise
    # hand out the scopes with the most tests first, which may put a chain behind a module).
    config.option.loadscopereorder = False
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
        if uses_session_stack and xdist_scope(nodeid) != SESSION_STACK:
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
