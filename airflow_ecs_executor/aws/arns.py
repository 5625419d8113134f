"""ECS task ARNs, parsed in one place.

``arn:<partition>:ecs:<region>:<account>:task/<cluster>/<task id>``; the old format (before
November 2018) has no cluster: ``arn:<partition>:ecs:<region>:<account>:task/<task id>``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskArn:
    """The parts of an ECS task ARN; ``cluster`` is None in the old format."""

    arn: str
    region: str
    account: str
    cluster: str | None
    task_id: str


def parse_task_arn(value: str | None) -> TaskArn | None:
    """The parts of an ECS task ARN, or None when ``value`` is not one."""
    if not value or not value.startswith("arn:"):
        return None
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[2] != "ecs" or not parts[5].startswith("task/"):
        return None
    path = parts[5].removeprefix("task/").split("/")
    if not all(path) or len(path) > 2:
        return None
    cluster = path[0] if len(path) == 2 else None
    return TaskArn(value, parts[3], parts[4], cluster, path[-1])


def is_task_arn(value: str | None) -> bool:
    """Whether ``value`` (an external_executor_id, say) is an ECS task ARN."""
    return parse_task_arn(value) is not None
