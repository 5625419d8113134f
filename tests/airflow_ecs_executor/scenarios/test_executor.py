"""The failure classification table, row by row, with the real executor and the emulator."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ecs_emulator import Emulator
from tests.airflow_ecs_executor.scenarios.conftest import run, workload
from tests.helpers import wait_for


def states(final: dict[Any, tuple[Any, Any]]) -> dict[str, str]:
    return {key.task_id: str(state) for key, (state, _) in final.items()}


def test_success_and_arn_recorded(executor: Any, emulator: Emulator) -> None:
    item = workload("ok")
    final = run(executor, [item])
    assert states(final) == {"ok": "success"}
    events = executor.all_events[item.ti.key]
    arns = [info for state, info in events if str(state) == "running" and info]
    assert arns and arns[0].startswith("arn:aws:ecs:us-east-1:123456789012:task/airflow/")
    task = next(t for t in emulator.tasks() if t["taskArn"] == arns[0])
    assert task["startedBy"] == "airflow-ecs-executor/1"


def test_container_failure_fails_with_reason(executor: Any) -> None:
    final = run(executor, [workload("fail")])
    state, info = final[next(iter(final))]
    assert str(state) == "failed"
    assert "exited with code 1" in info
    logged = [log.extra for log in executor._task_event_logs]
    assert any("exited with code 1" in (extra or "") for extra in logged)


def test_many_workloads_each_get_one_task(executor: Any, emulator: Emulator) -> None:
    items = [workload(f"ok{i}") for i in range(12)]
    final = run(executor, items)
    assert set(states(final).values()) == {"success"}
    assert len(emulator.tasks()) == 12


def test_failed_to_start_is_relaunched_without_spending_a_try(executor: Any, emulator: Emulator) -> None:
    emulator.inject("fail_to_start", reason="CannotPullContainerError")
    item = workload("ok")
    final = run(executor, [item])
    assert states(final) == {"ok": "success"}
    rows = emulator.tasks()
    assert len(rows) == 2
    assert sorted(r["stopCode"] for r in rows) == ["EssentialContainerExited", "TaskFailedToStart"]
    assert len({r["clientToken"] for r in rows}) == 2  # a new attempt, a new token
    assert any("failed to start" in (log.extra or "") for log in executor._task_event_logs)


def test_capacity_shortfall_waits_and_launches(executor: Any, emulator: Emulator) -> None:
    emulator.set_capacity(0)
    item = workload("ok")
    executor.queue_workload(item, session=None)
    executor.heartbeat()
    wait_for(lambda: emulator.counters()["ecs"].get("RunTask.capacity_failures", 0) >= 1)
    emulator.set_capacity(None)
    results = run(executor, [item], timeout=60)
    assert states(results) == {"ok": "success"}


@pytest.mark.parametrize("fault", ["server_error", "connection_reset", "throttle", "lost_response"])
def test_transient_runtask_errors_never_fail_or_duplicate(executor: Any, emulator: Emulator, fault: str) -> None:
    emulator.inject(fault, api="RunTask", count=2)
    final = run(executor, [workload("ok")], timeout=90)
    assert states(final) == {"ok": "success"}
    assert len(emulator.tasks()) == 1


def test_rejected_request_fails_at_once(executor: Any, emulator: Emulator) -> None:
    final = run(executor, [workload("ok", executor_config={"cluster": "prod"})])
    state, info = next(iter(final.values()))
    assert str(state) == "failed"
    assert "not allowed" in info
    assert emulator.tasks() == []


def test_oversized_overrides_fail_that_task_only(executor: Any) -> None:
    big = workload("big", executor_config={"environment": {"X": "y" * 9000}})
    final = run(executor, [big, workload("ok")])
    assert states(final) == {"big": "failed", "ok": "success"}
    assert "at most 8192" in final[big.ti.key][1]


def test_spot_interruption_fails_with_reason(executor: Any, emulator: Emulator) -> None:
    item = workload("sleep")
    executor.queue_workload(item, session=None)
    arn = wait_for(
        lambda: (
            executor.heartbeat(),
            next((t["taskArn"] for t in emulator.tasks() if t["lastStatus"] == "RUNNING"), None),
        )[1]
    )
    emulator.inject("spot_interruption", task_arn=arn)
    results: dict[Any, Any] = {}

    def done() -> bool:
        executor.heartbeat()
        results.update({k: v for k, v in executor.get_event_buffer().items() if str(v[0]) == "failed"})
        return bool(results)

    wait_for(done, timeout=30)
    assert "Spot interruption" in next(iter(results.values()))[1]


def test_revoke_stops_the_ecs_task(executor: Any, emulator: Emulator) -> None:
    item = workload("sleep")
    executor.queue_workload(item, session=None)
    wait_for(lambda: (executor.heartbeat(), any(t["lastStatus"] == "RUNNING" for t in emulator.tasks()))[1])
    executor.revoke_task(ti=item.ti)
    assert wait_for(lambda: (executor.heartbeat(), emulator.tasks()[0]["stopCode"] == "UserInitiated")[1])


def test_jwt_never_logged_even_at_debug(executor: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    run(executor, [workload("ok"), workload("fail")])
    assert "DescribeTasks" in caplog.text  # botocore's DEBUG lines were captured...
    assert "jwt-secret-token" not in caplog.text  # ...with the token redacted


def test_oom_fails_with_reason(executor: Any) -> None:
    final = run(executor, [workload("oom")])
    state, info = next(iter(final.values()))
    assert str(state) == "failed"
    assert "ran out of memory" in info
    assert "exit code 137" in info


def test_credentials_expired_then_back(executor: Any, emulator: Emulator) -> None:
    emulator.inject("expired_credentials", seconds=6)  # RunTask is sent well within it, even on a loaded machine
    final = run(executor, [workload("ok")], timeout=90)
    assert states(final) == {"ok": "success"}
    assert len(emulator.tasks()) == 1
    assert emulator.counters()["api"]["RunTask"].get("expired_credentials", 0) >= 1


def test_task_missing_past_grace_fails(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ecs_executor import EcsExecutor

    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__MISSING_GRACE", "2")
    ex = EcsExecutor()
    ex.start()
    try:
        emulator.inject("describe_missing", seconds=60)
        final = run(ex, [workload("sleep")], timeout=60)
        state, info = next(iter(final.values()))
        assert str(state) == "failed"
        assert "(DescribeTasks: MISSING)" in info
    finally:
        ex.terminate()


def test_brief_missing_is_tolerated(executor: Any, emulator: Emulator) -> None:
    emulator.inject("describe_missing", seconds=3)
    final = run(executor, [workload("ok")], timeout=60)
    assert states(final) == {"ok": "success"}


def test_the_scheduler_thread_never_serialises_a_workload(
    executor: Any, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serialising a workload (and building its request) is the launcher's work, not the heartbeat's."""
    from airflow.executors import workloads

    threads: list[str] = []
    original = workloads.ExecuteTask.model_dump_json

    def recording(self: Any, *args: Any, **kwargs: Any) -> str:
        threads.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(workloads.ExecuteTask, "model_dump_json", recording)
    items = [workload(f"ok{i}") for i in range(5)]
    final = run(executor, items)
    assert set(states(final).values()) == {"success"}
    assert len(threads) == 5
    assert threading.main_thread().name not in threads


def test_launch_timeout_fails_only_what_never_started(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ecs_executor import EcsExecutor

    # Long enough for the sleeper to be seen running on a loaded machine: it must start in time.
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__LAUNCH_TIMEOUT", "15")
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__MAX_LAUNCH_ATTEMPTS", "100")  # the timeout decides, not attempts
    ex = EcsExecutor()
    ex.start()
    try:
        sleeper = workload("sleep")
        ex.queue_workload(sleeper, session=None)
        wait_for(lambda: (ex.heartbeat(), any(h.record.phase == "running" for h in ex._held.values()))[1])
        emulator.set_capacity(1)  # the sleeper holds the only place: nothing else starts
        starved = workload("ok-starved")
        final = run(ex, [starved], timeout=60)
        state, info = final[starved.ti.key]
        assert str(state) == "failed"
        assert "did not start within 15 s" in info
        # The sleeper is past its deadline too, but it started in time: it keeps running.
        assert not [s for s, _ in ex.all_events.get(sleeper.ti.key, []) if str(s) in ("success", "failed")]
        assert sleeper.ti.key in ex.running
        assert [t["lastStatus"] for t in emulator.tasks()] == ["RUNNING"]  # the starved one was never placed
    finally:
        ex.terminate()


def test_intermediate_states_are_seen_on_aws_timings(
    executor: Any, emulator: Emulator, emulator_profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On AWS's lifecycle a task that fails to start is seen STOPPING before STOPPED; it is relaunched."""
    if emulator_profile != "aws-lifecycle":
        pytest.skip("on the fast profile a task passes its intermediate states in milliseconds")
    from airflow_ecs_executor.core import decide as core

    seen: list[tuple[str, bool]] = []
    real = core.decide

    def recording(rec: Any, event: Any, now: float, policy: Any) -> Any:
        if isinstance(event, core.Observed):
            seen.append((event.observation.last_status, event.observation.started))
        return real(rec, event, now, policy)

    monkeypatch.setattr(core, "decide", recording)
    emulator.inject("fail_to_start", reason="CannotPullContainerError")
    final = run(executor, [workload("ok")])
    assert states(final) == {"ok": "success"}
    statuses = {status for status, _ in seen}
    assert {"PENDING", "STOPPED"} <= statuses, seen  # the relaunched task may end before a poll sees it RUNNING
    assert ("STOPPING", False) in seen or ("DEACTIVATING", False) in seen, seen
