"""The emulator's records of clusters, task definitions, tasks and containers, and their JSON."""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass, field
from typing import Any

from ecs_emulator.arns import ACCOUNT
from ecs_emulator.runners import Handle

__all__ = [
    "ACCOUNT",
    "TERMINAL",
    "AwsLogsTarget",
    "Cluster",
    "Container",
    "ContainerInstance",
    "Task",
    "TaskDefinition",
]

TERMINAL = "STOPPED"


@dataclass
class Cluster:
    """An ECS cluster."""

    name: str
    arn: str
    capacity_providers: list[str] = field(default_factory=list)
    default_strategy: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)
    settings: list[dict[str, str]] = field(default_factory=list)
    status: str = "ACTIVE"


@dataclass
class ContainerInstance:
    """An EC2 instance registered to a cluster: the capacity that EC2 tasks are placed on."""

    instance_id: str
    arn: str
    cluster_arn: str
    ec2_instance_id: str
    cpu: int  # CPU units registered
    memory: int  # MiB registered
    registered_at: float
    tags: list[dict[str, str]] = field(default_factory=list)
    attributes: list[dict[str, str]] = field(default_factory=list)
    status: str = "ACTIVE"
    used_cpu: int = 0
    used_memory: int = 0
    running_tasks: int = 0
    pending_tasks: int = 0

    def describe(self, *, include_tags: bool = False) -> dict[str, Any]:
        def resources(cpu: int, memory: int) -> list[dict[str, Any]]:
            return [
                {"name": "CPU", "type": "INTEGER", "integerValue": cpu, "doubleValue": 0.0, "longValue": 0},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": memory, "doubleValue": 0.0, "longValue": 0},
            ]

        return {
            "containerInstanceArn": self.arn,
            "ec2InstanceId": self.ec2_instance_id,
            "version": 1,
            "versionInfo": {
                "agentVersion": "1.89.0",
                "agentHash": "emulated",
                "dockerVersion": "DockerVersion: 25.0.8",
            },
            "remainingResources": resources(self.cpu - self.used_cpu, self.memory - self.used_memory),
            "registeredResources": resources(self.cpu, self.memory),
            "status": self.status,
            "agentConnected": self.status == "ACTIVE",
            "runningTasksCount": self.running_tasks,
            "pendingTasksCount": self.pending_tasks,
            "attributes": list(self.attributes),
            "registeredAt": self.registered_at,
            "attachments": [],
            "tags": list(self.tags) if include_tags else [],
        }


@dataclass
class TaskDefinition:
    """One revision of a task definition family."""

    family: str
    revision: int
    arn: str
    body: dict[str, Any]
    tags: list[dict[str, str]]
    cpu: int | None
    memory: int | None
    status: str = "ACTIVE"
    deregistered_at: float | None = None

    def describe(self) -> dict[str, Any]:
        out = {**self.body, "status": self.status}
        if self.deregistered_at is not None:
            out["deregisteredAt"] = self.deregistered_at
        return out

    def container(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.body["containerDefinitions"] if c["name"] == name), None)


@dataclass
class AwsLogsTarget:
    """Where the awslogs driver writes a container's output."""

    group: str
    stream: str
    create_group: bool


@dataclass
class Container:
    """One container of a task: its settings, its state and its running handle."""

    name: str
    arn: str
    image: str
    essential: bool
    argv: list[str]
    environment: dict[str, str]
    stop_timeout: float
    memory_limit_mib: int | None
    cpu: int
    working_directory: str | None
    awslogs: AwsLogsTarget | None
    runtime_id: str
    last_status: str = "PENDING"
    exit_code: int | None = None
    reason: str | None = None
    handle: Handle | None = None
    forced_reason: str | None = None
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))

    @property
    def live(self) -> bool:
        return self.handle is not None and self.last_status != TERMINAL

    def describe(self, task_arn: str, eni: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "containerArn": self.arn,
            "taskArn": task_arn,
            "name": self.name,
            "image": self.image,
            "lastStatus": self.last_status,
            "networkBindings": [],
            "networkInterfaces": [],
            "healthStatus": "UNKNOWN",
            "cpu": str(self.cpu),
        }
        if self.last_status in ("RUNNING", TERMINAL) and self.handle is not None:
            out["runtimeId"] = self.runtime_id
        if self.memory_limit_mib:
            out["memory"] = str(self.memory_limit_mib)
        if self.exit_code is not None:
            out["exitCode"] = self.exit_code
        if self.reason:
            out["reason"] = self.reason
        if eni:
            out["networkInterfaces"] = [{"attachmentId": eni["id"], "privateIpv4Address": eni["ip"]}]
        return out


@dataclass
class Task:
    """One ECS task and every fact DescribeTasks reports about it."""

    task_id: str
    arn: str
    cluster_arn: str
    task_definition: TaskDefinition
    launch_type: str
    capacity_provider: str | None
    platform_version: str | None
    cpu: int | None
    memory: int | None
    group: str
    started_by: str | None
    tags: list[dict[str, str]]
    overrides: dict[str, Any]
    containers: list[Container]
    created_at: float
    availability_zone: str
    eni: dict[str, Any] | None
    client_token: str | None
    visible_from: float
    start_failure: str | None
    container_instance: ContainerInstance | None = None
    reserved: tuple[int, int] | None = None  # (CPU units, MiB) held on the container instance
    counted_running: bool = False
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    version: int = 1
    pull_started_at: float | None = None
    pull_stopped_at: float | None = None
    started_at: float | None = None
    stopping_at: float | None = None
    execution_stopped_at: float | None = None
    stopped_at: float | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    starting: bool = False
    spot_after: float | None = None
    # The task's own draws (its lifecycle's durations, a simulated container's run time): with a
    # seeded profile, the n-th task of two runs lives the same lifecycle whatever the order of the
    # API calls and transitions around it (EcsService.run_task seeds it).
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    @property
    def is_spot(self) -> bool:
        return self.capacity_provider == "FARGATE_SPOT"

    def describe(self, *, include_tags: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attachments": [],
            "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
            "availabilityZone": self.availability_zone,
            "clusterArn": self.cluster_arn,
            "connectivity": "CONNECTED",
            "connectivityAt": self.created_at,
            "containers": [c.describe(self.arn, self.eni) for c in self.containers],
            "createdAt": self.created_at,
            "desiredStatus": self.desired_status,
            "enableExecuteCommand": False,
            "group": self.group,
            "lastStatus": self.last_status,
            "launchType": self.launch_type,
            "overrides": {"containerOverrides": [], "inferenceAcceleratorOverrides": [], **self.overrides},
            "taskArn": self.arn,
            "taskDefinitionArn": self.task_definition.arn,
            "version": self.version,
            "tags": self.tags if include_tags else [],
        }
        if self.cpu is not None:
            out["cpu"] = str(self.cpu)
        if self.memory is not None:
            out["memory"] = str(self.memory)
        if self.capacity_provider:
            out["capacityProviderName"] = self.capacity_provider
        if self.platform_version:
            out["platformVersion"] = self.platform_version
            out["platformFamily"] = "Linux"
            out["ephemeralStorage"] = {"sizeInGiB": 20}
        if self.started_by:
            out["startedBy"] = self.started_by
        if self.container_instance is not None:
            out["containerInstanceArn"] = self.container_instance.arn
        if self.eni:
            out["attachments"] = [
                {
                    "id": self.eni["id"],
                    "type": "ElasticNetworkInterface",
                    "status": self.eni["status"],
                    "details": [
                        {"name": "subnetId", "value": self.eni["subnet"]},
                        {"name": "networkInterfaceId", "value": self.eni["eni_id"]},
                        {"name": "privateIPv4Address", "value": self.eni["ip"]},
                    ],
                }
            ]
        for key, value in (
            ("pullStartedAt", self.pull_started_at),
            ("pullStoppedAt", self.pull_stopped_at),
            ("startedAt", self.started_at),
            ("stoppingAt", self.stopping_at),
            ("executionStoppedAt", self.execution_stopped_at),
            ("stoppedAt", self.stopped_at),
            ("stopCode", self.stop_code),
            ("stoppedReason", self.stopped_reason),
        ):
            if value is not None:
                out[key] = value
        return out
