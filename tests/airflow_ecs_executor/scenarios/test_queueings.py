"""One Airflow try queued more than once, and tries that overlap: each queueing is its own launch.

A reschedule-mode sensor's pokes, a deferral resumed on a worker and a re-created run id hand the
scheduler the same dag/task/run/map index/try again. Each hand-over must get an ECS task of its own
(its own clientTokens), and an earlier hand-over must never report over a later one: Airflow applies
a final state by task-instance key, so the earlier queueing's "success" would land on the later one.
"""

from __future__ import annotations

import time
from typing import Any

from ecs_emulator import Emulator
from tests.airflow_ecs_executor.scenarios.conftest import workload
from tests.helpers import wait_for


def heartbeat_until(executor: Any, done: Any, timeout: float = 60.0) -> list[tuple[Any, str, Any]]:
    """Heartbeat as the scheduler does; every event (key, state, info) in order, until done(events)."""
    events: list[tuple[Any, str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executor.heartbeat()
        events += [(k, str(s), info) for k, (s, info) in executor.get_event_buffer().items()]
        if done(events):
            return events
        time.sleep(0.05)
    raise AssertionError(f"not done within {timeout} s; events: {events}")


def finals(events: list[tuple[Any, str, Any]]) -> list[tuple[Any, str, Any]]:
    return [e for e in events if e[1] in ("success", "failed")]


def test_each_queueing_of_one_try_gets_its_own_ecs_task(executor: Any, emulator: Emulator) -> None:
    """The bug: the second poke reused the first poke's clientToken and ECS answered with the old task."""
    arns = []
    for _poke in range(3):
        item = workload("sensor")  # the same dag/task/run/map index/try every time
        executor.queue_workload(item, session=None)
        events = heartbeat_until(executor, lambda ev: bool(finals(ev)))
        [(_, state, arn)] = finals(events)
        assert state == "success"
        arns.append(arn)
    assert len(set(arns)) == 3
    tasks = emulator.tasks()
    assert len(tasks) == 3
    assert len({t["clientToken"] for t in tasks}) == 3


def test_an_earlier_queueing_never_reports_over_a_newer_one(executor: Any, emulator: Emulator) -> None:
    """A poke still tracked (its container exits a little later) when Airflow queues the next poke."""
    first = workload("sensor", executor_config={"environment": {"FAKE_SLEEP": "3"}})
    executor.queue_workload(first, session=None)
    heartbeat_until(executor, lambda ev: any(s == "running" for _, s, _ in ev))
    wait_for(lambda: any(t["lastStatus"] == "RUNNING" for t in emulator.tasks()))
    second = workload("sensor", executor_config={"environment": {"FAKE_EXIT": "1"}})
    assert second.ti.key == first.ti.key
    executor.queue_workload(second, session=None)
    events = heartbeat_until(executor, lambda ev: bool(finals(ev)))
    [(key, state, reason)] = finals(events)
    assert (key, state) == (first.ti.key, "failed") and "exited with code 1" in reason
    # The first poke's task goes on to exit 0: it must not reach Airflow's event buffer.
    wait_for(lambda: all(t["lastStatus"] == "STOPPED" for t in emulator.tasks()), timeout=30)
    later = heartbeat_until(executor, lambda _: not executor._held, timeout=30)
    assert finals(later) == []
    assert first.ti.key not in executor.running


def test_an_older_try_never_reports_over_a_newer_one(executor: Any, emulator: Emulator) -> None:
    """Two tries of one task instance ending in one heartbeat: Airflow kept the older try's event.

    Airflow's process_executor_events maps task instances to try numbers without the try, so an
    older try's final event in the same buffer replaced the newer try's, which was never applied.
    """
    try_3 = workload("flaky", try_number=3, executor_config={"environment": {"FAKE_SLEEP": "2"}})
    executor.queue_workload(try_3, session=None)
    wait_for(lambda: (executor.heartbeat(), any(t["lastStatus"] == "RUNNING" for t in emulator.tasks()))[1])
    try_4 = workload("flaky", try_number=4, executor_config={"environment": {"FAKE_EXIT": "1"}})
    executor.queue_workload(try_4, session=None)
    # Both end close together; the heartbeats meanwhile collect every event (Airflow would read them
    # all from one buffer).
    events = heartbeat_until(
        executor,
        lambda _: not executor._held and sum(t["lastStatus"] == "STOPPED" for t in emulator.tasks()) == 2,
        timeout=30,
    )
    assert [(k.try_number, s) for k, s, _ in finals(events)] == [(4, "failed")]
    assert try_3.ti.key not in executor.running and try_4.ti.key not in executor.running


def test_end_launches_nothing_new_and_hands_unsent_work_back(executor: Any, emulator: Emulator) -> None:
    emulator.set_capacity(0)  # nothing can be placed: every launch waits for its next attempt
    items = [workload(f"queued{i}") for i in range(6)]
    for item in items:
        executor.queue_workload(item, session=None)
    executor.heartbeat()
    wait_for(lambda: emulator.counters()["api"].get("RunTask", {}).get("calls", 0) >= 6)
    emulator.set_capacity(None)
    started = time.monotonic()
    executor.end()
    assert time.monotonic() - started < 20
    calls = emulator.counters()["api"]["RunTask"]["calls"]
    time.sleep(2)
    assert emulator.counters()["api"]["RunTask"]["calls"] == calls  # nothing more after end()
    assert not executor._held
    assert not any(item.ti.key in executor.running for item in items)


def test_one_bad_result_never_loses_another(executor: Any, monkeypatch: Any) -> None:
    from airflow_ecs_executor.core import decide as core

    real = core.decide

    def sabotaged(rec: Any, event: Any, now: float, policy: Any) -> Any:
        if rec.workload_id.split("/")[1] == "cursed" and isinstance(event, core.Observed):
            raise RuntimeError("a bug while applying one result")
        return real(rec, event, now, policy)

    monkeypatch.setattr(core, "decide", sabotaged)
    items = [workload("cursed"), *[workload(f"fine{i}") for i in range(4)]]
    for item in items:
        executor.queue_workload(item, session=None)
    fine = {item.ti.key for item in items[1:]}
    events = heartbeat_until(executor, lambda ev: fine <= {k for k, _, _ in finals(ev)})
    assert {k.task_id for k, s, _ in finals(events)} == {f"fine{i}" for i in range(4)}
    assert any(h.key == items[0].ti.key for h in executor._held.values())  # kept, never dropped
