"""The awslogs log driver: where a container's output goes, and what becomes a log event.

Sources: the ECS API model (``LogConfiguration.options``, in botocore's ECS service model) for the
options, the stream name and the delivery mode; the AWS page "Stopped tasks error codes" for
``ResourceInitializationError`` (Fargate's agent, platform 1.4.0 and later); the Docker Engine's
awslogs driver, which ECS runs on EC2 container instances, for empty lines, splitting and what
happens when the log group is missing.

- The stream is ``<awslogs-stream-prefix>/<container name>/<task id>``; without a prefix it is
  named after the container's ID (what DescribeTasks reports as the container's ``runtimeId``).
- A line becomes one event; an empty line becomes none; a line over 262,118 bytes (CloudWatch's
  256 KiB event less its 26 bytes of overhead, as the Docker driver counts) becomes several
  events with the same timestamp, cut between UTF-8 characters.
- The log group missing, and ``awslogs-create-group`` not ``true``: on Fargate the task fails to
  start with ``ResourceInitializationError``. On EC2 the Docker daemon creates the stream when
  the container starts: in ``blocking`` mode the container cannot start
  (``CannotStartContainerError``); in ``non-blocking`` mode, the default since June 2025 when
  ``mode`` is not set, the container starts and runs while the driver retries in the background
  and buffers what it can. The emulator is stricter there: the container runs, its stream is
  never created and every line it writes is lost, even if the group appears later.

Lines are written to CloudWatch Logs as they are read; the real driver batches them (every 5 s
by default), so on AWS a running task's latest lines arrive a few seconds later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecs_emulator.errors import AwsError
from ecs_emulator.logs import EVENT_OVERHEAD_BYTES, LogsService
from ecs_emulator.model import AwsLogsTarget

_log = logging.getLogger(__name__)

# The largest event the driver sends: 256 KiB less the 26 bytes CloudWatch counts per event.
MAX_EVENT_BYTES = 262_144 - EVENT_OVERHEAD_BYTES  # 262,118
_MISSING_GROUP = "ResourceNotFoundException: The specified log group does not exist."
FARGATE_MISSING_GROUP = (
    "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: "
    f"failed to create Cloudwatch log stream: {_MISSING_GROUP} : exit status 1"
)
EC2_MISSING_GROUP = (
    "CannotStartContainerError: Error response from daemon: failed to initialize logging driver: "
    f"failed to create Cloudwatch log stream: {_MISSING_GROUP}"
)


@dataclass
class DriverTarget(AwsLogsTarget):
    """An awslogs target with the driver's delivery mode (``mode``: blocking or non-blocking)."""

    blocking: bool = False


def target(
    log_configuration: Mapping[str, Any] | None, *, container_name: str, task_id: str, container_id: str
) -> DriverTarget | None:
    """Where a container's output goes, or None when it does not use the awslogs driver."""
    if not log_configuration or log_configuration.get("logDriver") != "awslogs":
        return None
    options = log_configuration.get("options") or {}
    prefix = options.get("awslogs-stream-prefix")
    return DriverTarget(
        group=options.get("awslogs-group", ""),
        stream=f"{prefix}/{container_name}/{task_id}" if prefix else container_id,
        create_group=str(options.get("awslogs-create-group", "")).lower() == "true",
        # "If you don't specify the mode option or configure the account setting, Amazon ECS
        # will default to the non-blocking mode." (ECS API model, LogConfiguration.options)
        blocking=options.get("mode") == "blocking",
    )


def start(logs: LogsService, dest: AwsLogsTarget, *, fargate: bool) -> str | None:
    """Create the container's stream before it starts; the reason the task cannot start, or None."""
    try:
        logs.ensure_stream(dest.group, dest.stream, create_group=dest.create_group)
    except AwsError:
        if fargate:
            return FARGATE_MISSING_GROUP
        if isinstance(dest, DriverTarget) and dest.blocking:
            return EC2_MISSING_GROUP
        _log.warning(
            "awslogs: log group %r does not exist; the container runs and its output is lost (non-blocking mode)",
            dest.group,
        )
    return None


def events(timestamp: int, line: str) -> list[tuple[int, str]]:
    """The log events (timestamp ms, message) that one line of output becomes."""
    if not line:
        return []
    if len(line) * 4 <= MAX_EVENT_BYTES:  # no character is longer than 4 bytes in UTF-8
        return [(timestamp, line)]
    data = line.encode("utf-8", "surrogatepass")
    out: list[tuple[int, str]] = []
    while data:
        cut = min(len(data), MAX_EVENT_BYTES)
        while cut < len(data) and data[cut] & 0xC0 == 0x80:  # never cut inside a character
            cut -= 1
        out.append((timestamp, data[:cut].decode("utf-8", "surrogatepass")))
        data = data[cut:]
    return out


__all__ = ["EC2_MISSING_GROUP", "FARGATE_MISSING_GROUP", "MAX_EVENT_BYTES", "DriverTarget", "events", "start", "target"]
