"""A real Airflow scheduler and API server run DAGs through EcsExecutor against the emulator."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def db_rows(stack: Stack, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(stack.home / "airflow.db") as db:
        return list(db.execute(sql, args))


def started_for(stack: Stack, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Emulated ECS tasks whose tags name this DAG run (the executor tags every task)."""
    ecs = stack.aws("ecs")
    arns = [t["taskArn"] for t in stack.emulator_tasks()]
    out = []
    for i in range(0, len(arns), 100):
        for task in ecs.describe_tasks(cluster="airflow", tasks=arns[i : i + 100], include=["TAGS"])["tasks"]:
            tags = {t["key"]: t["value"] for t in task.get("tags", [])}
            if tags.get("dag_id") == dag_id and tags.get("run_id") == run_id:
                out.append({**task, "tagmap": tags})
    return out


def stopped_for(stack: Stack, dag_id: str, run_id: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The run's ECS tasks once all have stopped (Airflow may record success a moment earlier)."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = started_for(stack, dag_id, run_id)
        if all(t["lastStatus"] == "STOPPED" for t in tasks) or time.monotonic() > deadline:
            return tasks
        time.sleep(0.5)


def test_dag_run_succeeds_with_arn_recorded(stack: Stack) -> None:
    run_id = stack.trigger("smoke")
    assert stack.wait_run("smoke", run_id) == "success"
    (arn,) = db_rows(stack, "select external_executor_id from task_instance where dag_id='smoke' and run_id=?", run_id)[
        0
    ]
    assert arn.startswith("arn:aws:ecs:us-east-1:123456789012:task/airflow/")
    (task,) = stopped_for(stack, "smoke", run_id)
    assert task["taskArn"] == arn
    assert task["containers"][0]["exitCode"] == 0
    assert task["tagmap"]["task_id"] == "hello"


def test_airflow_retries_apply(stack: Stack) -> None:
    run_id = stack.trigger("retry_once")
    assert stack.wait_run("retry_once", run_id) == "success"
    (try_number,) = db_rows(
        stack, "select try_number from task_instance where dag_id='retry_once' and run_id=?", run_id
    )[0]
    assert try_number == 2
    tasks = started_for(stack, "retry_once", run_id)
    # One ECS task per Airflow try. Both exit 0: the Airflow 3 task runner reports the first try's
    # failure to the API server itself and ends normally, so the exit code does not carry it.
    assert sorted(t["tagmap"]["try_number"] for t in tasks) == ["1", "2"]


def test_failed_start_is_relaunched_without_spending_a_try(stack: Stack) -> None:
    stack.inject("fail_to_start", reason="CannotPullContainerError")
    run_id = stack.trigger("smoke")
    assert stack.wait_run("smoke", run_id) == "success"
    (try_number,) = db_rows(stack, "select try_number from task_instance where dag_id='smoke' and run_id=?", run_id)[0]
    assert try_number == 1
    tasks = stopped_for(stack, "smoke", run_id)
    assert sorted(t["stopCode"] for t in tasks) == ["EssentialContainerExited", "TaskFailedToStart"]
    # The reason reaches the task instance's events in the UI (Airflow's log table).
    events = db_rows(stack, "select event, extra from log where dag_id='smoke' and run_id=?", run_id)
    assert any(event == "ecs task relaunched" and "CannotPullContainerError" in extra for event, extra in events), (
        events
    )


def test_task_marked_failed_is_stopped_in_ecs(stack: Stack) -> None:
    run_id = stack.trigger("sleeper")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        running = [t for t in started_for(stack, "sleeper", run_id) if t["lastStatus"] == "RUNNING"]
        if running:
            break
        time.sleep(1)
    else:
        pytest.fail("the sleeper task never reached RUNNING")
    time.sleep(3)  # let the task runner report itself running to the API server
    stack.set_task_state("sleeper", run_id, "sleep_long", "failed")
    # The task's runner learns of it at its next heartbeat (409) and ends; on a loaded machine that
    # can take a while, but far less than the 110 s the task would otherwise still sleep.
    deadline = time.monotonic() + 100
    while time.monotonic() < deadline:
        (task,) = started_for(stack, "sleeper", run_id)
        if task["lastStatus"] == "STOPPED":
            break
        time.sleep(1)
    assert task["lastStatus"] == "STOPPED"
    assert task["stoppedAt"] is not None


def test_scheduler_killed_and_restarted_loses_and_duplicates_nothing(stack: Stack) -> None:
    run_id = stack.trigger("fanout")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if len([t for t in started_for(stack, "fanout", run_id) if t["tagmap"]["task_id"] == "work"]) >= 3:
            break
        time.sleep(0.5)
    stack.kill_scheduler()
    time.sleep(3)
    stack.start_scheduler()
    assert stack.wait_run("fanout", run_id, timeout=400) == "success"
    states = db_rows(
        stack,
        "select task_id, map_index, try_number, state from task_instance where dag_id='fanout' and run_id=?",
        run_id,
    )
    assert {s for *_, s in states} == {"success"}
    assert len(states) == 8  # items, six mapped work tasks, total
    tasks = stopped_for(stack, "fanout", run_id)
    per_try: dict[tuple[str, str, str], int] = {}
    for t in tasks:
        if t.get("stopCode") == "TaskFailedToStart":
            continue
        ident = (t["tagmap"]["task_id"], t["tagmap"]["map_index"], t["tagmap"]["try_number"])
        per_try[ident] = per_try.get(ident, 0) + 1
    assert all(n == 1 for n in per_try.values()), per_try  # no try ran as two ECS tasks
