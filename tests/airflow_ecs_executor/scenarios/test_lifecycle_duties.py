"""Start-up checks, adoption after a scheduler restart, terminate."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_ecs_executor.config import ConfigError
from ecs_emulator import Emulator
from tests.airflow_ecs_executor.scenarios.conftest import run, workload
from tests.helpers import wait_for


def fresh_executor() -> Any:
    from airflow_ecs_executor import EcsExecutor

    return EcsExecutor()


def test_bad_config_refuses_to_start_listing_every_problem(
    ecs_setup: Any, executor_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__ASSIGN_PUBLIC_IP", "perhaps")
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__LAUNCH_RATE", "fast")
    monkeypatch.delenv("AIRFLOW__ECS_EXECUTOR__CLUSTER")
    with pytest.raises(ConfigError) as exc:
        fresh_executor().start()
    text = str(exc.value)
    assert "cluster: required" in text
    assert "assign_public_ip" in text
    assert "launch_rate" in text


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        pytest.param({"AIRFLOW__ECS_EXECUTOR__CLUSTER": "absent"}, "cluster 'absent' does not exist", id="cluster"),
        pytest.param(
            {"AIRFLOW__ECS_EXECUTOR__TASK_DEFINITION": "absent"},
            "task definition 'absent' not found",
            id="task-definition",
        ),
        pytest.param({"AIRFLOW__ECS_EXECUTOR__CONTAINER_NAME": "worker"}, "has no container 'worker'", id="container"),
        pytest.param(
            {"AIRFLOW__ECS_EXECUTOR__ENDPOINT_URL": "http://127.0.0.1:9"}, "cannot reach ECS", id="unreachable"
        ),
    ],
)
def test_health_check_names_the_fix(
    ecs_setup: Any, executor_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as exc:
        fresh_executor().start()
    assert needle in str(exc.value)


def test_health_check_can_be_turned_off(
    ecs_setup: Any, executor_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__CLUSTER", "absent")
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__CHECK_HEALTH_ON_STARTUP", "false")
    ex = fresh_executor()
    ex.start()
    ex.terminate()


def test_adoption_after_restart(ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator) -> None:
    first = fresh_executor()
    first.start()
    running, finished = workload("sleep"), workload("ok")
    for item in (running, finished):
        first.queue_workload(item, session=None)
    arns: dict[Any, str] = {}

    def launched() -> bool:
        first.heartbeat()
        arns.update({k: info for k, (state, info) in first.get_event_buffer().items() if str(state) == "running"})
        return len(arns) == 2

    wait_for(launched)
    first._workers.close()  # the scheduler dies: no stop, no end
    wait_for(lambda: any(t["lastStatus"] == "STOPPED" for t in emulator.tasks()))

    second = fresh_executor()
    second.start()
    gone = SimpleNamespace(
        key=workload("gone").ti.key, external_executor_id="arn:aws:ecs:us-east-1:123456789012:task/airflow/" + "0" * 32
    )
    never_launched = SimpleNamespace(key=workload("x").ti.key, external_executor_id=None)
    tis = [SimpleNamespace(key=k, external_executor_id=a) for k, a in arns.items()] + [gone, never_launched]
    not_adopted = second.try_adopt_task_instances(tis)
    assert {t.key.task_id for t in not_adopted} == {"gone", "x"}
    final = {}

    def finished_both() -> bool:
        second.heartbeat()
        final.update({k: s for k, (s, _) in second.get_event_buffer().items() if str(s) in ("success", "failed")})
        return finished.ti.key in final

    wait_for(finished_both)
    assert str(final[finished.ti.key]) == "success"
    assert running.ti.key in second.running
    assert len(emulator.tasks()) == 2  # nothing launched twice
    second.revoke_task(ti=running.ti)
    second.terminate()


def test_terminate_stops_running_tasks(executor: Any, emulator: Emulator) -> None:
    executor.queue_workload(workload("sleep"), session=None)
    wait_for(lambda: (executor.heartbeat(), any(t["lastStatus"] == "RUNNING" for t in emulator.tasks()))[1])
    executor.terminate()
    assert wait_for(lambda: emulator.tasks()[0]["stopCode"] == "UserInitiated")


def test_run_helper_reports_states(executor: Any) -> None:
    assert {str(s) for s, _ in run(executor, [workload("ok")]).values()} == {"success"}


def test_adopted_task_that_failed_to_start_is_launched_again(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator
) -> None:
    first = fresh_executor()
    first.start()
    item = workload("ok")
    emulator.inject("fail_to_start", reason="CannotPullContainerError")
    first.queue_workload(item, session=None)
    arns: dict[Any, str] = {}

    def launched() -> bool:
        first.heartbeat()
        arns.update({k: info for k, (state, info) in first.get_event_buffer().items() if str(state) == "running"})
        return bool(arns)

    wait_for(launched)
    first._workers.close()  # the scheduler dies before it saw the start failure
    wait_for(lambda: all(t["lastStatus"] == "STOPPED" for t in emulator.tasks()))

    second = fresh_executor()
    second.start()
    ti = SimpleNamespace(key=item.ti.key, external_executor_id=arns[item.ti.key])
    assert second.try_adopt_task_instances([ti]) == []
    final: dict[Any, Any] = {}

    def done() -> bool:
        second.heartbeat()
        final.update({k: s for k, (s, _) in second.get_event_buffer().items() if str(s) in ("success", "failed")})
        return item.ti.key in final

    wait_for(done, timeout=60)
    assert str(final[item.ti.key]) == "success"  # launched again from the ECS task's own command: no try spent
    tasks = emulator.tasks()
    assert len(tasks) == 2
    assert sorted(t["stopCode"] or "" for t in tasks) == ["EssentialContainerExited", "TaskFailedToStart"]
    second.terminate()
