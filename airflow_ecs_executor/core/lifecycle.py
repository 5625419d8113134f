"""One record per workload, one phase enum, one table of legal transitions."""

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


TERMINAL: Final = frozenset({Phase.SUCCEEDED, Phase.FAILED})

ALLOWED: Final[Mapping[Phase, frozenset[Phase]]] = {
    Phase.PENDING: frozenset({Phase.LAUNCHING, Phase.FAILED}),
    # A launch ends with an ARN, a wait before the next attempt, or a failure. The same-token retry
    # of an unknown outcome stays in LAUNCHING.
    Phase.LAUNCHING: frozenset({Phase.PROVISIONING, Phase.RUNNING, Phase.PENDING, Phase.FAILED, Phase.SUCCEEDED}),
    # A task that stops before its container started is launched again (PENDING).
    Phase.PROVISIONING: frozenset({Phase.RUNNING, Phase.PENDING, Phase.SUCCEEDED, Phase.FAILED}),
    Phase.RUNNING: frozenset({Phase.SUCCEEDED, Phase.FAILED}),
    Phase.SUCCEEDED: frozenset(),
    Phase.FAILED: frozenset(),
}


class IllegalTransition(Exception):
    """A move the lifecycle does not allow: a bug in the caller, never an AWS condition."""

    def __init__(self, workload_id: str, current: Phase, target: Phase) -> None:
        super().__init__(f"workload {workload_id}: {current} -> {target} is not a legal transition")
        self.workload_id = workload_id
        self.current = current
        self.target = target


@dataclass(frozen=True)
class Workload:
    """The executor's record of one Airflow workload.

    ``attempt`` counts launch attempts (ours, not Airflow's try_number): it grows when ECS could not
    place the task or the task stopped before its container started.
    """

    id: str
    phase: Phase = Phase.PENDING
    attempt: int = 0
    task_arn: str | None = None
    changed_at: float = 0.0
    not_before: float = 0.0  # do not launch before this time (backoff after a failed attempt)
    reason: str | None = None  # the last failure reason, in words for the Airflow UI

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL


def advance(rec: Workload, to: Phase, *, at: float, **changes: object) -> Workload:
    """The record moved to ``to``; raises IllegalTransition for a move the table forbids."""
    if to not in ALLOWED[rec.phase]:
        raise IllegalTransition(rec.id, rec.phase, to)
    return replace(rec, phase=to, changed_at=at, **changes)  # type: ignore[arg-type]
