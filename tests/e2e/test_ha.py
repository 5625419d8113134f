"""Two schedulers at once on PostgreSQL; one dies with SIGKILL mid-run and the other adopts its ECS tasks.

The ``ha`` DAG's mapped tasks sleep long enough to still be running in ECS when the surviving
scheduler counts the killed one as dead (``scheduler_health_check_threshold``) and, at its next
orphan check, hands the dead scheduler's task instances to its EcsExecutor's
``try_adopt_task_instances``. Then the chaos invariants must hold (``devstack.chaos.check``): every
task instance reaches its right final state, nothing is lost, no try and no queueing runs twice.

Tasks are tracked by ECS events: each scheduler reads an SQS queue of its own, every queue a target
of the one EventBridge rule (``devstack.ha``). The emulator's request log, where each scheduler signs
with a key of its own, shows that each scheduler read its own queue and no other, and that no
scheduler learnt of any task's end from DescribeTasks (so it learnt it from an event): the survivor
described each adopted task once, as adoption does, while it still ran, and then followed it by
events. A survivor that polled would describe each adopted task every ``poll_interval`` (2 s) until
it stopped.

Newest Airflow only: the executor's adoption path is the same on every Airflow version, and the
chaos test (a scheduler killed and restarted, which adopts the same way) runs on both.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from devstack.chaos import ChaosReport, check, wait_drained
from devstack.ha import HaStack, scheduler_job_states, task_instance_rows

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.newest_only,
    pytest.mark.timeout(1200),
]

TASKS = 6  # devstack/dags/ha.py ITEMS; work[0] fails on purpose (first try after its sleep, the retry at once); the others succeed
# Each first try's sleep: the killed scheduler's tasks still run when they are adopted, up to the
# health check threshold (30 s) plus the orphan check interval (5 s) and a loaded loop after the kill.
SECONDS = 75
# DescribeTasks calls naming one adopted task that the survivor may make: adoption's look, and one
# reconciliation if the task was between two states for task_events_silence (30 s). Polling makes one
# every poll_interval (2 s) while the task runs, well over this.
ADOPTED_DESCRIBES = 2
# A reconciliation due in the instant a task stops may describe it before its STOPPED event has come
# through SQS: a describe this soon after a stop is no sign of polling (ADOPTED_DESCRIBES catches that).
EVENT_IN_FLIGHT = 1.0  # seconds


def _requests(stack: HaStack) -> list[dict[str, Any]]:
    """Every AWS call the emulator answered (docs/emulator.md, "The request log")."""
    lines = stack.request_log.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _stopped_ecs_tasks_of_run(stack: HaStack, run_id: str, timeout: float = 120.0) -> dict[str, dict[str, Any]]:
    """The run's ECS tasks by ARN, once all have stopped.

    A task instance's state comes from its task (through the Execution API) before its container
    exits: on a loaded machine the last ECS task stops well after the DAG run ended.
    """
    deadline = time.monotonic() + timeout
    while True:
        arns = [t["taskArn"] for t in stack.emulator_tasks()]
        described = stack.aws("ecs").describe_tasks(cluster="airflow", tasks=arns, include=["TAGS"])["tasks"]
        tagged = {t["taskArn"]: {tag["key"]: tag["value"] for tag in t.get("tags", [])} for t in described}
        tasks = {t["taskArn"]: t for t in described if tagged[t["taskArn"]].get("run_id") == run_id}
        running = [arn for arn, t in tasks.items() if t["lastStatus"] != "STOPPED"]
        if not running:
            return tasks
        if time.monotonic() > deadline:
            raise AssertionError(f"ECS tasks not stopped {timeout:.0f} s after the run ended: {running}")
        time.sleep(1)


def _wait_for_work_in_ecs(stack: HaStack, run_id: str, timeout: float = 300.0) -> None:
    """Until every work item has an ECS task ARN recorded and at least one runs."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in task_instance_rows(stack, "ha", run_id) if r.task_id == "work"]
        launched = [r for r in rows if r.external_executor_id and r.state in ("queued", "running")]
        if len(rows) == TASKS and len(launched) == TASKS and any(r.state == "running" for r in rows):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"work items not all launched in ECS within {timeout:.0f} s: {rows}")
        time.sleep(0.5)


def test_a_killed_schedulers_ecs_tasks_are_adopted_by_the_other(ha_stack: HaStack) -> None:
    stack = ha_stack
    assert stack.task_events, "the HA stack tracks tasks by ECS events (unless ECS_DEVSTACK_TASK_EVENTS=0)"
    run_id = stack.trigger("ha", {"seconds": SECONDS})
    _wait_for_work_in_ecs(stack, run_id)

    # Kill the scheduler that queued the work (both may have queued some: the busier one).
    rows = [r for r in task_instance_rows(stack, "ha", run_id) if r.task_id == "work"]
    counts = {name: sum(1 for r in rows if r.queued_by == stack.hostname_of(name)) for name in stack.scheduler_names}
    victim = max(counts, key=lambda name: counts[name])
    survivor = next(name for name in stack.scheduler_names if name != victim)
    orphans = {r.map_index: r.external_executor_id for r in rows if r.queued_by == stack.hostname_of(victim)}
    tries_at_kill = {r.map_index: r.try_number for r in rows}
    stack.kill_scheduler(victim)
    killed_at = time.monotonic()

    assert stack.wait_run("ha", run_id, timeout=600) == "failed"  # work[0] fails on purpose
    time.sleep(2)  # the last containers stop
    report = ChaosReport(schedulers=2, killed=victim, task_events=stack.task_events)
    check(stack, run_id, report, dag_id="ha", task_id="work")
    print(report.table())

    # The chaos invariants.
    assert report.task_instances == TASKS
    assert report.lost == []
    assert report.duplicated == []
    assert report.queueing_ran_twice == []
    assert report.wrong_state == []
    assert report.try_without_container == []
    assert report.reset_by_airflow == []  # every orphan had an ECS task: adopted, none reset

    # Airflow counted the killed scheduler as dead; the survivor adopted each of its ECS tasks by ARN.
    jobs = scheduler_job_states(stack)
    assert jobs[stack.hostname_of(victim)] == "failed"
    assert jobs[stack.hostname_of(survivor)] == "running"
    survivor_log = (stack.home / "logs" / f"{survivor}.log").read_text(errors="replace")
    # Any try: under load Airflow may count a live scheduler as dead before the kill and reset its
    # queued task instances (their next try is then the one in ECS when the victim dies).
    adopted = {
        int(index): arn
        for index, arn in re.findall(
            rf"adopted ha/work/{re.escape(run_id)}/(\d+)/\d+: ECS task (\S+)",
            survivor_log,
        )
    }
    assert adopted == orphans, f"{len(adopted)} adopted of {len(orphans)} orphans, {time.monotonic() - killed_at:.0f} s"
    # Adopted tries kept their try number: the items that succeed did so in the try the victim launched.
    final = {r.map_index: r for r in task_instance_rows(stack, "ha", run_id) if r.task_id == "work"}
    assert all(final[i].try_number == tries_at_kill[i] for i in orphans if i != 0)
    # work[0] has one retry (max_tries 1). In try 1 it failed (reported by its adopted task), was
    # retried and failed in try 2. If Airflow reset it before the kill (a live scheduler counted dead
    # under load: the reset spends a try number, not a retry), the try in ECS at the kill was its last.
    assert final[0].try_number == max(2, tries_at_kill[0])

    # (b) below needs every task's stop time, and the request log complete: wait for the last to stop.
    tasks = _stopped_ecs_tasks_of_run(stack, run_id)
    calls = _requests(stack)

    # (a) Each scheduler read its own events queue, and no other, and deleted what it handled.
    for name in stack.scheduler_names:
        own = stack.events_queue_url(name)
        log = (stack.home / "logs" / f"{name}.log").read_text(errors="replace")
        assert f"EcsExecutor tracks tasks by ECS events from {own}" in log
        sqs = [c for c in calls if c["principal"] == name and c["service"] == "sqs"]
        read = {c["params"].get("QueueUrl") for c in sqs if c["action"] == "ReceiveMessage"}
        assert read == {own}, f"{name} read {read}"
        deleted = [c for c in sqs if c["action"] in ("DeleteMessage", "DeleteMessageBatch") and c["status"] == 200]
        assert deleted and {c["params"].get("QueueUrl") for c in deleted} == {own}

    # (b) No scheduler learnt of a task's end from DescribeTasks: none described a task once it had
    # stopped (beyond an event's time in flight), so the STOPPED state of every task, adopted ones
    # included, came by an event. The survivor described each adopted task at most ADOPTED_DESCRIBES
    # times.
    assert set(orphans.values()) <= set(tasks)
    described: Counter[str] = Counter()
    for c in calls:
        if c["service"] == "ecs" and c["action"] == "DescribeTasks" and c["principal"] in stack.scheduler_names:
            for arn in c["params"].get("tasks", []):
                task = tasks.get(arn)
                if task is None:
                    continue
                late = (_at(c["time"]) - task["stoppedAt"]).total_seconds()
                assert late < EVENT_IN_FLIGHT, f"{c['principal']} described {arn} {late:.1f} s after it stopped"
                if c["principal"] == survivor:
                    described[arn] += 1
    for arn in orphans.values():
        assert arn is not None
        assert 1 <= described[arn] <= ADOPTED_DESCRIBES, f"the survivor described adopted {arn} {described[arn]} times"

    # (c) The survivor's queue drained: every event was handled and deleted. Nobody reads the killed
    # scheduler's queue any more (each event in it also reached the survivor's).
    assert wait_drained(stack) == {survivor: 0}
