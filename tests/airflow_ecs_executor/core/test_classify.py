from __future__ import annotations

import pytest

from airflow_ecs_executor.core.classify import (
    ContainerObservation,
    LaunchErrorKind,
    TaskObservation,
    Verdict,
    judge,
    launch_error_kind,
)

ARN = "arn:aws:ecs:us-east-1:123456789012:task/c/abc"


def task(
    last: str = "STOPPED",
    *,
    exit_code: int | None = None,
    started: bool = True,
    stop_code: str | None = "EssentialContainerExited",
    reason: str | None = None,
    container_reason: str | None = None,
    name: str = "base",
) -> TaskObservation:
    return TaskObservation(
        arn=ARN,
        last_status=last,
        desired_status="STOPPED" if last == "STOPPED" else "RUNNING",
        started=started,
        stop_code=stop_code if last == "STOPPED" else None,
        stopped_reason=reason,
        containers=(ContainerObservation(name, "STOPPED" if last == "STOPPED" else last, exit_code, container_reason),),
    )


@pytest.mark.parametrize(
    ("observation", "verdict", "words"),
    [
        pytest.param(task("PROVISIONING", started=False), Verdict.WAITING, None, id="provisioning"),
        pytest.param(task("PENDING", started=False), Verdict.WAITING, None, id="pending"),
        pytest.param(task("RUNNING"), Verdict.RUNNING, None, id="running"),
        pytest.param(task("DEACTIVATING"), Verdict.RUNNING, None, id="deactivating-waits-for-exit-code"),
        pytest.param(task(exit_code=0), Verdict.SUCCEEDED, None, id="exit-0"),
        pytest.param(task(exit_code=1), Verdict.FAILED, "exited with code 1", id="exit-1"),
        pytest.param(
            task(exit_code=137, container_reason="OutOfMemoryError: Container killed due to memory usage"),
            Verdict.FAILED,
            "ran out of memory",
            id="oom-137",
        ),
        pytest.param(task(exit_code=137), Verdict.FAILED, "SIGKILL, often out of memory", id="137-without-reason"),
        pytest.param(
            task(exit_code=143, stop_code="SpotInterruption", reason="Your Spot Task was interrupted."),
            Verdict.FAILED,
            "Spot interruption",
            id="spot",
        ),
        pytest.param(
            task(exit_code=143, stop_code="UserInitiated", reason="marked failed in the UI"),
            Verdict.FAILED,
            "stopped by a user",
            id="user-stopped",
        ),
        pytest.param(
            task(started=False, stop_code="TaskFailedToStart", reason="CannotPullContainerError: not found"),
            Verdict.RELAUNCH,
            "failed to start: CannotPullContainerError",
            id="cannot-pull",
        ),
        pytest.param(
            task(started=False, stop_code="TaskFailedToStart", reason="ResourceInitializationError: secrets"),
            Verdict.RELAUNCH,
            "ResourceInitializationError",
            id="resource-init",
        ),
        pytest.param(
            task(
                started=False, stop_code=None, reason="Timeout waiting for network interface provisioning to complete."
            ),
            Verdict.RELAUNCH,
            "network interface",
            id="eni-timeout",
        ),
        pytest.param(
            task(started=False, stop_code="UserInitiated", reason="stopped"),
            Verdict.FAILED,
            "stopped by a user",
            id="user-stopped-before-start-is-not-relaunched",
        ),
        pytest.param(
            task(exit_code=None, stop_code="EssentialContainerExited"),
            Verdict.FAILED,
            "without an exit code",
            id="no-exit-code",
        ),
        pytest.param(
            task(exit_code=0, name="other"), Verdict.FAILED, "no container named 'base'", id="wrong-container"
        ),
    ],
)
def test_judge(observation: TaskObservation, verdict: Verdict, words: str | None) -> None:
    outcome = judge(observation, "base")
    assert outcome.verdict is verdict
    if words is None:
        assert outcome.reason is None
    else:
        assert outcome.reason is not None
        assert words in outcome.reason
    # Every failure and relaunch names a kind for the failures.<kind> metric; nothing else does.
    assert (outcome.kind is not None) == (verdict in (Verdict.FAILED, Verdict.RELAUNCH))


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        pytest.param("ThrottlingException", 400, LaunchErrorKind.THROTTLED, id="throttled"),
        pytest.param("TooManyRequestsException", 429, LaunchErrorKind.THROTTLED, id="too-many"),
        pytest.param("ServerException", 500, LaunchErrorKind.TRANSIENT, id="server"),
        pytest.param("SomethingNew", 503, LaunchErrorKind.TRANSIENT, id="any-5xx"),
        pytest.param("ExpiredTokenException", 400, LaunchErrorKind.CREDENTIALS, id="expired"),
        pytest.param("UnrecognizedClientException", 400, LaunchErrorKind.CREDENTIALS, id="bad-key"),
        pytest.param("InvalidParameterException", 400, LaunchErrorKind.REJECTED, id="invalid"),
        pytest.param("ClientException", 400, LaunchErrorKind.REJECTED, id="client"),
        pytest.param("ClusterNotFoundException", 400, LaunchErrorKind.REJECTED, id="no-cluster"),
        pytest.param("AccessDeniedException", 400, LaunchErrorKind.REJECTED, id="access-denied"),
    ],
)
def test_launch_error_kind(code: str, status: int, kind: LaunchErrorKind) -> None:
    assert launch_error_kind(code, status) is kind
