"""The chaos suite: a real Airflow scheduler and EcsExecutor against the emulator's ``chaos`` profile.

``python -m devstack.chaos --tasks 60`` (``make chaos``) runs the ``chaos`` DAG while the profile
throws what AWS throws (throttling, 5xx, reset connections, lost RunTask responses, capacity
shortfalls, tasks failing to start, Spot interruptions, DescribeTasks eventual consistency) and
this driver adds a throttling storm, expired credentials and a scheduler killed with SIGKILL and
restarted mid-run. Then it checks the invariants and prints a figures table:

* every task instance reached the state its task's outcome implies (items that fail on purpose:
  failed; the others: success, unless their last try was lost to a Spot interruption);
* no workload lost (every task instance finished);
* no try ran as two ECS tasks (two started containers with the same try tags), and no queueing did
  (two started containers with the same ``ecs_executor_queueing`` tag);
* application failures consumed Airflow tries and failures before the container started did not:
  every try number a task instance used had a container that started.

With ``--schedulers 2`` (or more) Airflow runs on PostgreSQL with that many schedulers at once
(``devstack.ha``); ``--kill-scheduler`` then kills one of them with SIGKILL mid-run, the one that
queued most of the task instances running in ECS at that moment, and does not restart it: the
others adopt its tasks through Airflow's orphan adoption, and the same invariants must hold.

Task events (``--task-events``, the default unless ``ECS_DEVSTACK_TASK_EVENTS=0``) apply to one
scheduler and to several alike: each scheduler reads its own SQS queue (``devstack.ha``), and the
profile duplicates, delays, reorders and drops events. With events on, the report also says how many
messages each live scheduler's queue still holds at the end (none, once it drained).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.ha import HaStack, kill_busiest_scheduler, task_instance_rows, wait_for_work_in_ecs
from devstack.stack import FARGATE_TASK_DEFINITION, Stack

FAILS_ON_PURPOSE_EVERY = 7  # as in devstack/dags/chaos.py and devstack/dags/ha.py
# The tag EcsExecutor puts on every ECS task: one value per queueing (airflow_ecs_executor.aws.requests).
QUEUEING_TAG = "ecs_executor_queueing"
# Several schedulers: the busiest is killed once this many task instances run in ECS (or all do).
HA_KILL_WITH_IN_ECS = 10
# How long the DAG run may take. One scheduler: 900 s. Several: two schedulers, PostgreSQL and the
# chaos profile's faults share 2 cores with the tasks; the last 60-task two-scheduler run had 41 of 60
# task instances done at 900 s at a load average of 25-37 (about 22 s per task instance), so the wait
# grows with the task count: 30 s per task instance, 1800 s for 60, never under 900 s.
TIMEOUT = 900.0
HA_SECONDS_PER_TASK = 30.0


def default_timeout(tasks: int, schedulers: int) -> float:
    """Seconds the run may take: see HA_SECONDS_PER_TASK."""
    return TIMEOUT if schedulers < 2 else max(TIMEOUT, HA_SECONDS_PER_TASK * tasks)


@dataclass
class ChaosReport:
    """What the run did and what it found."""

    task_instances: int = 0
    ecs_tasks: int = 0
    tries: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    queueing_ran_twice: list[str] = field(default_factory=list)
    wrong_state: list[str] = field(default_factory=list)
    try_without_container: list[str] = field(default_factory=list)
    # Tries the executor failed with its reason because it may not launch them again: launch attempts
    # spent (capacity shortfalls beyond max_launch_attempts) or an adopted task that failed to start
    # (the adopter holds no workload to launch again). Designed behaviour, shown, not a violation.
    gave_up: list[str] = field(default_factory=list)
    reset_by_airflow: list[str] = field(default_factory=list)
    adopted: int = 0  # ECS tasks a scheduler adopted (from a dead or restarted one)
    schedulers: int = 1
    task_events: bool = False
    undrained: dict[str, int] = field(default_factory=dict)  # live schedulers' queues: messages left
    killed: str = ""  # which scheduler was killed, and how many of its task instances ran in ECS
    run_state: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.queueing_ran_twice
            or self.wrong_state
            or self.try_without_container
            or any(self.undrained.values())
        )

    def table(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        rows = [
            ("task instances", self.task_instances),
            ("Airflow tries", self.tries),
            ("ECS tasks started by RunTask", self.ecs_tasks),
            ("faults injected", faults),
            ("lost", len(self.lost)),
            ("ran twice in one try", len(self.duplicated)),
            ("ran twice in one queueing", len(self.queueing_ran_twice)),
            ("wrong final state", len(self.wrong_state)),
            ("tries spent without a container", len(self.try_without_container)),
            (
                "tries the executor failed with its reason (launch attempts spent, adopted task failed to start)",
                len(self.gave_up),
            ),
            ("tries reset by Airflow (queued, not yet launched, when the scheduler died)", len(self.reset_by_airflow)),
            ("schedulers", self.schedulers),
            ("tracking", "ECS events (a queue per scheduler)" if self.task_events else "DescribeTasks polling"),
            ("events left in live schedulers' queues", sum(self.undrained.values()) if self.undrained else "-"),
            ("scheduler killed", self.killed or "-"),
            ("ECS tasks adopted by a scheduler", self.adopted),
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


def _scheduler_logs(stack: Stack) -> str:
    """Every scheduler's log: ``scheduler.log``, or ``scheduler-<n>.log`` for several schedulers."""
    return "".join(p.read_text(errors="replace") for p in sorted((stack.home / "logs").glob("scheduler*.log")))


def _orphan_resets(stack: Stack, dag_id: str, task_id: str, run_id: str) -> Counter[int]:
    """How often a scheduler reset each map index as an orphan (it had no ECS task yet).

    Airflow resets a task instance that no executor adopts and schedules it again with the next try
    number; with no ECS task to adopt (no ARN yet), no executor can keep that try.
    """
    resets: Counter[int] = Counter()
    ti = re.compile(rf"{re.escape(dag_id)}\.{re.escape(task_id)} {re.escape(run_id)} map_index=(\d+)")
    blocks = re.findall(r"Reset the following \d+ orphaned TaskInstances:(.*?)\[airflow", _scheduler_logs(stack), re.S)
    for block in blocks:
        for index in ti.findall(block):
            resets[int(index)] += 1
    return resets


def _gave_up(logs: str, workload_id: str) -> bool:
    """The executor failed this try on purpose: "<workload> failed: ...; gave up after N launch attempt(s)"."""
    return any("gave up after" in line for line in logs.splitlines() if f"{workload_id} failed: " in line)


def _adopted(stack: Stack, dag_id: str, task_id: str, run_id: str) -> int:
    """How many ECS tasks of the run's task instances a scheduler's EcsExecutor adopted."""
    return _scheduler_logs(stack).count(f"adopted {dag_id}/{task_id}/{run_id}/")


def check(stack: Stack, run_id: str, report: ChaosReport, *, dag_id: str = "chaos", task_id: str = "work") -> None:
    """Compare Airflow's task instances of one mapped task with what ECS ran: the chaos invariants.

    Items whose map index is a multiple of FAILS_ON_PURPOSE_EVERY must fail, the others succeed
    (unless their last try was lost to a Spot interruption); every try and every queueing ran in at
    most one started container; every try spent had a container, or Airflow reset it as an orphan.
    """
    resets = _orphan_resets(stack, dag_id, task_id, run_id)
    report.adopted = _adopted(stack, dag_id, task_id, run_id)
    logs = _scheduler_logs(stack)
    tis = [row for row in task_instance_rows(stack, dag_id, run_id) if row.task_id == task_id]
    started: dict[tuple[int, int], list[dict[str, Any]]] = {}
    by_queueing: dict[str, list[str]] = {}
    for task in _ecs_tasks(stack):
        tags = {t["key"]: t["value"] for t in task.get("tags", [])}
        if tags.get("dag_id") != dag_id or tags.get("run_id") != run_id or tags.get("task_id") != task_id:
            continue
        report.ecs_tasks += 1
        if task.get("startedAt"):
            started.setdefault((int(tags["map_index"]), int(tags["try_number"])), []).append(task)
            by_queueing.setdefault(tags.get(QUEUEING_TAG, "?"), []).append(task["taskArn"])
    report.queueing_ran_twice += [f"queueing {q}: {arns}" for q, arns in by_queueing.items() if len(arns) > 1]
    report.task_instances = len(tis)
    for row in tis:
        map_index, state, try_number = row.map_index, row.state, row.try_number
        name = f"{task_id}[{map_index}]"
        report.tries += try_number
        if state not in ("success", "failed"):
            report.lost.append(f"{name}: {state}")
            continue
        for t in range(1, try_number + 1):
            runs = started.get((map_index, t), [])
            if len(runs) > 1:
                report.duplicated.append(f"{name} try {t}: {[r['taskArn'] for r in runs]}")
            if not runs and resets[map_index] > 0:
                resets[map_index] -= 1
                report.reset_by_airflow.append(f"{name} try {t}")
            elif not runs and _gave_up(logs, f"{dag_id}/{task_id}/{run_id}/{map_index}/{t}"):
                report.gave_up.append(f"{name} try {t}")
            elif not runs:
                report.try_without_container.append(f"{name} try {t}")
        last = started.get((map_index, try_number), [])
        if map_index % FAILS_ON_PURPOSE_EVERY == 0:
            expected = "failed"
        elif last and last[-1].get("stopCode") == "SpotInterruption":
            expected = "failed"  # every try lost to Spot: failing is right
        else:
            expected = "success"
        if state != expected:
            report.wrong_state.append(f"{name}: {state}, expected {expected}")


def live_schedulers(stack: Stack) -> list[str]:
    """The schedulers still running (``scheduler``, or ``scheduler-<n>`` in an HA stack)."""
    names = stack.scheduler_names if isinstance(stack, HaStack) else ["scheduler"]
    return [name for name in names if name in stack.procs]


def wait_drained(stack: Stack, timeout: float = 60.0) -> dict[str, int]:
    """Messages left in each live scheduler's events queue, once all are empty or ``timeout`` passed.

    A killed scheduler's queue is not waited for: nobody reads it (every event in it also reached
    the other queues); its messages expire with the queue's retention period.
    """
    deadline = time.monotonic() + timeout
    while True:
        depths = stack.events_queue_depths()
        left = {name: n for name, n in depths.items() if name in live_schedulers(stack)}
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        time.sleep(1)


def run(
    home: Path,
    tasks: int,
    *,
    restart_after: float = 20.0,
    timeout: float | None = None,
    schedulers: int = 1,
    kill_scheduler: bool = False,
    task_events: bool | None = None,
) -> ChaosReport:
    """Start a stack with the chaos profile, run the DAG with faults and a scheduler kill, check it.

    One scheduler: it is killed with SIGKILL and restarted mid-run. Several (on PostgreSQL): with
    ``kill_scheduler`` the busiest one is killed mid-run and not restarted; the others adopt.
    """
    report = ChaosReport(schedulers=schedulers)
    timeout = default_timeout(tasks, schedulers) if timeout is None else timeout
    # The profile's cluster places 12 tasks at once; shortfalls clear as tasks finish, so launches
    # keep trying (an administrator expecting shortfalls sizes max_launch_attempts the same way).
    # Tasks run on Fargate Spot, so the profile's Spot interruptions can reach them.
    extra_env = {
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
    }
    # The chaos profile duplicates, delays, reorders and drops events; several schedulers read a
    # queue each (devstack.ha).
    stack = (
        HaStack(home, schedulers=schedulers, profile="chaos", extra_env=extra_env, task_events=task_events)
        if schedulers > 1
        else Stack(home, profile="chaos", extra_env=extra_env, task_events=task_events)
    )
    report.task_events = stack.task_events
    started = time.monotonic()
    try:
        stack.start()
        stack.wait_dags(["chaos"])
        run_id = stack.trigger("chaos", {"tasks": tasks})
        time.sleep(restart_after / 2)
        stack.inject("throttle_storm", seconds=5)
        stack.inject("expired_credentials", seconds=5)
        time.sleep(restart_after / 2)
        if isinstance(stack, HaStack):
            if kill_scheduler:
                # Killed while it holds work in ECS, so the others have something to adopt.
                wait_for_work_in_ecs(stack, "chaos", run_id, at_least=min(tasks, HA_KILL_WITH_IN_ECS))
                name, in_ecs = kill_busiest_scheduler(stack, "chaos", run_id)
                report.killed = f"{name}, SIGKILL, not restarted ({in_ecs} of its task instances in ECS)"
        else:
            stack.kill_scheduler()
            time.sleep(3)
            stack.start_scheduler()
            report.killed = "scheduler, SIGKILL, restarted 3 s later"
        report.run_state = stack.wait_run("chaos", run_id, timeout=timeout)
        time.sleep(3)  # the last containers stop
        check(stack, run_id, report)
        report.undrained = wait_drained(stack)
        report.faults = Counter(stack.emulator_counters().get("faults", {}))
        if report.killed:
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
        help="track tasks by ECS events, a queue per scheduler (default: on, unless ECS_DEVSTACK_TASK_EVENTS=0)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds the DAG run may take (default: 900; several schedulers: 30 per task instance, at least 900)",
    )
    parser.add_argument(
        "--schedulers", type=int, default=1, help="schedulers at once; 2 or more run Airflow on PostgreSQL (default 1)"
    )
    parser.add_argument(
        "--kill-scheduler",
        action="store_true",
        help="several schedulers: SIGKILL the busiest one mid-run, not restarted (one scheduler: always restarted)",
    )
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="ecs-chaos-"))
    print(
        f"==> chaos run: {args.tasks} task instances, {args.schedulers} scheduler(s), "
        f"task events {'default' if args.task_events is None else ('on' if args.task_events else 'off')}, "
        f"Airflow state in {home}",
        flush=True,
    )
    report = run(
        home,
        args.tasks,
        schedulers=args.schedulers,
        kill_scheduler=args.kill_scheduler,
        task_events=args.task_events,
        timeout=args.timeout,
    )
    print(report.table())
    for label, items in (
        ("lost", report.lost),
        ("ran twice", report.duplicated),
        ("queueing ran twice", report.queueing_ran_twice),
        ("wrong state", report.wrong_state),
        ("try without container", report.try_without_container),
        ("executor gave up (designed, with its reason)", report.gave_up),
    ):
        for item in items:
            print(f"  {label}: {item}")
    for name, left in report.undrained.items():
        if left:
            print(f"  events queue of {name} not drained: {left} messages left")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
