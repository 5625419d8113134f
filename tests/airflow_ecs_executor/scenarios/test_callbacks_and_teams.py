"""ExecuteCallback workloads and per-team configuration."""

from __future__ import annotations

import importlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from ecs_emulator import Emulator
from tests.helpers import wait_for


def callback_workload(fail: bool = False) -> Any:
    from airflow.executors import workloads
    from airflow.executors.workloads.callback import CallbackDTO

    return workloads.ExecuteCallback(
        token="header.jwt-secret-token.signature",
        dag_rel_path=Path("dag.py"),
        bundle_info=workloads.BundleInfo(name="dags-folder"),
        log_path=None,
        callback=CallbackDTO(
            id=str(uuid.uuid4()),
            fetch_method=workloads.CallbackFetchMethod.IMPORT_PATH,
            data={"path": "my.callbacks.notify", "fail": fail},
        ),
    )


def final_event(executor: Any, key: str) -> tuple[Any, Any]:
    found: dict[str, tuple[Any, Any]] = {}

    def done() -> bool:
        executor.heartbeat()
        for k, v in executor.get_event_buffer().items():
            if str(v[0]) in ("success", "failed"):
                found[k] = v
        return key in found

    wait_for(done)
    return found[key]


def _has(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


@pytest.mark.skipif(
    not _has("airflow.executors.workloads.callback"), reason="ExecuteCallback workloads arrived in Airflow 3.3"
)
@pytest.mark.parametrize(("fail", "expected"), [(False, "success"), (True, "failed")])
def test_callback_runs_as_an_ecs_task(executor: Any, emulator: Emulator, fail: bool, expected: str) -> None:
    item = callback_workload(fail=fail)
    executor.queue_workload(item, session=None)
    state, _ = final_event(executor, item.callback.key)
    assert str(state) == expected
    (task,) = emulator.tasks()
    assert task["startedBy"] == "airflow-ecs-executor/1"


def test_team_configuration_is_read_for_that_team(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ecs_executor import EcsExecutor

    ecs_setup.create_cluster(clusterName="team-a-cluster")
    for key, value in executor_env.items():
        if key.startswith("AIRFLOW__ECS_EXECUTOR__"):
            monkeypatch.setenv(key.replace("AIRFLOW__", "AIRFLOW__TEAM_A___", 1), value)
    monkeypatch.setenv("AIRFLOW__TEAM_A___ECS_EXECUTOR__CLUSTER", "team-a-cluster")
    team_executor = EcsExecutor(team_name="team_a")
    team_executor.start()
    try:
        assert team_executor.config is not None
        assert team_executor.config.cluster == "team-a-cluster"
    finally:
        team_executor.terminate()
