"""The failure classification table of DESIGN.md as pure functions.

``judge`` maps one observation of an ECS task to what the executor does next; ``launch_error_kind``
maps an AWS error from RunTask to how the launch proceeds. Reasons are plain words for the
Airflow UI.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    tags: tuple[tuple[str, str], ...] = ()  # when DescribeTasks was asked for them
    commands: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (container, command) of the RunTask overrides

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
_STARTING = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})


def _describe_exit(container: ContainerObservation) -> Outcome:
    code = container.exit_code
    detail = f" ({container.reason})" if container.reason else ""
    name = container.name
    if code == OOM_EXIT_CODE and container.reason and "OutOfMemory" in container.reason:
        return Outcome(
            Verdict.FAILED, f"container '{name}' ran out of memory and was killed (exit code 137){detail}", "oom"
        )
    if code == OOM_EXIT_CODE:
        return Outcome(
            Verdict.FAILED,
            f"container '{name}' was killed (exit code 137: SIGKILL, often out of memory){detail}",
            "oom",
        )
    return Outcome(Verdict.FAILED, f"container '{name}' exited with code {code}{detail}", "exit_code")


def judge(task: TaskObservation, container_name: str) -> Outcome:
    """What the executor does about this observation of the workload's ECS task."""
    if task.last_status != "STOPPED":
        if task.last_status in _STARTING and not task.started:
            return Outcome(Verdict.WAITING)
        return Outcome(Verdict.RUNNING)
    main = task.container(container_name)
    stopped = task.stopped_reason or "no reason given"
    if main is not None and main.exit_code == 0:
        return Outcome(Verdict.SUCCEEDED)
    if task.stop_code == "UserInitiated":
        return Outcome(Verdict.FAILED, f"the ECS task was stopped by a user or the executor: {stopped}", "stopped")
    never_ran = task.stop_code == "TaskFailedToStart" or (not task.started and (main is None or main.exit_code is None))
    if never_ran:
        detail = main.reason if main is not None and main.reason and main.reason not in stopped else None
        return Outcome(
            Verdict.RELAUNCH,
            f"the ECS task failed to start: {stopped}" + (f" ({detail})" if detail else ""),
            "failed_to_start",
        )
    if task.stop_code == "SpotInterruption":
        code = f" (exit code {main.exit_code})" if main is not None and main.exit_code is not None else ""
        return Outcome(Verdict.FAILED, f"Spot interruption: Fargate Spot reclaimed the capacity{code}", "spot")
    if main is None:
        return Outcome(
            Verdict.FAILED,
            f"the ECS task has no container named '{container_name}'; it stopped: {stopped}",
            "no_container",
        )
    if main.exit_code is None:
        return Outcome(
            Verdict.FAILED, f"container '{container_name}' stopped without an exit code: {stopped}", "no_exit_code"
        )
    return _describe_exit(main)


class LaunchErrorKind(StrEnum):
    """How a RunTask that raised an AWS error proceeds."""

    THROTTLED = "throttled"  # AWS refused for rate: the launcher pauses everyone; retry soon, same clientToken
    TRANSIENT = "transient"  # outcome unknown or AWS busy: retry the same request, same clientToken
    CREDENTIALS = "credentials"  # credentials missing or expired: pause launching until they return
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
    if code in THROTTLE_CODES or http_status == 429:
        return LaunchErrorKind.THROTTLED
    if code in TRANSIENT_CODES or (http_status is not None and http_status >= 500):
        return LaunchErrorKind.TRANSIENT
    return LaunchErrorKind.REJECTED
