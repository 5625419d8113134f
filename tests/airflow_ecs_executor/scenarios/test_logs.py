"""Task logs read back from the emulator's CloudWatch Logs, as the API server reads them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.utils.state import TaskInstanceState

from airflow_ecs_executor.logs import LOGGING_CONFIG, EcsTaskLogHandler
from tests.airflow_ecs_executor.scenarios.conftest import run, workload
from tests.helpers import aws_client


def launched_arn(executor: Any, item: Any, timeout: float = 30.0) -> str:
    executor.queue_workload(item, session=None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executor.heartbeat()
        for state, info in executor.get_event_buffer().values():
            if str(state) == "running" and info:
                return str(info)
        time.sleep(0.05)
    raise AssertionError("no ECS task ARN reported")


def events(lines: list[str]) -> list[str]:
    return [json.loads(line)["event"] for text in lines for line in text.splitlines()]


def ti_for(arn: str | None, state: TaskInstanceState, try_number: int = 1) -> Any:
    return SimpleNamespace(external_executor_id=arn, queue="default", state=state, try_number=try_number)


def wait_for_line(read: Any, text: str, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        sources, lines = read()
        if any(text in e for e in events(lines)) or time.monotonic() > deadline:
            return [*sources, *events(lines)]
        time.sleep(0.2)


def test_running_try_log_comes_from_the_executor(executor: Any, executor_env: dict[str, str]) -> None:
    from airflow_ecs_executor import EcsExecutor

    arn = launched_arn(executor, workload("sleep"))
    api_server_side = EcsExecutor()  # the API server's executor is never started
    ti = ti_for(arn, TaskInstanceState.RUNNING)
    seen = wait_for_line(lambda: api_server_side.get_task_log(ti, 1), "fake runtime: running dag.sleep try 1")
    task_id = arn.rsplit("/", 1)[1]
    assert f"ECS task {arn}: CloudWatch Logs /ecs/airflow airflow/base/{task_id}" in seen[0]
    assert "fake runtime: running dag.sleep try 1" in seen


def test_finished_try_log_comes_from_the_handler(executor: Any, tmp_path: Path) -> None:
    (key, (state, _)), *_ = run(executor, [workload("fail")]).items()
    assert str(state) == "failed"
    arn = next(info for s, info in executor.all_events[key] if str(s) == "running" and info)
    handler = EcsTaskLogHandler(base_log_folder=str(tmp_path))
    sources, logs = handler._read_remote_logs(ti_for(arn, TaskInstanceState.FAILED), 1)
    assert "CloudWatch Logs /ecs/airflow" in sources[0]
    assert "fake runtime: running dag.fail try 1" in events(logs)
    # A running try is the executor's to read: the handler does not read it twice.
    assert handler._read_remote_logs(ti_for(arn, TaskInstanceState.RUNNING), 1) == ([], [])
    # Not an ECS task (another executor ran it): nothing from us.
    assert handler._read_remote_logs(ti_for("some-pod", TaskInstanceState.FAILED), 1) == ([], [])


def test_a_task_ecs_forgot_is_found_through_the_configured_task_definition(
    executor: Any, emulator: Any, tmp_path: Path
) -> None:
    # ECS forgets stopped tasks after about an hour; the log stream outlives it.
    arn = "arn:aws:ecs:us-east-1:123456789012:task/airflow/0123456789abcdef0123456789abcdef"
    logs = aws_client("logs", emulator)
    stream = "airflow/base/0123456789abcdef0123456789abcdef"
    logs.create_log_group(logGroupName="/ecs/airflow")
    logs.create_log_stream(logGroupName="/ecs/airflow", logStreamName=stream)
    logs.put_log_events(
        logGroupName="/ecs/airflow",
        logStreamName=stream,
        logEvents=[{"timestamp": int(time.time() * 1000) - 3_600_000, "message": "old"}],
    )
    handler = EcsTaskLogHandler(base_log_folder=str(tmp_path))
    _, lines = handler._read_remote_logs(ti_for(arn, TaskInstanceState.SUCCESS), 1)
    assert events(lines) == ["old"]


def test_problems_become_notes_not_errors(
    executor: Any, executor_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ecs_executor import EcsExecutor

    api_server_side = EcsExecutor()
    _, lines = api_server_side.get_task_log(ti_for(None, TaskInstanceState.RUNNING), 1)
    assert "has no ECS task ARN recorded yet" in events(lines)[0]
    arn = "arn:aws:ecs:us-east-1:123456789012:task/airflow/ffffffffffffffffffffffffffffffff"
    _, lines = api_server_side.get_task_log(ti_for(arn, TaskInstanceState.RUNNING), 1)
    assert "does not exist (yet)" in events(lines)[0]
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__LAUNCH_RATE", "fast")
    _, lines = EcsExecutor().get_task_log(ti_for(arn, TaskInstanceState.RUNNING), 1)
    assert "[ecs_executor] is not usable for reading logs" in events(lines)[0]
    assert "launch_rate" in events(lines)[0]


def test_logging_config_swaps_only_the_task_handler() -> None:
    from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG

    assert LOGGING_CONFIG["handlers"]["task"]["class"] == "airflow_ecs_executor.logs.EcsTaskLogHandler"
    others = {k: v for k, v in LOGGING_CONFIG["handlers"].items() if k != "task"}
    assert others == {k: v for k, v in DEFAULT_LOGGING_CONFIG["handlers"].items() if k != "task"}
