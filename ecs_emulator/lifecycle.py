"""The task lifecycle: each ECS task's walk through its statuses, driven by the shared timeline.

A task with an ENI (awsvpc: every Fargate task, and EC2 tasks in awsvpc mode) walks PROVISIONING ->
PENDING -> ACTIVATING -> RUNNING -> DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED; a task
without one (EC2 bridge or host mode) has no ENI to attach or release and skips PROVISIONING and
DEPROVISIONING (Developer Guide, "Amazon ECS task lifecycle"). The profile gives the time spent in
each status; the runner starts the containers, and their exits drive the stop.

Every step runs under the service's lock, except the starting of containers (process creation is
slow), which takes the lock only to record what it started.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ecs_emulator import awslogs as awslogs_driver
from ecs_emulator.faults import FaultPlan
from ecs_emulator.logs import LogsService
from ecs_emulator.model import TERMINAL, Container, Task
from ecs_emulator.profile import Profile
from ecs_emulator.runners import OOM_REASON, ContainerSpec, Runner, StartError
from ecs_emulator.timeline import Timeline

_log = logging.getLogger(__name__)

ESSENTIAL_EXITED = "Essential container in task exited"
SPOT_REASON = "Your Spot Task was interrupted."


class TaskLifecycle:
    """Moves tasks through their statuses; ``on_stopped`` hears of each task that reached STOPPED."""

    def __init__(
        self,
        *,
        lock: threading.RLock,
        profile: Profile,
        timeline: Timeline,
        runner: Runner,
        faults: FaultPlan,
        logs: LogsService,
        counters: Counter[str],
        on_running: Callable[[Task], None],
        on_stopped: Callable[[Task], None],
    ) -> None:
        self._lock = lock
        self.profile = profile
        self._timeline = timeline
        self._runner = runner
        self._faults = faults
        self._logs = logs
        self._counters = counters
        self._on_running = on_running
        self._on_stopped = on_stopped
        self.on_change: Callable[[Task], None] | None = None  # each state change (ECS events, events.py)

    def start(self, task: Task) -> None:
        """Begin a new task's walk (its status is PROVISIONING, or PENDING without an ENI)."""
        if task.eni is None:
            task.pull_started_at = task.created_at
            self._after(self.profile.lifecycle.pending.sample(task.rng), task, self._pulled)
        else:
            self._after(self.profile.lifecycle.provisioning.sample(task.rng), task, self._to_pending)

    def _after(self, delay: float, task: Task, step: Callable[[Task], None]) -> None:
        def run() -> None:
            with self._lock:
                step(task)

        self._timeline.call_later(delay, run)

    def _set_status(self, task: Task, status: str) -> None:
        task.last_status = status
        task.version += 1
        self.changed(task)

    def changed(self, task: Task) -> None:
        """The task's version grew: ECS publishes a Task State Change event."""
        if self.on_change is not None:
            self.on_change(task)

    def _to_pending(self, task: Task) -> None:
        if task.last_status != "PROVISIONING" or task.desired_status != "RUNNING":
            return
        self._set_status(task, "PENDING")
        task.pull_started_at = time.time()
        self._after(self.profile.lifecycle.pending.sample(task.rng), task, self._pulled)

    def _pulled(self, task: Task) -> None:
        if task.last_status != "PENDING" or task.desired_status != "RUNNING":
            return
        reason = task.start_failure or self._prepare_logs(task)
        if reason:
            for c in task.containers:
                c.reason = reason
            self._counters["tasks_failed_to_start"] += 1
            self.begin_stop(task, "TaskFailedToStart", reason)
            return
        task.pull_stopped_at = time.time()
        self._set_status(task, "ACTIVATING")
        self._after(self.profile.lifecycle.activating.sample(task.rng), task, self._activate)

    def _prepare_logs(self, task: Task) -> str | None:
        for c in task.containers:
            if c.awslogs is None:
                continue
            reason = awslogs_driver.start(self._logs, c.awslogs, fargate=task.launch_type == "FARGATE")
            if reason:
                return reason
        return None

    def _activate(self, task: Task) -> None:
        if task.last_status != "ACTIVATING" or task.desired_status != "RUNNING":
            return
        task.starting = True
        threading.Thread(target=self._start_containers, args=(task,), name="ecs-emulator-start", daemon=True).start()

    def _start_containers(self, task: Task) -> None:
        """Start every container outside the lock (process creation is slow), then record them."""
        started: list[tuple[Container, Any]] = []
        failure: str | None = None
        for c in task.containers:
            spec = ContainerSpec(
                task_id=task.task_id,
                name=c.name,
                image=c.image,
                argv=c.argv,
                environment=c.environment,
                working_directory=c.working_directory,
                memory_limit_mib=c.memory_limit_mib if self.profile.enforce_memory else None,
                labels={"com.amazonaws.ecs.task-arn": task.arn},
                rng=task.rng,
            )
            try:
                handle = self._runner.start(spec, self._output_sink(c), self._exit_sink(task, c))
            except StartError as exc:
                failure = str(exc)
                c.reason = failure
                break
            started.append((c, handle))
        with self._lock:
            task.starting = False
            for c, handle in started:
                c.handle = handle
                if c.last_status != TERMINAL:
                    c.last_status = "RUNNING"
            if failure:
                for _, handle in started:
                    handle.signal(signal.SIGKILL)
                self._counters["tasks_failed_to_start"] += 1
                if task.desired_status == TERMINAL:  # StopTask came first; it keeps its stop code
                    self._continue_stop(task)
                else:
                    self.begin_stop(task, "TaskFailedToStart", failure)
                return
            task.started_at = time.time()
            if task.eni:
                task.eni["status"] = "ATTACHED"
            self._set_status(task, "RUNNING")
            self._on_running(task)
            if task.desired_status == TERMINAL:  # StopTask arrived while the containers were starting
                self._continue_stop(task)
                return
            task.spot_after = self._faults.spot_interruption_after(task.is_spot)
            if task.spot_after is not None:
                self._after(task.spot_after, task, self.interrupt_spot)
            self._check_essential(task)

    def _output_sink(self, c: Container) -> Callable[[int, str], None]:
        target = c.awslogs

        def sink(ts: int, line: str) -> None:
            c.tail.append(line)
            if target is not None:
                self._logs.append(target.group, target.stream, awslogs_driver.events(ts, line))

        return sink

    def _exit_sink(self, task: Task, c: Container) -> Callable[[int, str | None], None]:
        def on_exit(code: int, reason: str | None) -> None:
            with self._lock:
                c.last_status = TERMINAL
                c.exit_code = code
                c.reason = c.forced_reason or reason
                if c.forced_reason == OOM_REASON:
                    c.exit_code = 137
                # A container's state change is a task state change too: ECS increments the task's
                # version and publishes an event carrying the exit code (ecs_cwe_events.html).
                task.version += 1
                self.changed(task)
                if task.starting:
                    return  # _start_containers looks at the exit once it has recorded every container
                self._check_essential(task)
                self._maybe_execution_stopped(task)

        return on_exit

    def _check_essential(self, task: Task) -> None:
        if task.desired_status == "RUNNING" and any(c.essential and c.last_status == TERMINAL for c in task.containers):
            self.begin_stop(task, "EssentialContainerExited", ESSENTIAL_EXITED)

    def interrupt_spot(self, task: Task) -> None:
        if task.last_status == "RUNNING" and task.desired_status == "RUNNING":
            self._counters["spot_interruptions"] += 1
            self.begin_stop(task, "SpotInterruption", SPOT_REASON)

    def begin_stop(self, task: Task, code: str, reason: str) -> None:
        if task.desired_status == TERMINAL:
            return
        task.desired_status = TERMINAL
        task.stop_code = code
        task.stopped_reason = reason
        task.stopping_at = time.time()
        task.version += 1
        self.changed(task)
        if not task.starting:  # else _start_containers sees the stop request and continues it
            self._continue_stop(task)

    def _continue_stop(self, task: Task) -> None:
        if task.last_status == "RUNNING":
            self._set_status(task, "DEACTIVATING")
            self._after(self.profile.lifecycle.deactivating.sample(task.rng), task, self._deactivated)
        else:  # nothing runs yet: no container to signal
            for c in task.containers:
                c.last_status = TERMINAL
            self._set_status(task, "STOPPING")
            self._maybe_execution_stopped(task)

    def _deactivated(self, task: Task) -> None:
        if task.last_status != "DEACTIVATING":
            return
        self._set_status(task, "STOPPING")
        for c in task.containers:
            if c.live and c.handle is not None:
                c.handle.signal(signal.SIGTERM)
                self._timeline.call_later(c.stop_timeout, self._killer(c))
        self._maybe_execution_stopped(task)

    def _killer(self, c: Container) -> Callable[[], None]:
        def kill() -> None:  # SIGKILL once stopTimeout has passed, if SIGTERM was not enough
            with self._lock:
                if c.live and c.handle is not None:
                    c.handle.signal(signal.SIGKILL)

        return kill

    def _maybe_execution_stopped(self, task: Task) -> None:
        if task.last_status != "STOPPING" or task.execution_stopped_at is not None:
            return
        if any(c.live for c in task.containers):
            return
        task.execution_stopped_at = time.time()
        # Without an ENI there is nothing to deprovision: STOPPING leads straight to STOPPED.
        after_stopping = self._deprovision if task.eni else self._stopped
        self._after(self.profile.lifecycle.stopping.sample(task.rng), task, after_stopping)

    def _deprovision(self, task: Task) -> None:
        self._set_status(task, "DEPROVISIONING")
        if task.eni:
            task.eni["status"] = "DELETED"
        self._after(self.profile.lifecycle.deprovisioning.sample(task.rng), task, self._stopped)

    def _stopped(self, task: Task) -> None:
        task.stopped_at = time.time()
        self._set_status(task, TERMINAL)
        self._counters[f"stopped.{task.stop_code}"] += 1
        self._on_stopped(task)
