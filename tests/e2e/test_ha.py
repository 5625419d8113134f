"""Two schedulers at once on PostgreSQL; one dies with SIGKILL mid-run and the other adopts its ECS tasks.

The ``ha`` DAG's mapped tasks sleep long enough to still be running in ECS when the surviving
scheduler counts the killed one as dead (``scheduler_health_check_threshold``) and, at its next
orphan check, hands the dead scheduler's task instances to its EcsExecutor's
``try_adopt_task_instances``. Then the chaos invariants must hold (``devstack.chaos.check``): every
task instance reaches its right final state, nothing is lost, no try and no queueing runs twice.

Newest Airflow only: the executor's adoption path is the same on every Airflow version, and the
chaos test (a scheduler killed and restarted, which adopts the same way) runs on both.
"""

from __future__ import annotations

import re
import time

import pytest

from devstack.chaos import ChaosReport, check
from devstack.ha import HaStack, scheduler_job_states, task_instance_rows

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.newest_only,
    pytest.mark.timeout(1200),
]

TASKS = 6  # devstack/dags/ha.py ITEMS; work[0] fails on purpose (first try after its sleep, the retry at once); the others succeed
SECONDS = 40  # each first try's sleep: the killed scheduler's tasks still run when they are adopted


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
    run_id = stack.trigger("ha", {"seconds": SECONDS})
    _wait_for_work_in_ecs(stack, run_id)

    # Kill the scheduler that queued the work (both may have queued some: the busier one).
    rows = [r for r in task_instance_rows(stack, "ha", run_id) if r.task_id == "work"]
    counts = {name: sum(1 for r in rows if r.queued_by == stack.hostname_of(name)) for name in stack.scheduler_names}
    victim = max(counts, key=lambda name: counts[name])
    survivor = next(name for name in stack.scheduler_names if name != victim)
    orphans = {r.map_index: r.external_executor_id for r in rows if r.queued_by == stack.hostname_of(victim)}
    stack.kill_scheduler(victim)
    killed_at = time.monotonic()

    assert stack.wait_run("ha", run_id, timeout=600) == "failed"  # work[0] fails on purpose
    time.sleep(2)  # the last containers stop
    report = ChaosReport(schedulers=2, killed=victim)
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
    adopted = {
        int(index): arn
        for index, arn in re.findall(
            rf"adopted ha/work/{re.escape(run_id)}/(\d+)/1: ECS task (\S+)",
            survivor_log,
        )
    }
    assert adopted == orphans, f"{len(adopted)} adopted of {len(orphans)} orphans, {time.monotonic() - killed_at:.0f} s"
    # Adopted tries kept their try number: the items that succeed did so in their first try.
    final = {r.map_index: r for r in task_instance_rows(stack, "ha", run_id) if r.task_id == "work"}
    assert all(final[i].try_number == 1 for i in orphans if i != 0)
    assert final[0].try_number == 2  # failed once (reported by its adopted task), retried, failed
