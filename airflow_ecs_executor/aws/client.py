"""The ECS port: three calls the runtime makes, with botocore's dicts and errors translated.

Results come back in the core's types (``TaskObservation``) and errors as ``AwsCallError`` with a
``LaunchErrorKind`` decided by AWS error code, so nothing past this module sees a botocore object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ResponseStreamingError,
)

from airflow_ecs_executor.aws.requests import launch_attempt_of
from airflow_ecs_executor.core.classify import ContainerObservation, LaunchErrorKind, TaskObservation, launch_error_kind

# DescribeTasks accepts at most 100 task IDs or ARNs per call (ECS API model, DescribeTasks.tasks).
DESCRIBE_BATCH: Final = 100
# Every failure on the way to or from AWS (connection, TLS, proxy, timeouts, a response cut short):
# the outcome is unknown, so the same request is sent again, never failed as "rejected".
_CONNECTION_ERRORS = (ConnectionError, HTTPClientError, ResponseStreamingError)
_CREDENTIAL_ERRORS = (NoCredentialsError, PartialCredentialsError)


class AwsCallError(Exception):
    """An AWS call failed; ``kind`` says whether to retry, pause or give up."""

    def __init__(self, kind: LaunchErrorKind, code: str, message: str, resource_ids: Sequence[str] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.kind = kind
        self.code = code
        self.message = message
        self.resource_ids = tuple(resource_ids)


def translate(exc: Exception) -> AwsCallError:
    """Map a botocore exception to our error type, by AWS error code where there is one."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        resource_ids = exc.response.get("resourceIds") or []
        return AwsCallError(launch_error_kind(code, status), code, str(error.get("Message") or ""), resource_ids)
    if isinstance(exc, _CONNECTION_ERRORS):
        return AwsCallError(LaunchErrorKind.TRANSIENT, type(exc).__name__, str(exc))
    if isinstance(exc, _CREDENTIAL_ERRORS) or "credential" in type(exc).__name__.lower():
        return AwsCallError(LaunchErrorKind.CREDENTIALS, type(exc).__name__, str(exc))
    if isinstance(exc, BotoCoreError):
        # Parameter validation and the like: our request is wrong, retrying cannot help.
        return AwsCallError(LaunchErrorKind.REJECTED, type(exc).__name__, str(exc))
    raise exc  # a bug in our code is not an AWS condition


def parse_task(raw: Mapping[str, Any]) -> TaskObservation:
    """One DescribeTasks/RunTask task dict as the core's observation."""
    return TaskObservation(
        arn=raw["taskArn"],
        last_status=raw.get("lastStatus", "PROVISIONING"),
        desired_status=raw.get("desiredStatus", "RUNNING"),
        version=int(raw.get("version") or 0),
        started=raw.get("startedAt") is not None,
        stop_code=raw.get("stopCode"),
        stopped_reason=raw.get("stoppedReason"),
        containers=tuple(
            ContainerObservation(
                name=c.get("name", ""),
                last_status=c.get("lastStatus", ""),
                exit_code=c.get("exitCode"),
                reason=c.get("reason"),
            )
            for c in raw.get("containers") or []
        ),
        commands=tuple(
            (str(o.get("name")), tuple(str(a) for a in o.get("command") or []))
            for o in (raw.get("overrides") or {}).get("containerOverrides") or []
            if o.get("command")
        ),
        launch_attempt=launch_attempt_of(raw.get("startedBy")),
        capacity_provider=raw.get("capacityProviderName"),
    )


@dataclass(frozen=True)
class Launched:
    """RunTask started (or had already started, for this token) the task."""

    observation: TaskObservation


@dataclass(frozen=True)
class PlacementFailed:
    """RunTask answered 200 with ``failures[]``: ECS could not place the task now."""

    reason: str


LaunchResult = Launched | PlacementFailed


class EcsClient:
    """RunTask, DescribeTasks and StopTask over a boto3 ECS client."""

    def __init__(self, client: Any, cluster: str) -> None:
        self._client = client
        self.cluster = cluster

    def run_task(self, request: Mapping[str, Any]) -> LaunchResult:
        try:
            response = self._client.run_task(**request)
        except Exception as exc:
            # ConflictException (the clientToken was used with another request) is an error like any
            # other: the task it names is never taken for ours (LaunchErrorKind.CONFLICT).
            raise translate(exc) from exc
        tasks = response.get("tasks") or []
        if tasks:
            return Launched(parse_task(tasks[0]))
        failures = response.get("failures") or []
        reason = "; ".join(
            f"{f.get('reason', 'unknown')}" + (f" ({f['detail']})" if f.get("detail") else "") for f in failures
        )
        return PlacementFailed(reason or "RunTask returned neither a task nor a failure")

    def describe_tasks(self, cluster: str, arns: Sequence[str]) -> tuple[list[TaskObservation], list[str]]:
        """Observations for the ARNs ECS knows, and the ARNs it reported MISSING."""
        if len(arns) > DESCRIBE_BATCH:
            raise ValueError(f"DescribeTasks takes at most {DESCRIBE_BATCH} ARNs")
        try:
            response = self._client.describe_tasks(cluster=cluster, tasks=list(arns))
        except Exception as exc:
            raise translate(exc) from exc
        seen = [parse_task(t) for t in response.get("tasks") or []]
        missing = [f["arn"] for f in response.get("failures") or [] if f.get("reason") == "MISSING" and f.get("arn")]
        return seen, missing

    def stop_task(self, cluster: str, arn: str, reason: str) -> None:
        try:
            self._client.stop_task(cluster=cluster, task=arn, reason=reason[:255])
        except Exception as exc:
            raise translate(exc) from exc
