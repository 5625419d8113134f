"""Several Airflow schedulers at once on PostgreSQL: the devstack for high availability (HA).

``HaStack`` is a ``Stack`` whose metadata database is a throwaway PostgreSQL cluster
(``devstack.postgres``) and which runs ``schedulers`` schedulers, each with EcsExecutor, its own log
file (``logs/scheduler-<n>.log``) and its own host name (``scheduler-<n>.<fqdn>``, through
``[core] hostname_callable``), so its scheduler job in Airflow's database says which process it is.

Airflow counts a scheduler as dead when its job has not heartbeaten for
``[scheduler] scheduler_health_check_threshold`` seconds; every
``[scheduler] orphaned_tasks_check_interval`` seconds each live scheduler looks for task instances
that a dead one queued and hands them to its executor's ``try_adopt_task_instances``. The devstack
keeps Airflow's default threshold (30 s: a shorter one let a live scheduler, slowed by a loaded CI
machine, be counted as dead and lose its queued task instances to resets) and checks for orphans
every 5 s, so a killed scheduler's tasks are adopted within about 35 s.

With task events on (the default, as for ``Stack``: unless ``ECS_DEVSTACK_TASK_EVENTS=0``) each
scheduler reads an SQS queue of its own (``airflow-ecs-task-events-scheduler-<n>``), every queue a
target of the one EventBridge rule, as docs/setup.md tells a deployment to do: SQS hands a message
to one consumer, so schedulers sharing a queue would take each other's events. A rule has at most 5
targets, so an HA stack with events has at most 5 schedulers. Each scheduler also signs with an
emulator key of its own (principal ``scheduler-<n>`` in ``logs/emulator-requests.jsonl``), so the
request log says which scheduler made each call.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy

from devstack.postgres import Postgres
from devstack.stack import BIN, EVENTS_QUEUE, Stack
from ecs_emulator import credentials as emulator_credentials

SCHEDULER_ENV = "DEVSTACK_SCHEDULER"  # the name a scheduler process goes by, for its host name
HA_SETTINGS = {
    # A scheduler whose job has not heartbeaten for this long is dead: Airflow's default. The devstack's
    # schedulers heartbeat every second, but on a loaded 2-core machine one loop took over 10 s.
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "30",
    # How often each scheduler looks for a dead one's task instances to adopt.
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
}
EXECUTION_API_WARM_UP_TIMEOUT = 150.0  # seconds (times START_SLACK); see HaStack.warm_execution_api
START_SLACK = 2  # each start-up wait is twice Stack's (HaStack._wait_http)
# An EventBridge rule has at most 5 targets (EventBridge quotas, "Targets per rule":
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html); one queue per scheduler.
MAX_TARGETS_PER_RULE = 5


def scheduler_hostname() -> str:
    """``[core] hostname_callable`` of the devstack's schedulers: the machine's name, prefixed."""
    return f"{os.environ.get(SCHEDULER_ENV, 'scheduler')}.{socket.getfqdn()}"


class HaStack(Stack):
    """A ``Stack`` on PostgreSQL with ``schedulers`` schedulers, named scheduler-1, scheduler-2, ..."""

    def __init__(self, home: Path, *, schedulers: int = 2, **kwargs: Any) -> None:
        super().__init__(home, **kwargs)
        if schedulers < 1:
            raise ValueError("an HA stack needs at least one scheduler")
        if self.task_events and schedulers > MAX_TARGETS_PER_RULE:
            raise ValueError(
                f"{schedulers} schedulers with task events: each needs a queue of its own, and an EventBridge "
                f"rule has at most {MAX_TARGETS_PER_RULE} targets; run at most {MAX_TARGETS_PER_RULE} schedulers, "
                "or turn task events off (task_events=False, ECS_DEVSTACK_TASK_EVENTS=0)"
            )
        for key, value in HA_SETTINGS.items():
            self.extra_env.setdefault(key, value)
        self.scheduler_names = [f"scheduler-{n}" for n in range(1, schedulers + 1)]
        for name in self.scheduler_names:  # before start(): the emulator learns every key as it starts
            self.principal_credentials[name] = emulator_credentials.new_credentials()
        self.postgres = Postgres()
        self.execution_api_warm_up = 0.0  # seconds the Execution API took to answer its first request
        self._schedulers_deferred = False

    def env(self) -> dict[str, str]:
        env = super().env()
        if self.postgres.dir is not None:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.postgres.url
        return env

    def events_queues(self) -> dict[str, str]:
        """One events queue per scheduler, named after it."""
        if not self.task_events:
            return {}
        return {name: f"{EVENTS_QUEUE}-{name}" for name in self.scheduler_names}

    def _task_events_env(self) -> dict[str, str]:
        return {}  # no queue for every process: start_scheduler gives each scheduler its own

    @property
    def database_url(self) -> str:
        return self.env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]

    def start(self, *, fresh: bool = True) -> HaStack:
        """PostgreSQL, then the stack without its schedulers, the Execution API warmed, the schedulers.

        The schedulers start last: on a busy 2-core machine, two more Airflow processes starting
        beside the API server kept it from answering within ``Stack.start``'s wait.
        """
        if self.postgres.dir is None:
            self.postgres.start()
        self._schedulers_deferred = True
        try:
            super().start(fresh=fresh)
        finally:
            self._schedulers_deferred = False
        self.warm_execution_api()
        self.start_scheduler()
        return self

    def warm_execution_api(self, timeout: float = EXECUTION_API_WARM_UP_TIMEOUT) -> float:
        """Have the API server build its Execution API before the first task needs it; returns seconds.

        The API server builds the Execution API's routes (one set per API version, by Cadwyn) on the
        first request under ``/execution/``, inside its event loop: every request waits meanwhile.
        On this loaded 2-core machine that took 47 s, and the first task's ``PATCH
        /execution/task-instances/{id}/run`` gave up first (the Task SDK's client: 5 s timeout, 5
        tries, about 40 s in all) and the try failed before it started. A deployment's readiness probe
        on ``/execution/health`` does the same.
        """
        started = time.monotonic()
        self._wait_http(f"{self.api_url}/execution/health", "the Airflow Execution API", timeout=timeout)
        self.execution_api_warm_up = time.monotonic() - started
        return self.execution_api_warm_up

    def start_scheduler(self, name: str | None = None) -> None:
        """Start one scheduler by name, or (as ``Stack.start`` does) every one."""
        if self._schedulers_deferred:
            return  # start() starts them once the API server is up and warm
        for each in [name] if name else self.scheduler_names:
            env = self.scheduler_env(each)
            with (self.home / "logs").joinpath(f"{each}.log").open("ab") as log:
                self.procs[each] = subprocess.Popen(
                    [str(BIN / "airflow"), "scheduler"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.home,
                    start_new_session=True,
                )

    def scheduler_env(self, name: str) -> dict[str, str]:
        """One scheduler's environment: its own emulator key, host name and (with task events) queue."""
        env = self.process_env(name)  # signs with this scheduler's own emulator key
        env[SCHEDULER_ENV] = name
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = f"{__name__}.scheduler_hostname"
        if self.task_events:
            env["AIRFLOW__ECS_EXECUTOR__TASK_EVENTS_QUEUE_URL"] = self.events_queue_url(name)
        return env

    def _wait_http(self, url: str, what: str, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
        # PostgreSQL and the extra schedulers share the machine with the API server: on a busy one
        # every start-up takes longer, so each wait is START_SLACK times Stack's.
        super()._wait_http(url, what, timeout=timeout * START_SLACK, headers=headers)

    def kill_scheduler(self, name: str | None = None) -> None:
        """SIGKILL one scheduler (by default the first), as a crashed machine would end it."""
        proc = self.procs.pop(name or self.scheduler_names[0])
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def hostname_of(self, name: str) -> str:
        """The host name a scheduler's job has in Airflow's database."""
        return f"{name}.{socket.getfqdn()}"

    def stop(self) -> None:
        # The schedulers first (their executors may still call ECS as they end), then the rest as
        # Stack.stop does, then the database everything else was using.
        try:
            self.stop_processes(self.scheduler_names)
            super().stop()
        finally:
            # The server's log (lock waits, errors) outlives the cluster, beside the other logs.
            log = self.postgres.log_file
            if log is not None and log.exists() and (self.home / "logs").is_dir():
                shutil.copyfile(log, self.home / "logs" / "postgres.log")
            self.postgres.stop()


# -- Airflow's metadata database, read directly (SQLite or PostgreSQL) ------------------------------
@dataclass(frozen=True)
class TaskInstanceRow:
    """One task instance as Airflow's database has it, with the scheduler job that queued it."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    external_executor_id: str | None  # the ECS task ARN, once the executor reported it
    queued_by: str | None  # the host name of the scheduler job that queued it
    queued_by_state: str | None  # that job's state: running, or failed once counted as dead


def _query(stack: Stack, sql: str, **params: Any) -> list[Any]:
    # The REST API pages task instances 100 at a time; the database answers in one query.
    engine = sqlalchemy.create_engine(stack.env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        with engine.connect() as db:
            return list(db.execute(sqlalchemy.text(sql), params))
    finally:
        engine.dispose()


def task_instance_rows(stack: Stack, dag_id: str, run_id: str) -> list[TaskInstanceRow]:
    """Every task instance of one DAG run, with the scheduler job that queued it."""
    rows = _query(
        stack,
        "select ti.task_id, ti.map_index, ti.state, ti.try_number, ti.external_executor_id, j.hostname, j.state "
        "from task_instance ti left join job j on j.id = ti.queued_by_job_id "
        "where ti.dag_id = :dag_id and ti.run_id = :run_id",
        dag_id=dag_id,
        run_id=run_id,
    )
    return [TaskInstanceRow(r[0], int(r[1]), r[2], int(r[3] or 0), r[4], r[5], r[6]) for r in rows]


def scheduler_job_states(stack: Stack) -> dict[str, str]:
    """Each scheduler job's host name and state, the newest job of a host name winning."""
    rows = _query(stack, "select hostname, state from job where job_type = 'SchedulerJob' order by id")
    return {str(hostname): str(state) for hostname, state in rows}


def wait_for_work_in_ecs(stack: Stack, dag_id: str, run_id: str, *, at_least: int, timeout: float = 300.0) -> None:
    """Until ``at_least`` task instances of the run are queued or running with an ECS task ARN recorded."""
    deadline = time.monotonic() + timeout
    while True:
        rows = task_instance_rows(stack, dag_id, run_id)
        in_ecs = [r for r in rows if r.external_executor_id and r.state in ("queued", "running")]
        if len(in_ecs) >= at_least:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(in_ecs)} task instances of {dag_id} {run_id} in ECS after {timeout:.0f} s")
        time.sleep(0.5)


def kill_busiest_scheduler(stack: HaStack, dag_id: str, run_id: str) -> tuple[str, int]:
    """SIGKILL the live scheduler that queued most of the run's task instances now in ECS.

    In ECS means queued or running with an ECS task ARN recorded: what a surviving scheduler adopts.
    Returns the scheduler's name and that count.
    """
    rows = task_instance_rows(stack, dag_id, run_id)
    live = [name for name in stack.scheduler_names if name in stack.procs]

    def in_ecs(name: str) -> int:
        host = stack.hostname_of(name)
        return sum(
            1 for r in rows if r.queued_by == host and r.external_executor_id and r.state in ("queued", "running")
        )

    victim = max(live, key=in_ecs)
    count = in_ecs(victim)
    stack.kill_scheduler(victim)
    return victim, count
