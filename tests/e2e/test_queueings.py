"""One Airflow try queued more than once reaches the same end on EcsExecutor as on LocalExecutor.

A reschedule-mode sensor's pokes and a deferral's resumption are new queueings of the *same* try
(same dag, task, run, map index and try number); a cleared task and a retried one are queued with a
new try number. The DAGs are in devstack/dags/queueings.py. Each runs on the session's EcsExecutor
stack and on a second stack, identical but for ``[core] executor = LocalExecutor``: the reference
for what Airflow itself makes of these queueings. Every try must end in the same state with the
same try number on both, and on ECS every queueing must have run in an ECS task of its own, once.

The ``_fast`` sensor and deferral hand the next queueing over before the previous one's ECS task has
been seen to stop. They run on ECS only: LocalExecutor on a loaded machine reports the previous
queueing's end after the next one was queued and Airflow's scheduler then fails the try
(apache/airflow#71172, #72716), so it is no reference there. An executor that knows its queueings
can report only the current one; these two hold EcsExecutor to the end LocalExecutor reaches when it
wins that race: success, in one try.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import LOG_GROUP, Stack
from tests.e2e.test_airflow import stopped_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# dag_id -> its one task
TASKS = {
    "queueing_reschedule": "wait_for_third_poke",
    "queueing_deferral": "defer_then_resume",
    "queueing_clear": "run_twice",
    "queueing_retry": "fail_once",
    "queueing_reschedule_fast": "wait_for_third_poke",
    "queueing_deferral_fast": "defer_then_resume",
}
COMPARED = ["queueing_reschedule", "queueing_deferral", "queueing_clear", "queueing_retry"]
SENSORS = ["queueing_reschedule", "queueing_reschedule_fast"]
DEFERRALS = ["queueing_deferral", "queueing_deferral_fast"]
POKES_NEEDED = 3  # the sensor's callable returns True on its third poke
RUN_TIMEOUT = 600.0  # a loaded 2-core machine takes tens of seconds to start each ECS task's process


@dataclass(frozen=True)
class Outcome:
    """What one stack made of the queueings DAGs."""

    run_ids: dict[str, str]
    run_states: dict[str, str]
    tries: dict[str, list[tuple[int, str]]]  # dag_id -> (try_number, state) of each try, oldest first
    pokes: dict[str, int]  # sensor dag_id -> how many times its callable ran


def run_queueings(stack: Stack, dag_ids: list[str]) -> Outcome:
    """Trigger the DAGs at once; clear ``run_twice`` once it has succeeded; await all."""
    counters = {dag_id: f"queueing_pokes_{uuid.uuid4().hex}" for dag_id in dag_ids if dag_id in SENSORS}
    run_ids = {
        dag_id: stack.trigger(dag_id, {"poke_counter": counters[dag_id]} if dag_id in counters else None)
        for dag_id in dag_ids
    }
    first = stack.wait_run("queueing_clear", run_ids["queueing_clear"], timeout=RUN_TIMEOUT)
    if first == "success":  # otherwise there is nothing to clear, and the test says why
        stack.clear_task("queueing_clear", run_ids["queueing_clear"], TASKS["queueing_clear"])
    run_states = {dag_id: stack.wait_run(dag_id, run_id, timeout=RUN_TIMEOUT) for dag_id, run_id in run_ids.items()}
    tries = {
        dag_id: [(int(t["try_number"]), str(t["state"])) for t in stack.task_tries(dag_id, run_id, TASKS[dag_id])]
        for dag_id, run_id in run_ids.items()
    }
    pokes = {dag_id: int(stack.variable(key) or 0) for dag_id, key in counters.items()}
    return Outcome(run_ids, run_states, tries, pokes)


@pytest.fixture(scope="module")
def on_ecs(stack: Stack) -> Outcome:
    stack.wait_dags(list(TASKS))
    return run_queueings(stack, list(TASKS))


@pytest.fixture(scope="module")
def on_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    # The same devstack (emulator included, unused), with Airflow's own LocalExecutor. Two task
    # processes at a time: on a loaded machine, four task processes starting at once against the
    # SQLite-backed API server once left it answering nothing (every request timed out).
    st = Stack(
        Path(tmp_path_factory.mktemp("airflow-local")),
        extra_env={"AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "AIRFLOW__CORE__PARALLELISM": "2"},
    )
    try:
        st.start()
        st.wait_dags(COMPARED)
        yield run_queueings(st, COMPARED)
    finally:
        st.stop()


def ecs_tasks(stack: Stack, outcome: Outcome, dag_id: str) -> list[dict[str, Any]]:
    """The ECS tasks of one DAG run whose container ran (a task that failed to start is not a run),
    oldest first, each with the clientToken it was started with (from the emulator)."""
    tokens = {t["taskArn"]: t["clientToken"] for t in stack.emulator_tasks()}
    tasks = [
        {**t, "clientToken": tokens.get(t["taskArn"])}
        for t in stopped_for(stack, dag_id, outcome.run_ids[dag_id])
        if t.get("stopCode") != "TaskFailedToStart"
    ]
    return sorted(tasks, key=lambda t: t["createdAt"])


def container_outputs(stack: Stack, tasks: list[dict[str, Any]], markers: list[str]) -> list[str]:
    """Each ECS task's container output as CloudWatch Logs holds it, once each shows its marker (a
    container's last lines arrive shortly after it exits), or after 60 s."""
    logs = stack.aws("logs")
    deadline = time.monotonic() + 60
    while True:
        outputs = []
        for task in tasks:
            stream = f"airflow/base/{task['taskArn'].rsplit('/', 1)[-1]}"
            kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
            lines: list[str] = []
            while True:
                page = logs.get_log_events(**kwargs)
                lines += [e["message"] for e in page["events"]]
                if not page["events"] or page["nextForwardToken"] == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextForwardToken"]
            outputs.append("\n".join(lines))
        if all(marker in out for marker, out in zip(markers, outputs, strict=False)) or time.monotonic() > deadline:
            return outputs
        time.sleep(1)


def describe(stack: Stack, outcome: Outcome, tasks: list[dict[str, Any]], dag_id: str) -> str:
    """A failure message: what Airflow recorded, which ECS tasks ran, what the scheduler complained of."""
    ran = [
        f"{t['taskArn'].rsplit('/', 1)[-1][:8]} try {t['tagmap']['try_number']} {t['lastStatus']} "
        f"{t.get('stopCode')} exit {t['containers'][0].get('exitCode')}"
        for t in tasks
    ]
    text = f"{dag_id}: run {outcome.run_states[dag_id]}, tries {outcome.tries[dag_id]}, ECS tasks {ran}"
    if dag_id in outcome.pokes:
        text += f", pokes counted by the callable: {outcome.pokes[dag_id]}"
    run_id = outcome.run_ids[dag_id]
    mismatches = [
        line.split("[airflow.task]")[0][:300]
        for line in (stack.home / "logs" / "scheduler.log").read_text(errors="replace").splitlines()
        if "finished with state" in line and f"{dag_id}." in line and run_id in line
    ]
    return text + "".join(f"\nscheduler: {m}" for m in mismatches)


def assert_each_ran_once(tasks: list[dict[str, Any]], queueings: int, context: str) -> None:
    """``queueings`` ECS tasks, each started for a queueing of its own, each container run to exit 0."""
    assert len(tasks) == queueings, context
    assert len({t["taskArn"] for t in tasks}) == queueings, context
    assert len({t["clientToken"] for t in tasks}) == queueings, context
    assert [t["containers"][0].get("exitCode") for t in tasks] == [0] * queueings, context


@pytest.mark.parametrize("dag_id", SENSORS)
def test_reschedule_sensor_pokes_in_an_ecs_task_each(dag_id: str, stack: Stack, on_ecs: Outcome) -> None:
    tasks = ecs_tasks(stack, on_ecs, dag_id)
    context = describe(stack, on_ecs, tasks, dag_id)
    # Every poke is a queueing of try 1; the try succeeds on the third.
    assert on_ecs.run_states[dag_id] == "success", context
    assert on_ecs.tries[dag_id] == [(1, "success")], context
    assert on_ecs.pokes[dag_id] == POKES_NEEDED, context
    # Each poke ran in an ECS task of its own, and no poke ran twice.
    assert {t["tagmap"]["try_number"] for t in tasks} == {"1"}, context
    assert_each_ran_once(tasks, POKES_NEEDED, context)
    outputs = container_outputs(stack, tasks, [f"poke {n} of" for n in range(1, POKES_NEEDED + 1)])
    pokes = [re.findall(rf"poke (\d) of {POKES_NEEDED}", out) for out in outputs]
    assert pokes == [[str(n)] for n in range(1, POKES_NEEDED + 1)], context


@pytest.mark.parametrize("dag_id", DEFERRALS)
def test_deferred_operator_resumes_in_a_second_ecs_task(dag_id: str, stack: Stack, on_ecs: Outcome) -> None:
    tasks = ecs_tasks(stack, on_ecs, dag_id)
    context = describe(stack, on_ecs, tasks, dag_id)
    assert on_ecs.run_states[dag_id] == "success", context
    assert on_ecs.tries[dag_id] == [(1, "success")], context
    # execute() deferred in one ECS task; execute_complete() ran in another, for the same try.
    assert {t["tagmap"]["try_number"] for t in tasks} == {"1"}, context
    assert_each_ran_once(tasks, 2, context)
    deferred, resumed = container_outputs(stack, tasks, ["deferring to the triggerer", "resumed on a worker"])
    assert "deferring to the triggerer" in deferred, context
    assert "resumed on a worker" not in deferred, context
    assert "resumed on a worker after the trigger fired" in resumed, context
    assert "deferring to the triggerer" not in resumed, context


def test_cleared_task_runs_again(stack: Stack, on_ecs: Outcome) -> None:
    dag_id = "queueing_clear"
    tasks = ecs_tasks(stack, on_ecs, dag_id)
    context = describe(stack, on_ecs, tasks, dag_id)
    assert on_ecs.run_states[dag_id] == "success", context
    # Airflow 3 gives a cleared task instance the next try number when it schedules it again.
    assert on_ecs.tries[dag_id] == [(1, "success"), (2, "success")], context
    assert [t["tagmap"]["try_number"] for t in tasks] == ["1", "2"], context
    assert_each_ran_once(tasks, 2, context)


def test_failed_try_is_retried(stack: Stack, on_ecs: Outcome) -> None:
    dag_id = "queueing_retry"
    tasks = ecs_tasks(stack, on_ecs, dag_id)
    context = describe(stack, on_ecs, tasks, dag_id)
    assert on_ecs.run_states[dag_id] == "success", context
    assert on_ecs.tries[dag_id] == [(1, "failed"), (2, "success")], context
    assert [t["tagmap"]["try_number"] for t in tasks] == ["1", "2"], context
    # Both containers exit 0: the task runner reports try 1's failure to the API server itself.
    assert_each_ran_once(tasks, 2, context)


@pytest.mark.newest_only  # Airflow's reference behaviour; the ECS-side tests above run on every version
@pytest.mark.parametrize("dag_id", COMPARED)
def test_same_end_as_on_local_executor(dag_id: str, on_ecs: Outcome, on_local: Outcome) -> None:
    ecs = (on_ecs.run_states[dag_id], on_ecs.tries[dag_id], on_ecs.pokes.get(dag_id))
    local = (on_local.run_states[dag_id], on_local.tries[dag_id], on_local.pokes.get(dag_id))
    assert local[0] == "success", f"the reference itself failed: {local}"
    assert ecs == local
