"""Task definitions: each family's revisions, registration with ECS's defaults, and resolution of a reference.

A reference is a family (its latest ACTIVE revision), ``family:revision`` or a full ARN. Whether an
INACTIVE revision may start tasks is RunTask's decision, not this registry's.
"""

from __future__ import annotations

import time
from typing import Any

from ecs_emulator.arns import Names
from ecs_emulator.errors import ClientException
from ecs_emulator.model import TaskDefinition
from ecs_emulator.tags import validate_tags
from ecs_emulator.validation import validate_task_definition

# Container fields ECS fills with an empty list when a registration leaves them out.
_LIST_DEFAULTS = (
    "portMappings",
    "environment",
    "mountPoints",
    "volumesFrom",
    "environmentFiles",
    "systemControls",
    "credentialSpecs",
)
_COPIED = ("taskRoleArn", "executionRoleArn", "runtimePlatform", "pidMode", "ipcMode", "ephemeralStorage")


class TaskDefinitions:
    """Every family's revisions, oldest first. Not thread-safe: callers lock."""

    def __init__(self, names: Names) -> None:
        self._names = names
        self._families: dict[str, list[TaskDefinition]] = {}

    def register(self, req: dict[str, Any]) -> TaskDefinition:
        cpu, memory = validate_task_definition(req)
        tags = validate_tags(req.get("tags"))
        family = req["family"]
        containers = []
        for given in req["containerDefinitions"]:
            c = dict(given)
            c.setdefault("essential", True)
            for key in _LIST_DEFAULTS:
                c.setdefault(key, [])
            c.setdefault("cpu", 0)
            containers.append(c)
        network_mode = req.get("networkMode") or "bridge"
        compat = ["EC2"]
        if network_mode == "awsvpc" and cpu is not None and memory is not None:
            compat.append("FARGATE")
        revisions = self._families.setdefault(family, [])
        revision = revisions[-1].revision + 1 if revisions else 1
        arn = self._names.arn("task-definition", f"{family}:{revision}")
        body: dict[str, Any] = {
            "taskDefinitionArn": arn,
            "containerDefinitions": containers,
            "family": family,
            "networkMode": network_mode,
            "revision": revision,
            "volumes": list(req.get("volumes") or []),
            "requiresAttributes": [],
            "placementConstraints": list(req.get("placementConstraints") or []),
            "compatibilities": compat,
            "requiresCompatibilities": list(req.get("requiresCompatibilities") or []),
            "registeredAt": time.time(),
            "registeredBy": f"arn:aws:iam::{self._names.account}:root",
        }
        for key in _COPIED:
            if req.get(key):
                body[key] = req[key]
        if req.get("cpu") is not None:
            body["cpu"] = str(cpu)
        if req.get("memory") is not None:
            body["memory"] = str(memory)
        td = TaskDefinition(family, revision, arn, body, tags, cpu, memory)
        revisions.append(td)
        return td

    def resolve(self, ref: Any) -> TaskDefinition:
        if not isinstance(ref, str) or not ref:
            raise ClientException("TaskDefinition cannot be null or empty.")
        name = ref.split(":task-definition/", 1)[-1]
        family, _, revision = name.partition(":")
        revisions = self._families.get(family, [])
        if revision:
            found = next((t for t in revisions if str(t.revision) == revision), None)
        else:
            found = next((t for t in reversed(revisions) if t.status == "ACTIVE"), None)
        if found is None:
            raise ClientException("Unable to describe task definition.")
        return found

    def deregister(self, ref: Any) -> TaskDefinition:
        text = str(ref or "")
        if ":" not in text.split(":task-definition/", 1)[-1]:
            raise ClientException("Invalid revision number. Number: ")
        td = self.resolve(text)
        if td.status == "ACTIVE":
            td.status = "INACTIVE"
            td.deregistered_at = time.time()
        return td

    def arns(self, prefix: str, status: str, descending: bool) -> list[str]:
        found = [
            td.arn
            for family in sorted(self._families)
            if family.startswith(prefix)
            for td in self._families[family]
            if status in ("ALL", td.status)
        ]
        return found[::-1] if descending else found
