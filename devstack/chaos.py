"""The chaos suite: a real Airflow scheduler and EcsExecutor against the emulator's ``chaos`` profile.

``python -m devstack.chaos --tasks 60`` (``make chaos``) runs the ``chaos`` DAG while the profile
throws what AWS throws (throttling, 5xx, reset connections, lost RunTask responses, capacity
shortfalls, tasks failing to start, Spot interruptions, DescribeTasks eventual consistency) and
this driver adds a throttling storm, expired credentials and a scheduler killed with SIGKILL and
restarted mid-run. Then it checks the invariants and prints a figures table:

* every task instance reached the state its task's outcome implies (items that fail on purpose:
  failed; the others: success, unless their last try was lost to a Spot interruption);
* no workload lost (every task instance finished);
* no try ran as two ECS tasks (two started containers with the same try tags);
* application failures consumed Airflow tries and failures before the container started did not:
  every try number a task instance used had a container that started.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.stack import FARGATE_TASK_DEFINITION, Stack

FAILS_ON_PURPOSE_EVERY = 7


@dataclass
class ChaosReport:
    """What the run did and what it found."""

    task_instances: int = 0
    ecs_tasks: int = 0
    tries: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong_state: list[str] = field(default_factory=list)
    try_without_container: list[str] = field(default_factory=list)
    reset_by_airflow: list[str] = field(default_factory=list)
    run_state: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong_state or self.try_without_container)

    def table(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        rows = [
            ("task instances", self.task_instances),
            ("Airflow tries", self.tries),
            ("ECS tasks started by RunTask", self.ecs_tasks),
            ("faults injected", faults),
            ("lost", len(self.lost)),
            ("ran twice in one try", len(self.duplicated)),
            ("wrong final state", len(self.wrong_state)),
            ("tries spent without a container", len(self.try_without_container)),
            ("tries reset by Airflow (queued, not yet launched, when the scheduler died)", len(self.reset_by_airflow)),
            ("DAG run", self.run_state),
            ("duration", f"{self.seconds:.0f} s"),
        ]
        return "| figure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows) + "\n"


def _ecs_tasks(stack: Stack) -> list[dict[str, Any]]:
    ecs = stack.aws("ecs")
    arns = [t["taskArn"] for t in stack.emulator_tasks()]
    out: list[dict[str, Any]] = []
    for i in range(0, len(arns), 100):
        for attempt in range(20):  # the chaos profile throttles and fails DescribeTasks too
            try:
                out += ecs.describe_tasks(cluster="airflow", tasks=arns[i : i + 100], include=["TAGS"])["tasks"]
                break
            except Exception:
                if attempt == 19:
                    raise
                time.sleep(0.5)
    return out


def _orphan_resets(stack: Stack) -> Counter[int]:
    """How often the restarted scheduler reset each map index as an orphan (it had no ECS task yet).

    Airflow resets a task instance that no executor adopts and schedules it again with the next try
    number; with no ECS task to adopt (no ARN yet), no executor can keep that try.
    """
    text = (stack.home / "logs" / "scheduler.log").read_text(errors="replace")
    resets: Counter[int] = Counter()
    for block in re.findall(r"Reset the following \d+ orphaned TaskInstances:(.*?)\[airflow", text, flags=re.S):
        for index in re.findall(r"chaos\.work \S+ map_index=(\d+)", block):
            resets[int(index)] += 1
    return resets


def check(stack: Stack, run_id: str, report: ChaosReport) -> None:
    """Compare Airflow's task instances with what ECS ran."""
    resets = _orphan_resets(stack)
    with sqlite3.connect(stack.home / "airflow.db") as db:
        tis = list(
            db.execute(
                "select map_index, state, try_number from task_instance where dag_id='chaos' and run_id=? "
                "and task_id='work'",
                (run_id,),
            )
        )
    started: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for task in _ecs_tasks(stack):
        tags = {t["key"]: t["value"] for t in task.get("tags", [])}
        if tags.get("dag_id") != "chaos" or tags.get("run_id") != run_id or tags.get("task_id") != "work":
            continue
        report.ecs_tasks += 1
        if task.get("startedAt"):
            started.setdefault((int(tags["map_index"]), int(tags["try_number"])), []).append(task)
    report.task_instances = len(tis)
    for map_index, state, try_number in tis:
        name = f"work[{map_index}]"
        report.tries += int(try_number or 0)
        if state not in ("success", "failed"):
            report.lost.append(f"{name}: {state}")
            continue
        for t in range(1, int(try_number) + 1):
            runs = started.get((map_index, t), [])
            if len(runs) > 1:
                report.duplicated.append(f"{name} try {t}: {[r['taskArn'] for r in runs]}")
            if not runs and resets[map_index] > 0:
                resets[map_index] -= 1
                report.reset_by_airflow.append(f"{name} try {t}")
            elif not runs:
                report.try_without_container.append(f"{name} try {t}")
        last = started.get((map_index, int(try_number)), [])
        if map_index % FAILS_ON_PURPOSE_EVERY == 0:
            expected = "failed"
        elif last and last[-1].get("stopCode") == "SpotInterruption":
            expected = "failed"  # every try lost to Spot: failing is right
        else:
            expected = "success"
        if state != expected:
            report.wrong_state.append(f"{name}: {state}, expected {expected}")


def run(
    home: Path, tasks: int, *, restart_after: float = 20.0, timeout: float = 900.0, task_events: bool | None = None
) -> ChaosReport:
    """Start a stack with the chaos profile, run the DAG with faults and a scheduler kill, check it."""
    report = ChaosReport()
    # The profile's cluster places 12 tasks at once; shortfalls clear as tasks finish, so launches
    # keep trying (an administrator expecting shortfalls sizes max_launch_attempts the same way).
    # Tasks run on Fargate Spot, so the profile's Spot interruptions can reach them.
    stack = Stack(
        home,
        profile="chaos",
        task_events=task_events,  # the chaos profile duplicates, delays, reorders and drops events
        extra_env={
            "AIRFLOW__ECS_EXECUTOR__MAX_LAUNCH_ATTEMPTS": "30",
            # The restarted scheduler adopts the dead one's tasks once it counts that one as dead.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
            "AIRFLOW__ECS_EXECUTOR__CAPACITY_PROVIDER_STRATEGY": '[{"capacityProvider": "FARGATE_SPOT", "weight": 1}]',
            "AIRFLOW__ECS_EXECUTOR__TASK_DEFINITION": FARGATE_TASK_DEFINITION,
            "AIRFLOW__ECS_EXECUTOR__SUBNETS": "subnet-chaos",
            "AIRFLOW__ECS_EXECUTOR__SECURITY_GROUPS": "sg-chaos",
            # The devstack's "big" queue runs a bridge-mode EC2 definition, which Fargate refuses; the
            # scheduler's start-up check says so. The chaos DAG uses no queue of its own.
            "AIRFLOW__ECS_EXECUTOR__QUEUE_PROFILES": "{}",
        },
    )
    started = time.monotonic()
    try:
        stack.start()
        stack.wait_dags(["chaos"])
        run_id = stack.trigger("chaos", {"tasks": tasks})
        time.sleep(restart_after / 2)
        stack.inject("throttle_storm", seconds=5)
        stack.inject("expired_credentials", seconds=5)
        time.sleep(restart_after / 2)
        stack.kill_scheduler()
        time.sleep(3)
        stack.start_scheduler()
        report.run_state = stack.wait_run("chaos", run_id, timeout=timeout)
        time.sleep(3)  # the last containers stop
        check(stack, run_id, report)
        report.faults = Counter(stack.emulator_counters().get("faults", {}))
        report.faults["scheduler SIGKILL"] += 1
    finally:
        report.seconds = time.monotonic() - started
        stack.stop()
    return report


def main() -> None:
    """``python -m devstack.chaos``: exit code 0 when every invariant holds."""
    parser = argparse.ArgumentParser(description="Chaos suite: faults, a scheduler kill, then invariants.")
    parser.add_argument("--tasks", type=int, default=60, help="mapped task instances (default 60)")
    parser.add_argument("--home", type=Path, default=None, help="where Airflow's state goes (default: a temp dir)")
    parser.add_argument(
        "--task-events",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="track tasks by ECS events (default: on, unless ECS_DEVSTACK_TASK_EVENTS=0)",
    )
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="ecs-chaos-"))
    print(f"==> chaos run: {args.tasks} task instances, Airflow state in {home}", flush=True)
    report = run(home, args.tasks, task_events=args.task_events)
    print(report.table())
    for label, items in (
        ("lost", report.lost),
        ("ran twice", report.duplicated),
        ("wrong state", report.wrong_state),
        ("try without container", report.try_without_container),
    ):
        for item in items:
            print(f"  {label}: {item}")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
