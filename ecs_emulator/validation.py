"""ECS's own rules for task definitions, tags and RunTask, with ECS's error messages."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ecs_emulator.errors import ClientException, InvalidParameterException, PlatformUnknownException
from ecs_emulator.tags import validate_tags

# RunTask: "A total of 8192 characters are allowed for overrides. This limit includes the JSON
# formatting characters of the override structure." (ECS API model, RunTask.overrides)
MAX_OVERRIDES_CHARS = 8192
# RunTask.count: "You can specify up to 10 tasks for each call." (ECS API model)
MAX_RUN_COUNT = 10
_FAMILY = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_STARTED_BY = re.compile(r"^[A-Za-z0-9/_-]{0,128}$")
_CONTAINER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")

# Fargate task sizes: CPU units -> the memory values (MiB) allowed with them.
FARGATE_SIZES: Mapping[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}


def parse_cpu(value: Any) -> int | None:
    """Task-level cpu: "1024" or "1 vCPU" -> CPU units."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*vcpu", text, re.IGNORECASE)
    if match:
        return int(float(match.group(1)) * 1024)
    if text.isdigit():
        return int(text)
    raise ClientException(f"Invalid 'cpu' setting for task. Value: {text}")


def parse_memory(value: Any) -> int | None:
    """Task-level memory: "2048" or "2 GB" -> MiB."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*gb", text, re.IGNORECASE)
    if match:
        return int(float(match.group(1)) * 1024)
    if text.isdigit():
        return int(text)
    raise ClientException(f"Invalid 'memory' setting for task. Value: {text}")


def validate_task_definition(req: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """Check a RegisterTaskDefinition request; return the task-level (cpu units, memory MiB)."""
    family = req.get("family")
    if not isinstance(family, str) or not _FAMILY.match(family):
        raise ClientException(
            "Family contains invalid characters. Up to 255 letters (uppercase and lowercase), numbers, "
            "underscores, and hyphens are allowed."
        )
    containers = req.get("containerDefinitions") or []
    if not containers:
        raise ClientException("Container list cannot be empty.")
    names: set[str] = set()
    for c in containers:
        name = c.get("name")
        if not isinstance(name, str) or not _CONTAINER_NAME.match(name):
            raise ClientException("Container name should not be null or empty and may hold letters, numbers, - and _.")
        if name in names:
            raise ClientException(f"Duplicate container name found: {name}.")
        names.add(name)
        if not c.get("image"):
            raise ClientException(f"Container.image should not be null or empty. Container: {name}")
    if not any(c.get("essential", True) for c in containers):
        raise ClientException("Task definition does not have any essential container.")
    cpu = parse_cpu(req.get("cpu"))
    memory = parse_memory(req.get("memory"))
    compat = req.get("requiresCompatibilities") or []
    if "FARGATE" in compat:
        if req.get("networkMode") != "awsvpc":
            raise ClientException("Fargate only supports network mode 'awsvpc'.")
        if cpu is None:
            raise ClientException("Fargate requires that 'cpu' be defined at the task level.")
        if memory is None:
            raise ClientException("Fargate requires that 'memory' be defined at the task level.")
        check_fargate_size(cpu, memory)
        for c in containers:
            log_config = c.get("logConfiguration") or {}
            if log_config.get("logDriver") == "awslogs" and not req.get("executionRoleArn"):
                raise ClientException(
                    "Fargate requires task definition to have execution role ARN to support log driver awslogs."
                )
    else:
        check_ec2_task_cpu(cpu)
    if "FARGATE" not in compat and memory is None:
        for c in containers:
            if c.get("memory") is None and c.get("memoryReservation") is None:
                raise ClientException(
                    f"Invalid setting for container '{c['name']}'. At least one of 'memory' or "
                    "'memoryReservation' must be specified."
                )
    return cpu, memory


def check_fargate_size(cpu: int, memory: int) -> None:
    """Reject a task size that Fargate does not offer."""
    allowed = FARGATE_SIZES.get(cpu)
    if allowed is None or memory not in allowed:
        raise ClientException(
            f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. "
            "See the Amazon ECS documentation for the valid combinations."
        )


def overrides_length(overrides: Any) -> int:
    """Characters of the overrides structure as JSON, formatting included."""
    return len(json.dumps(overrides, separators=(",", ":"), ensure_ascii=False))


def validate_run_task(req: Mapping[str, Any], container_names: set[str]) -> None:
    """The RunTask checks that do not depend on the cluster's state."""
    count = req.get("count", 1)
    if not isinstance(count, int) or not 1 <= count <= MAX_RUN_COUNT:
        raise InvalidParameterException("Count must be between 1 and 10.")
    started_by = req.get("startedBy")
    if started_by is not None and not _STARTED_BY.match(started_by):
        raise InvalidParameterException(
            "startedBy may hold up to 128 letters, numbers, hyphens, forward slashes and underscores."
        )
    if req.get("launchType") and req.get("capacityProviderStrategy"):
        raise InvalidParameterException(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again."
        )
    if req.get("propagateTags") == "SERVICE":
        raise InvalidParameterException(
            "The propagateTags SERVICE option is not supported for tasks started by RunTask."
        )
    token = req.get("clientToken")
    if token is not None and (
        not isinstance(token, str) or not 1 <= len(token) <= 64 or any(not 33 <= ord(ch) <= 126 for ch in token)
    ):
        raise InvalidParameterException("clientToken must be 1 to 64 characters in the range 33-126.")
    overrides = req.get("overrides")
    if overrides is not None:
        if overrides_length(overrides) > MAX_OVERRIDES_CHARS:
            raise InvalidParameterException(f"Container Overrides length must be at most {MAX_OVERRIDES_CHARS}")
        for co in overrides.get("containerOverrides") or []:
            if co.get("name") not in container_names:
                raise InvalidParameterException(
                    f"Override for container named {co.get('name')} is not a container in the TaskDefinition."
                )
    validate_tags(req.get("tags"))


# Task-level cpu on EC2 (ECS API model, RegisterTaskDefinition.cpu): "between 128 CPU units
# (0.125 vCPUs) and 196608 CPU units (192 vCPUs)".
MIN_EC2_TASK_CPU = 128
MAX_EC2_TASK_CPU = 196608
# Fargate platform versions the emulator knows; LATEST is 1.4.0.
FARGATE_PLATFORMS = {"LATEST": "1.4.0", "1.4.0": "1.4.0", "1.3.0": "1.3.0"}
# 8 and 16 vCPU Fargate tasks need Linux platform version 1.4.0 or later (Developer Guide, "Task size").
LARGE_FARGATE_CPU = 8192
# DescribeTasks: "A list of up to 100 task IDs or full ARN entries." (ECS API model)
MAX_DESCRIBE = 100
# StopTask reason: at most 255 characters (the API reference, StopTask request parameters).
MAX_STOP_REASON = 255
# ListTasks filters other than the cluster: "When you specify startedBy as the filter, it must be the
# only filter that you use." (ECS API model, ListTasks.startedBy)
_LIST_TASKS_FILTERS = ("family", "containerInstance", "serviceName", "desiredStatus", "launchType")


def check_ec2_task_cpu(cpu: int | None) -> None:
    """Task-level cpu of a task definition or an EC2 task, when one is given."""
    if cpu is not None and not MIN_EC2_TASK_CPU <= cpu <= MAX_EC2_TASK_CPU:
        raise ClientException(
            f"Invalid 'cpu' setting for task. For EC2 tasks the task CPU must be between {MIN_EC2_TASK_CPU} "
            f"and {MAX_EC2_TASK_CPU} CPU units. Value: {cpu}"
        )


def check_launch(
    req: Mapping[str, Any],
    td_body: Mapping[str, Any],
    launch_type: str,
    cpu: int | None,
    memory: int | None,
) -> str | None:
    """The RunTask checks that depend on the launch type and the task definition; the platform version."""
    platform = req.get("platformVersion")
    network = td_body["networkMode"]
    if launch_type == "FARGATE":
        if "FARGATE" not in td_body["compatibilities"]:
            raise InvalidParameterException("Task definition does not support launch_type FARGATE.")
        if platform is not None and platform not in FARGATE_PLATFORMS:
            raise PlatformUnknownException("The specified platform does not exist.")
        # A FARGATE-compatible definition has both.
        assert cpu is not None
        assert memory is not None
        check_fargate_size(cpu, memory)
        platform = FARGATE_PLATFORMS[platform or "LATEST"]
        if cpu >= LARGE_FARGATE_CPU and platform != "1.4.0":
            raise InvalidParameterException(
                f"Task CPU {cpu} (8 or 16 vCPU) requires Fargate platform version 1.4.0 or LATEST; "
                f"the task asked for {platform}."
            )
    else:
        if platform is not None:
            raise InvalidParameterException("The platform version must be null when specifying an EC2 launch type.")
        check_ec2_task_cpu(cpu)
    if network == "awsvpc":
        vpc = (req.get("networkConfiguration") or {}).get("awsvpcConfiguration")
        if not vpc:
            raise InvalidParameterException(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified."
            )
        if not vpc.get("subnets"):
            raise InvalidParameterException("subnets can not be empty.")
        if vpc.get("assignPublicIp") == "ENABLED" and launch_type != "FARGATE":
            raise InvalidParameterException("Assign public IP is not supported for this launch type.")
    elif req.get("networkConfiguration"):
        raise InvalidParameterException(
            "Network Configuration is not valid for the given networkMode of this task definition."
        )
    return str(platform) if platform is not None else None


def check_describe_tasks(refs: Any) -> list[Any]:
    """DescribeTasks' list of task IDs or ARNs: 1 to 100 of them."""
    if not refs:
        raise InvalidParameterException("Tasks cannot be empty.")
    if not isinstance(refs, list):
        raise InvalidParameterException("taskIds must be a list.")
    if len(refs) > MAX_DESCRIBE:
        raise InvalidParameterException(f"taskIds can have at most {MAX_DESCRIBE} items.")
    return refs


def check_stop_reason(reason: Any) -> str | None:
    """StopTask's optional reason, at most 255 characters."""
    if reason is not None and len(str(reason)) > MAX_STOP_REASON:
        raise InvalidParameterException(f"Reason can have at most {MAX_STOP_REASON} characters.")
    return str(reason) if reason else None


def check_list_tasks(req: Mapping[str, Any]) -> None:
    """ListTasks: startedBy may not be combined with another filter."""
    if req.get("startedBy"):
        others = [f for f in _LIST_TASKS_FILTERS if req.get(f)]
        if others:
            raise InvalidParameterException(
                f"startedBy must be the only filter when it is specified; remove {', '.join(others)}."
            )


def page(items: list[str], req: Mapping[str, Any], key: str) -> dict[str, Any]:
    """One page of a List* answer: ``maxResults`` 1-100 (default 100), ``nextToken`` as given before."""
    size = req.get("maxResults") or 100
    if not isinstance(size, int) or not 1 <= size <= 100:
        raise InvalidParameterException("maxResults must be between 1 and 100.")
    try:
        start = int(req.get("nextToken") or 0)
    except ValueError:
        raise InvalidParameterException("Invalid nextToken.") from None
    out: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        out["nextToken"] = str(start + size)
    return out
