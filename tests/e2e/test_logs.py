"""Task logs in the UI come from the ECS task's CloudWatch stream, read through the API server.

The emulated containers write their Airflow log files to a directory of their own (as a container's
disk is its own), so everything the API server shows here came from CloudWatch Logs.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def events(log: list[dict[str, Any]]) -> list[str]:
    """Each line's event; Airflow 3.1 lists the log's sources inside the group line instead."""
    return [str(e) for line in log for e in (line.get("event"), *line.get("sources", []))]


def log_with(
    stack: Stack, dag_id: str, run_id: str, task_id: str, try_number: int, text: str, map_index: int = -1
) -> list[dict[str, Any]]:
    """The try's log once it holds ``text``: a container's last lines reach CloudWatch Logs shortly
    after the task reported its state to the API server."""
    deadline = time.monotonic() + 60
    while True:
        log = stack.task_log(dag_id, run_id, task_id, try_number, map_index)
        if any(text in e for e in events(log)) or time.monotonic() > deadline:
            return log
        time.sleep(1)


def test_finished_task_log_shows_what_it_printed(stack: Stack) -> None:
    run_id = stack.trigger("smoke")
    assert stack.wait_run("smoke", run_id) == "success"
    log = log_with(stack, "smoke", run_id, "hello", 1, "hello from an ECS task run by EcsExecutor")
    lines = events(log)
    assert any("CloudWatch Logs /ecs/airflow airflow/base/" in e for e in lines)
    printed = next(line for line in log if line.get("event") == "hello from an ECS task run by EcsExecutor")
    # execute_workload's JSON lines are shown as structured records, not as raw JSON text
    assert printed["level"] == "info"
    assert str(printed["timestamp"]).startswith("20")
    assert not (stack.home / "logs" / "dag_id=smoke").exists()  # nothing was read from a local file


def test_running_task_log_is_live(stack: Stack) -> None:
    run_id = stack.trigger("sleeper")
    deadline = time.monotonic() + 120
    lines: list[str] = []
    while time.monotonic() < deadline:
        if any(ti["state"] == "running" for ti in stack.task_instances("sleeper", run_id)):
            lines = events(stack.task_log("sleeper", run_id, "sleep_long", 1))
            if any(e.startswith("still sleeping: 3 s") for e in lines):
                break
        time.sleep(1)
    assert any(e.startswith("still sleeping: 3 s") for e in lines), lines[-5:]
    stack.set_task_state("sleeper", run_id, "sleep_long", "failed")


def test_each_try_has_its_own_log(stack: Stack) -> None:
    run_id = stack.trigger("retry_once")
    assert stack.wait_run("retry_once", run_id) == "success"
    first_log = log_with(stack, "retry_once", run_id, "flaky", 1, "flaky: try 1")
    first = events(first_log)
    second = events(log_with(stack, "retry_once", run_id, "flaky", 2, "flaky: try 2"))
    assert "flaky: try 1" in first
    # the exception arrives as a structured record, its traceback in error_detail
    assert "failing on purpose on the first try" in json.dumps(first_log)
    assert "flaky: try 2" in second
    assert "flaky: try 1" not in second


def test_log_survives_a_container_killed_for_memory(stack: Stack) -> None:
    run_id = stack.trigger("killed_by_oom")
    assert stack.wait_run("killed_by_oom", run_id) == "failed"
    text = "about to use more memory than the task has"
    assert text in events(log_with(stack, "killed_by_oom", run_id, "hog", 1, text))


def test_a_100000_line_log_is_readable(stack: Stack) -> None:
    run_id = stack.trigger("chatty", {"lines": 100_000})
    assert stack.wait_run("chatty", run_id) == "success"
    lines = events(log_with(stack, "chatty", run_id, "talk", 1, "chatty line 100000 of 100000"))
    chatty = [e for e in lines if e.startswith("chatty line ")]
    assert len(chatty) == 100_000
    assert chatty[0] == "chatty line 1 of 100000"
    assert chatty[-1] == "chatty line 100000 of 100000"


def test_throttled_log_reads_show_a_note(stack: Stack) -> None:
    run_id = stack.trigger("smoke")
    assert stack.wait_run("smoke", run_id) == "success"
    log_with(stack, "smoke", run_id, "hello", 1, "hello from an ECS task run by EcsExecutor")
    stack.inject("throttle", api="GetLogEvents", count=5)  # every attempt of one read: 1 + 4 retries
    lines = events(stack.task_log("smoke", run_id, "hello", 1))
    assert any("reading CloudWatch Logs stopped after 0 lines: ThrottlingException" in e for e in lines), lines
    # the next view reads normally
    assert "hello from an ECS task run by EcsExecutor" in events(stack.task_log("smoke", run_id, "hello", 1))
