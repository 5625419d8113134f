"""How a RunTask request becomes task and container records: overrides applied, ENI, zone, tags.

The records start in their first status; ``lifecycle`` moves them on, ``placement`` holds their room.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Mapping
from typing import Any

from ecs_emulator.arns import Names
from ecs_emulator.faults import FaultPlan
from ecs_emulator.model import AwsLogsTarget, Cluster, Container, Task, TaskDefinition
from ecs_emulator.tags import task_tags

DEFAULT_STOP_TIMEOUT = 30.0  # seconds between SIGTERM and SIGKILL unless the container sets stopTimeout


def new_task(
    req: Mapping[str, Any],
    cluster: Cluster,
    td: TaskDefinition,
    launch_type: str,
    provider: str | None,
    platform: str | None,
    cpu: int | None,
    memory: int | None,
    *,
    names: Names,
    faults: FaultPlan,
) -> Task:
    """The task record of one task of a RunTask request, in its first status (not yet started)."""
    task_id = uuid.uuid4().hex
    arn = names.arn("task", f"{cluster.name}/{task_id}")
    now = time.time()
    overrides = req.get("overrides") or {}
    by_name = {co["name"]: co for co in overrides.get("containerOverrides") or []}
    containers = [
        _container(td, cdef, by_name.get(cdef["name"], {}), cluster, task_id, memory, index, names)
        for index, cdef in enumerate(td.body["containerDefinitions"])
    ]
    eni = None
    subnets: list[str] = []
    if td.body["networkMode"] == "awsvpc":
        subnets = req["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
        subnet = subnets[zlib.crc32(task_id.encode()) % len(subnets)]
        eni = {
            "id": str(uuid.uuid4()),
            "status": "PRECREATED",
            "subnet": subnet,
            "eni_id": f"eni-{task_id[:17]}",
            "ip": f"10.0.{int(task_id[:2], 16)}.{int(task_id[2:4], 16) or 1}",
        }
    zone_seed = subnets[0] if subnets else task_id
    tags = task_tags(req, td.tags, cluster.name)
    task = Task(
        task_id=task_id,
        arn=arn,
        cluster_arn=cluster.arn,
        task_definition=td,
        launch_type=launch_type,
        capacity_provider=provider,
        platform_version=platform,
        cpu=cpu,
        memory=memory,
        group=req.get("group") or f"family:{td.family}",
        started_by=req.get("startedBy"),
        tags=tags,
        overrides={k: v for k, v in overrides.items() if v is not None},
        containers=containers,
        created_at=now,
        availability_zone=f"{names.region}{'abc'[zlib.crc32(zone_seed.encode()) % 3]}",
        eni=eni,
        client_token=req.get("clientToken"),
        visible_from=now + faults.invisible_for(),
        start_failure=faults.start_failure(containers[0].image),
    )
    if eni is None:  # no ENI to provision: the task starts PENDING (see lifecycle)
        task.last_status = "PENDING"
    return task


def _container(
    td: TaskDefinition,
    cdef: Mapping[str, Any],
    override: Mapping[str, Any],
    cluster: Cluster,
    task_id: str,
    task_memory: int | None,
    index: int,
    names: Names,
) -> Container:
    env = {e["name"]: e.get("value", "") for e in cdef.get("environment") or []}
    env.update({e["name"]: e.get("value", "") for e in override.get("environment") or []})
    env.setdefault("AWS_REGION", names.region)
    env.setdefault("AWS_DEFAULT_REGION", names.region)
    command = override.get("command") if override.get("command") is not None else cdef.get("command")
    argv = list(cdef.get("entryPoint") or []) + list(command or [])
    awslogs = None
    log_config = cdef.get("logConfiguration") or {}
    if log_config.get("logDriver") == "awslogs":
        options = log_config.get("options") or {}
        prefix = options.get("awslogs-stream-prefix")
        stream = f"{prefix}/{cdef['name']}/{task_id}" if prefix else task_id
        awslogs = AwsLogsTarget(options.get("awslogs-group", ""), stream, options.get("awslogs-create-group") == "true")
    memory = override.get("memory") or cdef.get("memory") or task_memory
    return Container(
        name=cdef["name"],
        arn=names.arn("container", f"{cluster.name}/{task_id}/{uuid.uuid4()}"),
        image=cdef["image"],
        essential=bool(cdef.get("essential", True)),
        argv=argv,
        environment=env,
        stop_timeout=float(cdef.get("stopTimeout") or DEFAULT_STOP_TIMEOUT),
        memory_limit_mib=int(memory) if memory else None,
        cpu=int(override.get("cpu") or cdef.get("cpu") or 0),
        working_directory=cdef.get("workingDirectory"),
        awslogs=awslogs,
        runtime_id=f"{task_id}-{index}",
    )
