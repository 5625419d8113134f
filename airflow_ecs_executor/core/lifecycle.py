"""One record per queueing, one phase enum, one table of legal transitions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final


class Phase(StrEnum):
    """Where a workload stands, from the executor's point of view."""

    PENDING = "pending"  # accepted, waiting for a launch slot (or for a relaunch backoff to pass)
    LAUNCHING = "launching"  # a RunTask for the current attempt is under way
    PROVISIONING = "provisioning"  # ECS returned a task ARN; the container has not started yet
    RUNNING = "running"  # the container runs
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RELEASED = "released"  # ended without a report: revoked, superseded, or handed back at shutdown


TERMINAL: Final = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.RELEASED})

ALLOWED: Final[Mapping[Phase, frozenset[Phase]]] = {
    Phase.PENDING: frozenset({Phase.LAUNCHING, Phase.FAILED, Phase.RELEASED}),
    # A launch ends with an ARN, a wait before the next attempt, or a failure. The same-token retry
    # of an unknown outcome stays in LAUNCHING.
    Phase.LAUNCHING: frozenset({Phase.PROVISIONING, Phase.PENDING, Phase.FAILED, Phase.RELEASED}),
    # A task that stops before its container started is launched again (PENDING).
    Phase.PROVISIONING: frozenset({Phase.RUNNING, Phase.PENDING, Phase.SUCCEEDED, Phase.FAILED, Phase.RELEASED}),
    # Once the container ran, the only way out is a final state: it is never launched again. One
    # exception, decided in core.decide: the container's first step could not open its sealed
    # workload (exit 77, Airflow's task never began), which is a start failure (back to PENDING).
    Phase.RUNNING: frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.RELEASED, Phase.PENDING}),
    Phase.SUCCEEDED: frozenset(),
    Phase.FAILED: frozenset(),
    Phase.RELEASED: frozenset(),
}


class IllegalTransition(Exception):
    """A move the lifecycle does not allow: a bug in the caller, never an AWS condition."""

    def __init__(self, workload_id: str, current: Phase, target: Phase) -> None:
        super().__init__(f"workload {workload_id}: {current} -> {target} is not a legal transition")
        self.workload_id = workload_id
        self.current = current
        self.target = target


@dataclass(frozen=True)
class SpotPlan:
    """What a queueing does about Fargate Spot ([ecs_executor] options, overridable per task).

    ``fallback_after``: seconds of Spot capacity shortfall after which the queueing is launched on
    on-demand capacity instead. ``on_demand_after_interruption``: a try interrupted on Spot makes the
    task instance's next try run on on-demand capacity.
    """

    fallback_after: float = 60.0
    on_demand_after_interruption: bool = True


@dataclass(frozen=True)
class Record:
    """The executor's record of one queueing (one hand-over of a workload by Airflow's scheduler).

    ``attempt`` counts launch attempts (ours, not Airflow's try_number): it grows when ECS could not
    place the task, refused the clientToken, or the task stopped before its container started.
    ``container`` is None for an adopted task until its first observation names it.
    """

    queueing: str
    workload_id: str  # dag/task/run/map_index/try, or callback/<key>: for people, never for identity
    cluster: str
    container: str | None
    accepted_at: float
    phase: Phase = Phase.PENDING
    attempt: int = 0
    task_arn: str | None = None
    changed_at: float = 0.0
    version: int = -1  # the highest ECS task version applied
    started: bool = False  # the container was seen to start: never launched again
    missing_since: float | None = None
    resends: int = 0  # same-request resends of the current attempt (throttling, 5xx, lost responses)
    reason: str | None = None  # the last problem, in words for the Airflow UI
    relaunchable: bool = True  # False for an adopted task whose workload could not be recovered
    superseded: bool = False  # Airflow queued the same task instance again: never reported
    stop_requested: bool = False  # the executor asked ECS to stop this task
    adopted: bool = False
    # Fargate Spot: the launch strategy includes FARGATE_SPOT (``spot``), what to do about it (``plan``),
    # whether launches now go on on-demand capacity, since when Spot had no capacity, how many launch
    # attempts Spot shortfalls took (not counted against max_launch_attempts), and the capacity
    # provider the current ECS task runs on.
    spot: bool = False
    plan: SpotPlan = SpotPlan()
    on_demand: bool = False
    spot_short_since: float | None = None
    spot_retries: int = 0
    capacity: str | None = None

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL


def advance(rec: Record, to: Phase, *, at: float, **changes: object) -> Record:
    """The record moved to ``to``; raises IllegalTransition for a move the table forbids."""
    if to not in ALLOWED[rec.phase]:
        raise IllegalTransition(rec.workload_id, rec.phase, to)
    return replace(rec, phase=to, changed_at=at, **changes)  # type: ignore[arg-type]
