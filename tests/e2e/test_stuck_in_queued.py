"""Tasks stuck in queued (ECS has no capacity) are revoked and failed as Airflow's scheduler expects."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def starved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    st = Stack(
        Path(tmp_path_factory.mktemp("airflow-stuck")),
        extra_env={
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "10",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__NUM_STUCK_IN_QUEUED_RETRIES": "1",
            # Keep asking ECS for capacity: Airflow's timeout, not ours, decides here.
            "AIRFLOW__ECS_EXECUTOR__MAX_LAUNCH_ATTEMPTS": "1000",
        },
    )
    try:
        st.start()
        st.set_capacity(0)
        st.wait_dags(["smoke"])
        yield st
    finally:
        st.stop()


def counters(stack: Stack) -> dict[str, Any]:
    return stack.emulator_counters()


def test_stuck_task_is_revoked_requeued_then_failed(starved: Stack) -> None:
    run_id = starved.trigger("smoke")
    assert starved.wait_run("smoke", run_id, timeout=240) == "failed"
    with sqlite3.connect(starved.home / "airflow.db") as db:
        events = [row[0] for row in db.execute("select event from log where dag_id='smoke' and run_id=?", (run_id,))]
    assert "stuck in queued reschedule" in events
    assert "stuck in queued tries exceeded" in events
    assert starved.emulator_tasks() == []  # no capacity: ECS never started a task
    # The revoked workload is dropped: no RunTask keeps going after Airflow gave up on it.
    before = counters(starved)["api"]["RunTask"]["calls"]
    time.sleep(8)
    assert counters(starved)["api"]["RunTask"]["calls"] == before
