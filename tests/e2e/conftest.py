"""One real Airflow (API server, scheduler, DAG processor, triggerer) and one emulator for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

from devstack.ha import HaStack
from devstack.stack import Stack

# Tracking by ECS events on the newest Airflow, by DescribeTasks polling alone on the oldest: make test
# runs the e2e suite on both, so it passes both ways (tests/e2e/test_task_events.py: newest only).
TASK_EVENTS = Version(version("apache-airflow")) >= Version("3.2")

DAG_IDS = [
    "smoke",
    "retry_once",
    "sleeper",
    "fanout",
    "killed_by_oom",
    "chatty",
    "queueing_reschedule",
    "queueing_deferral",
    "queueing_clear",
    "queueing_retry",
    "queueing_reschedule_fast",
    "queueing_deferral_fast",
]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = Path(os.environ.get("E2E_HOME") or tmp_path_factory.mktemp("airflow-home"))
    st = Stack(home, task_events=TASK_EVENTS)
    try:
        st.start()
        st.wait_dags(DAG_IDS)
        yield st
    finally:
        st.stop()


@pytest.fixture(scope="module")
def ha_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaStack]:
    """Two schedulers with EcsExecutor at once, on a throwaway PostgreSQL (make postgres installs it)."""
    st = HaStack(tmp_path_factory.mktemp("airflow-ha"), schedulers=2)
    try:
        st.start()
        st.wait_dags(["ha"])
        yield st
    finally:
        st.stop()
