"""The failure classification table of DESIGN.md as pure functions.

``judge`` maps one observation of an ECS task to what the executor does next; ``launch_error_kind``
maps an AWS error from RunTask to how the launch proceeds. Reasons are plain words for the
Airflow UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


@dataclass(frozen=True)
class ContainerObservation:
    """One container as DescribeTasks reported it."""

    name: str
    last_status: str
    exit_code: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class TaskObservation:
    """One ECS task as DescribeTasks (or an ECS event) reported it, in the core's own terms."""

    arn: str
    last_status: str
    desired_status: str
    version: int = 0
    started: bool = False  # startedAt was set: the containers did start
    stop_code: str | None = None
    stopped_reason: str | None = None
    containers: tuple[ContainerObservation, ...] = ()
    # (container, command) of the RunTask overrides: the command holds the workload's JWT, so never in a repr
    commands: tuple[tuple[str, tuple[str, ...]], ...] = field(default=(), repr=False)
    launch_attempt: int | None = None  # our launch attempt, when the task's startedBy names it
    capacity_provider: str | None = None  # capacityProviderName: FARGATE, FARGATE_SPOT, an EC2 provider

    def container(self, name: str) -> ContainerObservation | None:
        return next((c for c in self.containers if c.name == name), None)


class Verdict(StrEnum):
    """What a task observation means for its workload."""

    WAITING = "waiting"  # not started yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the container ran (or a user stopped it): Airflow's try is spent
    RELAUNCH = "relaunch"  # stopped before the container started: launch again, same Airflow try


@dataclass(frozen=True)
class Outcome:
    """A verdict and, for failures and relaunches, the reason in words and a short kind for metrics."""

    verdict: Verdict
    reason: str | None = None
    kind: str | None = None


OOM_EXIT_CODE: Final = 137
# The sealed-workload step (aws/unseal.py) exits with this code when it cannot open the workload:
# Airflow's task never began, so it is a start failure, never a spent try. Airflow's own task runner
# exits 0 or 1 (and 128+N on a signal), never 77 (EX_NOPERM).
UNSEAL_EXIT_CODE: Final = 77
NOT_OPENED_KIND: Final = "workload_not_opened"
_STOPPING: Final = frozenset({"DEACTIVATING", "STOPPING", "DEPROVISIONING"})

# Why ECS stopped a task whose container ran, for every stopCode of the ECS API model (TaskStopCode)
# that is not about the container's own exit. TaskFailedToStart and EssentialContainerExited are
# decided from the containers; UserInitiated is below.
_STOPPED_BY_AWS: Final = {
    "SpotInterruption": ("Spot interruption: Fargate Spot reclaimed the capacity", "spot"),
    "TerminationNotice": ("the task's host received a termination notice (Spot or retirement)", "termination_notice"),
    "InfrastructureHealth": ("AWS stopped the task because of an infrastructure health problem", "infrastructure"),
    "ServiceSchedulerInitiated": ("an ECS service scheduler stopped the task", "service_scheduler"),
}


def _describe_exit(container: ContainerObservation, stopped: str | None) -> Outcome:
    code = container.exit_code
    detail = f" ({container.reason})" if container.reason else ""
    why = f"; ECS: {stopped}" if stopped else ""
    name = container.name
    if code == OOM_EXIT_CODE and container.reason and "OutOfMemory" in container.reason:
        return Outcome(
            Verdict.FAILED, f"container '{name}' ran out of memory and was killed (exit code 137){detail}{why}", "oom"
        )
    if code == OOM_EXIT_CODE:
        return Outcome(
            Verdict.FAILED,
            f"container '{name}' was killed (exit code 137: SIGKILL, often out of memory){detail}{why}",
            "oom",
        )
    return Outcome(Verdict.FAILED, f"container '{name}' exited with code {code}{detail}{why}", "exit_code")


def _main_container(task: TaskObservation, name: str | None) -> ContainerObservation | None:
    if name is not None:
        return task.container(name)
    return task.containers[0] if len(task.containers) == 1 else None


def judge(task: TaskObservation, container_name: str | None, *, started: bool = False) -> Outcome:
    """What the executor does about this observation of the workload's ECS task.

    ``started`` says the container was seen to start in an earlier observation: such a task is never
    launched again, whatever this observation says. Until STOPPED, a task that has not started is
    WAITING in every status, STOPPING and DEPROVISIONING included (a task that fails to start passes
    through them); only STOPPED is final.
    """
    started = started or task.started or task.last_status == "RUNNING"
    main = _main_container(task, container_name)
    # The workload's container has exited: its end is known before ECS reaches STOPPED (tens of seconds
    # on Fargate), and reporting it early narrows the window in which Airflow has moved on.
    exited = started and main is not None and main.exit_code is not None and task.last_status in _STOPPING
    if task.last_status != "STOPPED" and not exited:
        return Outcome(Verdict.RUNNING if started else Verdict.WAITING)
    label = container_name or "(the task's only container)"
    stopped = task.stopped_reason
    said = stopped or "no reason given"
    if main is not None and main.exit_code == 0:
        return Outcome(Verdict.SUCCEEDED)
    if task.stop_code == "UserInitiated":
        return Outcome(Verdict.FAILED, f"the ECS task was stopped by a user or the executor: {said}", "stopped")
    if main is not None and main.exit_code == UNSEAL_EXIT_CODE and task.stop_code != "UserInitiated":
        return Outcome(
            Verdict.RELAUNCH,
            f"the ECS task failed to start: container '{main.name}' could not open the sealed workload "
            f"(exit code {UNSEAL_EXIT_CODE}; the container log says why, e.g. kms:Decrypt denied to the task role)",
            NOT_OPENED_KIND,
        )
    never_ran = not started and (task.stop_code == "TaskFailedToStart" or main is None or main.exit_code is None)
    if never_ran:
        detail = main.reason if main is not None and main.reason and main.reason not in said else None
        return Outcome(
            Verdict.RELAUNCH,
            f"the ECS task failed to start: {said}" + (f" ({detail})" if detail else ""),
            "failed_to_start",
        )
    by_aws = _STOPPED_BY_AWS.get(task.stop_code or "")
    if by_aws is not None:
        text, kind = by_aws
        code = f" (exit code {main.exit_code})" if main is not None and main.exit_code is not None else ""
        return Outcome(Verdict.FAILED, f"{text}{code}: {said}", kind)
    if main is None:
        return Outcome(
            Verdict.FAILED, f"the ECS task has no container named '{label}'; it stopped: {said}", "no_container"
        )
    if main.exit_code is None:
        return Outcome(Verdict.FAILED, f"container '{label}' stopped without an exit code: {said}", "no_exit_code")
    return _describe_exit(main, stopped)


class LaunchErrorKind(StrEnum):
    """How a RunTask that raised an AWS error proceeds."""

    THROTTLED = "throttled"  # AWS refused for rate: the launcher pauses everyone; retry soon, same clientToken
    TRANSIENT = "transient"  # outcome unknown or AWS busy: retry the same request, same clientToken
    CREDENTIALS = "credentials"  # credentials missing or expired: pause launching until they return
    CONFLICT = "conflict"  # the clientToken was used for another request: never our task; new attempt
    REJECTED = "rejected"  # the request itself is wrong: fail the workload with AWS's message


THROTTLE_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    }
)
TRANSIENT_CODES: Final = frozenset(
    {
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
CREDENTIAL_CODES: Final = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "MissingAuthenticationTokenException",
    }
)


def launch_error_kind(code: str, http_status: int | None = None) -> LaunchErrorKind:
    """Classify an AWS error code from RunTask by code first, HTTP status second."""
    if code in CREDENTIAL_CODES:
        return LaunchErrorKind.CREDENTIALS
    if code == "ConflictException":
        return LaunchErrorKind.CONFLICT
    if code in THROTTLE_CODES or http_status == 429:
        return LaunchErrorKind.THROTTLED
    if code in TRANSIENT_CODES or (http_status is not None and http_status >= 500):
        return LaunchErrorKind.TRANSIENT
    return LaunchErrorKind.REJECTED


# ---------------------------------------------------------------------------------------------- Fargate Spot
SPOT_PROVIDER: Final = "FARGATE_SPOT"
ON_DEMAND_PROVIDER: Final = "FARGATE"
# What RunTask's failures[] (or a task's stoppedReason) says when Fargate has no capacity for the task:
# "Capacity is unavailable at this time. Please try again later or in a different availability zone"
# (AWS knowledge center, "ecs-fargate-runtask-capacity"). Fargate Spot shortfalls read the same.
_CAPACITY_SHORTFALL: Final = ("Capacity is unavailable", "SpotCapacityUnavailable", "no Spot capacity")
# Stop codes that mean Spot took the capacity back (TerminationNotice: the host is being reclaimed).
SPOT_STOP_KINDS: Final = frozenset({"spot", "termination_notice"})


def is_capacity_shortfall(reason: str | None) -> bool:
    """Fargate (or Fargate Spot) had no capacity for the task: waiting or another capacity helps."""
    return bool(reason) and any(mark.lower() in str(reason).lower() for mark in _CAPACITY_SHORTFALL)


def is_spot_interruption(kind: str | None, capacity: str | None) -> bool:
    """The task failed because Spot reclaimed its capacity (judged ``kind``, the provider it ran on)."""
    if kind not in SPOT_STOP_KINDS:
        return False
    # SpotInterruption happens only on Spot; a termination notice counts when the task ran on Spot.
    return capacity == SPOT_PROVIDER or (capacity is None and kind == "spot")
