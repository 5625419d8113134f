"""ECS's own rules for task definitions, tags and RunTask, with ECS's error messages."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from ecs_emulator.errors import ClientException, InvalidParameterException

# RunTask: "A total of 8192 characters are allowed for overrides. This limit includes the JSON
# formatting characters of the override structure." (ECS API model, RunTask.overrides)
MAX_OVERRIDES_CHARS = 8192
# RunTask.count: "You can specify up to 10 tasks for each call." (ECS API model)
MAX_RUN_COUNT = 10
# Tag rules (ECS API model, Tag): 50 per resource, key 1-128, value 0-256, no aws: prefix.
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
_TAG_PUNCTUATION = set("+-=._:/@ ")
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


def _tag_text_ok(text: str) -> bool:
    return all(ch in _TAG_PUNCTUATION or unicodedata.category(ch)[0] in "LNZ" for ch in text)


def validate_tags(tags: Sequence[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """Check tags against ECS's rules; return them as plain dicts."""
    if not tags:
        return []
    if len(tags) > MAX_TAGS:
        raise InvalidParameterException(f"Tags can not be more than {MAX_TAGS}.")
    seen: set[str] = set()
    out = []
    for tag in tags:
        key, value = tag.get("key"), tag.get("value", "")
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_TAG_KEY:
            raise InvalidParameterException(f"Tag key must be between 1 and {MAX_TAG_KEY} characters.")
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise InvalidParameterException(f"Tag value must be at most {MAX_TAG_VALUE} characters.")
        if key.lower().startswith("aws:") or value.lower().startswith("aws:"):
            raise InvalidParameterException("Tag keys and values may not begin with the reserved prefix 'aws:'.")
        if not _tag_text_ok(key) or not _tag_text_ok(value):
            raise InvalidParameterException(
                f"Tag '{key}' contains characters that are not allowed. Allowed: letters, numbers, spaces "
                "and + - = . _ : / @"
            )
        if key in seen:
            raise InvalidParameterException(f"Duplicate tag key: {key}")
        seen.add(key)
        out.append({"key": key, "value": value})
    return out


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
    elif memory is None:
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
