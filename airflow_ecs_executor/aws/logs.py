"""Reading an ECS task's container output from the CloudWatch Logs stream awslogs writes.

Pure boto3: the Airflow glue (which task, which try, which configuration) is in
``airflow_ecs_executor.logs``. Every failure becomes a note in words, never an exception, because
the caller is the Airflow UI's log view.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from airflow_ecs_executor.aws.client import translate
from airflow_ecs_executor.core.classify import LaunchErrorKind
from airflow_ecs_executor.redaction import redact_text

# GetLogEvents returns at most 10,000 events or 1 MB per call; ask for the most.
EVENTS_PER_CALL: Final = 10_000
READ_RETRIES: Final = 4
RETRY_BASE_SECONDS: Final = 0.25


@dataclass(frozen=True)
class LogStream:
    """Where awslogs writes one container's output."""

    group: str
    stream: str
    region: str | None = None


def awslogs_stream(task_definition: Mapping[str, Any], container: str, task_id: str) -> LogStream | str:
    """The stream awslogs writes for ``container`` of task ``task_id``, or why there is none to read."""
    family = task_definition.get("family", "the task definition")
    cdef = next((c for c in task_definition.get("containerDefinitions") or [] if c.get("name") == container), None)
    if cdef is None:
        return f"task definition {family} has no container named '{container}'"
    config = cdef.get("logConfiguration") or {}
    driver = config.get("logDriver")
    if driver != "awslogs":
        return (
            f"container '{container}' of task definition {family} logs with {driver or 'no log driver'}, "
            "not awslogs; set logConfiguration.logDriver to awslogs to see its output here"
        )
    options = config.get("options") or {}
    group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
    if not group:
        return f"container '{container}' of task definition {family} sets no awslogs-group"
    if not prefix:
        # Without a prefix the stream is named after the Docker container ID, which ECS does not report.
        return (
            f"container '{container}' of task definition {family} sets no awslogs-stream-prefix; set one so the "
            "stream name can be derived from the ECS task ID"
        )
    return LogStream(group, f"{prefix}/{container}/{task_id}", options.get("awslogs-region"))


@dataclass
class LogRead:
    """The lines read (JSON lines Airflow's log view understands) and, if the read stopped early, why."""

    lines: list[str] = field(default_factory=list)
    note: str | None = None


def _iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def as_log_line(event: Mapping[str, Any]) -> str:
    """One CloudWatch event as a JSON line with ``timestamp`` and ``event``, as Airflow's own task logs are.

    ``execute_workload`` prints structured JSON lines already; those pass through untouched. Anything
    else (a traceback, a plain print before logging is set up) is wrapped with the event's timestamp.
    A workload JWT in a line (Airflow 3.1 prints the workload with its token) is replaced by ***.
    """
    message = str(event.get("message", "")).rstrip("\n")
    if "eyJ" in message:  # Airflow 3.1's execute_workload prints the workload, JWT included
        message = redact_text(message)
    if message.startswith("{"):
        try:
            parsed = json.loads(message)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("event"), str):
            if parsed.get("timestamp"):
                return message
            parsed["timestamp"] = _iso(int(event.get("timestamp") or 0))
            return json.dumps(parsed)
    return json.dumps({"timestamp": _iso(int(event.get("timestamp") or 0)), "event": message})


def read_stream(
    client: Any,
    stream: LogStream,
    *,
    retries: int = READ_RETRIES,
    base_delay: float = RETRY_BASE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> LogRead:
    """Every event of the stream from its start, paging with GetLogEvents' forward tokens.

    Throttling and transient errors are retried with exponential back-off (about 4 s in all at the
    defaults); past that, the lines read so far are returned with a note saying why the read stopped.
    """
    result = LogRead()
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "logGroupName": stream.group,
            "logStreamName": stream.stream,
            "startFromHead": True,
            "limit": EVENTS_PER_CALL,
        }
        if token:
            kwargs["nextToken"] = token
        response: Mapping[str, Any] | None = None
        for attempt in range(retries + 1):
            try:
                response = client.get_log_events(**kwargs)
                break
            except Exception as exc:
                err = translate(exc)
                if err.code == "ResourceNotFoundException":
                    result.note = (
                        f"the log stream {stream.group}/{stream.stream} does not exist (yet): the container has "
                        "written nothing, or awslogs could not create it (check the execution role's "
                        "logs:CreateLogStream permission)"
                    )
                    return result
                if err.kind in (LaunchErrorKind.THROTTLED, LaunchErrorKind.TRANSIENT) and attempt < retries:
                    sleep(base_delay * 2**attempt)
                    continue
                result.note = (
                    f"reading CloudWatch Logs stopped after {len(result.lines)} lines: {err.code}: {err.message}; "
                    "reload the log view to try again"
                )
                return result
        assert response is not None
        events = response.get("events") or []
        result.lines.extend(as_log_line(e) for e in events)
        next_token = response.get("nextForwardToken")
        # At the end of a stream GetLogEvents hands back the token it was given.
        if not events or not next_token or next_token == token:
            return result
        token = next_token
