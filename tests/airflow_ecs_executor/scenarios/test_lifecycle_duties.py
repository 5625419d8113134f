"""Start-up checks, adoption after a scheduler restart, terminate."""

from __future__ import annotations

import json
import threading
import time
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
        pytest.param(
            {"AIRFLOW__ECS_EXECUTOR__CLUSTER": "absent"},
            "cluster absent: does not exist or is not ACTIVE",
            id="cluster",
        ),
        pytest.param(
            {"AIRFLOW__ECS_EXECUTOR__TASK_DEFINITION": "absent"},
            "task definition absent: ClientException",
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


def launch_then_die(executor: Any, items: list[Any]) -> dict[Any, str]:
    """Queue the items, wait for their ARNs, then let the scheduler die (no stop, no end)."""
    for item in items:
        executor.queue_workload(item, session=None)
    arns: dict[Any, str] = {}

    def launched() -> bool:
        executor.heartbeat()
        arns.update(
            {k: info for k, (state, info) in executor.get_event_buffer().items() if str(state) == "running" and info}
        )
        return len(arns) == len(items)

    wait_for(launched)
    executor._workers.close()
    return arns


def finals(executor: Any, keys: set[Any], timeout: float = 60) -> dict[Any, tuple[str, Any]]:
    out: dict[Any, tuple[str, Any]] = {}

    def done() -> bool:
        executor.heartbeat()
        for k, (s, info) in executor.get_event_buffer().items():
            if str(s) in ("success", "failed"):
                out[k] = (str(s), info)
        return keys <= set(out)

    wait_for(done, timeout=timeout)
    return out


def test_adoption_after_restart(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__MISSING_GRACE", "2")
    running, finished = workload("sleep"), workload("ok")
    arns = launch_then_die(fresh_executor_started(), [running, finished])
    wait_for(lambda: any(t["lastStatus"] == "STOPPED" for t in emulator.tasks()))

    second = fresh_executor_started()
    gone = SimpleNamespace(
        key=workload("gone").ti.key, external_executor_id="arn:aws:ecs:us-east-1:123456789012:task/airflow/" + "0" * 32
    )
    never_launched = SimpleNamespace(key=workload("x").ti.key, external_executor_id=None)
    tis = [SimpleNamespace(key=k, external_executor_id=a) for k, a in arns.items()] + [gone, never_launched]
    not_adopted = second.try_adopt_task_instances(tis)
    # Only a task instance without an ECS task goes back to the scheduler; one that ECS does not
    # know (any more) is kept, and fails with the reason once the MISSING grace has passed.
    assert {t.key.task_id for t in not_adopted} == {"x"}
    final = finals(second, {finished.ti.key, gone.key})
    assert final[finished.ti.key][0] == "success"
    assert final[gone.key][0] == "failed"
    assert "MISSING" in final[gone.key][1]
    assert running.ti.key in second.running
    assert len(emulator.tasks()) == 2  # nothing launched twice
    second.revoke_task(ti=running.ti)
    second.terminate()


def fresh_executor_started() -> Any:
    ex = fresh_executor()
    ex.start()
    return ex


def test_adoption_keeps_tasks_it_cannot_describe(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator
) -> None:
    """A throttled DescribeTasks used to hand RUNNING tasks back to the scheduler to be launched twice."""
    item = workload("ok")
    arns = launch_then_die(fresh_executor_started(), [item])
    second = fresh_executor_started()
    emulator.inject("throttle", api="DescribeTasks", count=5)
    ti = SimpleNamespace(key=item.ti.key, external_executor_id=arns[item.ti.key])
    assert second.try_adopt_task_instances([ti]) == []
    assert finals(second, {item.ti.key})[item.ti.key][0] == "success"
    assert len(emulator.tasks()) == 1
    second.terminate()


def test_adoption_makes_no_aws_call_on_the_scheduler_thread(ecs_setup: Any, executor_env: dict[str, str]) -> None:
    item = workload("ok")
    arns = launch_then_die(fresh_executor_started(), [item])
    second = fresh_executor_started()
    calls: list[str] = []
    second._workers._ecs._client.meta.events.register(
        "before-call.ecs.*", lambda model, **_: calls.append(threading.current_thread().name)
    )
    second.try_adopt_task_instances([SimpleNamespace(key=item.ti.key, external_executor_id=arns[item.ti.key])])
    assert threading.current_thread().name not in calls
    finals(second, {item.ti.key})
    assert calls and threading.current_thread().name not in calls
    second.terminate()


def test_adopted_task_of_a_queue_profile_is_judged_by_its_own_container(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An adopted task launched for a queue profile with its own container used to be reported FAILED."""
    definition = ecs_setup.describe_task_definition(taskDefinition="airflow-task")["taskDefinition"]
    container = {**definition["containerDefinitions"][0], "name": "worker"}
    ecs_setup.register_task_definition(family="airflow-worker", containerDefinitions=[container])
    monkeypatch.setenv(
        "AIRFLOW__ECS_EXECUTOR__QUEUE_PROFILES",
        json.dumps({"big": {"task_definition": "airflow-worker", "container_name": "worker"}}),
    )
    item = workload("ok", queue="big")
    arns = launch_then_die(fresh_executor_started(), [item])
    wait_for(lambda: all(t["lastStatus"] == "STOPPED" for t in emulator.tasks()))
    second = fresh_executor_started()
    second.try_adopt_task_instances([SimpleNamespace(key=item.ti.key, external_executor_id=arns[item.ti.key])])
    assert finals(second, {item.ti.key})[item.ti.key][0] == "success"
    second.terminate()


def test_adopted_task_in_another_cluster_is_described_there(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator
) -> None:
    """Every ARN is described in the cluster its ARN names (AWS refuses another cluster's ARN)."""
    ecs_setup.create_cluster(clusterName="other")
    emulator.register_container_instances("other", count=1, cpu=4096, memory=8192)
    item = workload("ok", executor_config={"cluster": "other"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__ECS_EXECUTOR__EXECUTOR_CONFIG_ALLOWLIST", "cluster")
        arns = launch_then_die(fresh_executor_started(), [item])
    assert "/other/" in arns[item.ti.key]
    second = fresh_executor_started()
    second.try_adopt_task_instances([SimpleNamespace(key=item.ti.key, external_executor_id=arns[item.ti.key])])
    assert finals(second, {item.ti.key})[item.ti.key][0] == "success"
    second.terminate()


def test_terminate_stops_running_tasks(executor: Any, emulator: Emulator) -> None:
    executor.queue_workload(workload("sleep"), session=None)
    wait_for(lambda: (executor.heartbeat(), any(t["lastStatus"] == "RUNNING" for t in emulator.tasks()))[1])
    executor.terminate()
    assert wait_for(lambda: emulator.tasks()[0]["stopCode"] == "UserInitiated")


def test_terminate_stops_a_task_whose_runtask_was_in_flight(executor: Any, emulator: Emulator) -> None:
    """A RunTask answered after terminate() began used to start a task nobody stopped or tracked."""
    client = executor._workers._ecs
    real = client.run_task
    sent = threading.Event()

    def slow(request: Any) -> Any:
        sent.set()
        time.sleep(2)  # the answer arrives while the scheduler terminates
        return real(request)

    client.run_task = slow
    executor.queue_workload(workload("sleep"), session=None)
    executor.heartbeat()
    assert sent.wait(30)
    executor.terminate()
    [task] = emulator.tasks()
    assert task["desiredStatus"] == "STOPPED"
    assert wait_for(lambda: emulator.tasks()[0]["stopCode"] == "UserInitiated")


def test_adopting_a_task_it_already_tracks_changes_nothing(executor: Any, emulator: Emulator) -> None:
    """Airflow may hand a scheduler its own tasks back (it took the scheduler for dead): one record stays."""
    item = workload("sleep")
    executor.queue_workload(item, session=None)
    arns: dict[Any, str] = {}

    def launched() -> bool:
        executor.heartbeat()
        arns.update({k: i for k, (state, i) in executor.get_event_buffer().items() if str(state) == "running" and i})
        return bool(arns)

    wait_for(launched)
    held_before = len(executor._held)
    ti = SimpleNamespace(key=item.ti.key, external_executor_id=arns[item.ti.key], priority_weight=1)
    assert executor.try_adopt_task_instances([ti]) == []
    assert len(executor._held) == held_before == 1
    assert item.ti.key in executor.running


def test_its_own_task_instances_not_yet_launched_are_kept_not_reset(executor: Any, emulator: Emulator) -> None:
    """Airflow took this scheduler for dead and hands back what it queued: no ARN yet, but it launches them.

    A reset would queue a second try of each while this executor still launches the first.
    """
    launching = workload("ok", dag_id="launching")
    waiting = workload("ok", dag_id="waiting")
    emulator.inject("throttle", api="RunTask", count=2)
    executor.queue_workload(launching, session=None)
    executor.heartbeat()  # handed to the executor: its RunTask throttled and sent again
    executor.queue_workload(waiting, session=None)  # queued with the executor, not yet handed over
    assert launching.ti.key in {h.key for h in executor._held.values()}
    assert waiting.ti.key in executor.queued_tasks
    foreign = workload("ok", dag_id="another-scheduler")
    tis = [
        SimpleNamespace(key=w.ti.key, external_executor_id=None, priority_weight=1)
        for w in (launching, waiting, foreign)
    ]

    assert [ti.key for ti in executor.try_adopt_task_instances(tis)] == [foreign.ti.key]  # only that one is reset

    out = finals(executor, {launching.ti.key, waiting.ti.key})
    assert {s for s, _ in out.values()} == {"success"}
    assert len(emulator.tasks()) == 2  # each launched once


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
        arns.update(
            {k: info for k, (state, info) in first.get_event_buffer().items() if str(state) == "running" and info}
        )
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
