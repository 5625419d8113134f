"""Placement and capacity: which infrastructure a task runs on, and whether there is room for it.

EC2 capacity is a cluster's container instances, each with the CPU units and MiB it registered.
An EC2 task is placed on an instance with room for its reservation; when none has room, RunTask
answers a ``failures`` entry per container instance, naming the instance ARN and the resource that
ran out (``RESOURCE:CPU`` or ``RESOURCE:MEMORY``), as ECS does. RunTask on EC2 in a cluster with no
container instances at all is an exception, not a failure (``InvalidParameterException: No Container
Instances were found in your cluster.``).

Fargate capacity is the account's: unlimited unless a test caps it (``set_capacity``), when a task
beyond the cap gets Fargate's "Capacity is unavailable" failure. The same cap applies to EC2 tasks
(a shortfall without registering instances), answered as a RESOURCE failure of each instance.

Each capacity provider may have its own cap as well (``provider_limits``: a profile's
``[capacity.providers]`` or the control API's ``provider-capacity``): FARGATE and FARGATE_SPOT are
separate pools, as on AWS, so a test can run out of Spot while on-demand Fargate still has room. A
task beyond its provider's cap gets the same "Capacity is unavailable" failure (Fargate) or
RESOURCE failures (an EC2 provider). ECS never moves a task to another provider of the strategy by
itself: the strategy's weights pick the provider, then that provider has room or it does not.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecs_emulator.arns import Names
from ecs_emulator.errors import InvalidParameterException
from ecs_emulator.model import Cluster, ContainerInstance, Task, TaskDefinition

FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
FARGATE_CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone"
NO_CONTAINER_INSTANCES = "No Container Instances were found in your cluster."
_NOT_ASSOCIATED = (
    "The specified capacity provider strategy cannot contain a capacity provider that is not associated with "
    "the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again."
)


def check_strategy(strategy: Sequence[Mapping[str, Any]], providers: Sequence[str]) -> None:
    """Every provider of a strategy must be associated with the cluster."""
    for item in strategy:
        if item.get("capacityProvider") not in providers:
            raise InvalidParameterException(_NOT_ASSOCIATED)


def resolve_launch(req: Mapping[str, Any], cluster: Cluster, index: int, rng: random.Random) -> tuple[str, str | None]:
    """(launchType, capacityProviderName) of the index-th task of a RunTask call.

    No launchType, no strategy and no cluster default strategy means EC2 (ECS API model, RunTask).
    """
    if req.get("launchType"):
        return str(req["launchType"]), None
    strategy = req.get("capacityProviderStrategy") or cluster.default_strategy
    if not strategy:
        return "EC2", None
    check_strategy(strategy, cluster.capacity_providers)
    based = [s for s in strategy if s.get("base", 0) > index]
    if based:
        provider = str(based[0]["capacityProvider"])
    else:
        weights = [max(0, int(s.get("weight", 0))) for s in strategy]
        if sum(weights) == 0:
            weights = [1] + [0] * (len(strategy) - 1)
        provider = rng.choices([str(s["capacityProvider"]) for s in strategy], weights)[0]
    return ("FARGATE" if provider in FARGATE_PROVIDERS else "EC2"), provider


def ec2_reservation(
    td: TaskDefinition, overrides: Mapping[str, Any], cpu: int | None, memory: int | None
) -> tuple[int, int]:
    """CPU units and MiB an EC2 task reserves on its instance: task-level sizes, else its containers' sum."""
    by_name = {co.get("name"): co for co in overrides.get("containerOverrides") or []}
    containers = [(c, by_name.get(c["name"], {})) for c in td.body["containerDefinitions"]]
    if cpu is None:
        cpu = sum(int(o.get("cpu") or c.get("cpu") or 0) for c, o in containers)
    if memory is None:
        memory = sum(
            int(o.get("memory") or c.get("memory") or o.get("memoryReservation") or c.get("memoryReservation") or 0)
            for c, o in containers
        )
    return cpu, memory


@dataclass
class Placement:
    """Where one task goes, or why it cannot go anywhere."""

    instance: ContainerInstance | None = None
    failures: list[dict[str, str]] | None = None


class Capacity:
    """Container instances per cluster and the account-wide cap. Not thread-safe: callers lock."""

    def __init__(self, names: Names, rng: random.Random, max_tasks: int | None, max_vcpu: float | None) -> None:
        self._names = names
        self._rng = rng
        self.max_tasks = max_tasks
        self.max_vcpu = max_vcpu
        self._instances: dict[str, ContainerInstance] = {}  # by instance ID
        self._active: dict[str, int] = {}  # task ID -> CPU units, every task not yet STOPPED
        self.provider_limits: dict[str, int] = {}  # capacity provider -> tasks it can run at once
        self._providers: dict[str, str] = {}  # task ID -> its capacity provider, every task not yet STOPPED

    # -- container instances -------------------------------------------------------------------
    def register(
        self,
        cluster: Cluster,
        *,
        cpu: int,
        memory: int,
        ec2_instance_id: str | None = None,
        tags: list[dict[str, str]] | None = None,
        attributes: list[dict[str, str]] | None = None,
    ) -> ContainerInstance:
        if cpu < 0 or memory < 0:
            raise InvalidParameterException("Registered resources CPU and MEMORY must not be negative.")
        instance_id = uuid.uuid4().hex
        instance = ContainerInstance(
            instance_id=instance_id,
            arn=self._names.arn("container-instance", f"{cluster.name}/{instance_id}"),
            cluster_arn=cluster.arn,
            ec2_instance_id=ec2_instance_id or f"i-{instance_id[:17]}",
            cpu=cpu,
            memory=memory,
            registered_at=time.time(),
            tags=list(tags or []),
            attributes=list(attributes or []),
        )
        self._instances[instance_id] = instance
        return instance

    def instances(self, cluster: Cluster, status: str | None = None) -> list[ContainerInstance]:
        return [
            i
            for i in self._instances.values()
            if i.cluster_arn == cluster.arn and (status is None or i.status == status)
        ]

    def find(self, cluster: Cluster, ref: Any) -> ContainerInstance | None:
        instance = self._instances.get(str(ref or "").rsplit("/", 1)[-1])
        if instance is None or instance.cluster_arn != cluster.arn:
            return None
        return instance

    # -- placing and releasing tasks -------------------------------------------------------------
    def _over_cap(self, cpu: int) -> str | None:
        """The resource ("CPU" or "MEMORY") that is short when the account-wide cap leaves no room for one more task."""
        if self.max_tasks is not None and len(self._active) >= self.max_tasks:
            return "MEMORY"
        if self.max_vcpu is not None and (sum(self._active.values()) + cpu) / 1024 > self.max_vcpu:
            return "CPU"
        return None

    def _provider_full(self, provider: str | None) -> bool:
        """The capacity provider runs as many tasks as its cap allows."""
        limit = self.provider_limits.get(provider) if provider else None
        return limit is not None and sum(1 for p in self._providers.values() if p == provider) >= limit

    def place(
        self,
        cluster: Cluster,
        launch_type: str,
        cpu: int,
        memory: int,
        strategy: Sequence[Mapping[str, Any]] = (),
        *,
        provider: str | None = None,
    ) -> Placement:
        """Find room for one task; the caller then calls ``hold`` with the task."""
        if launch_type == "FARGATE":
            short = self._over_cap(cpu) or self._provider_full(provider)
            return Placement(failures=[{"arn": cluster.arn, "reason": FARGATE_CAPACITY}] if short else None)
        candidates = self.instances(cluster, "ACTIVE")
        if not candidates:
            raise InvalidParameterException(NO_CONTAINER_INSTANCES)
        capped = self._over_cap(cpu) or ("MEMORY" if self._provider_full(provider) else None)
        if capped:
            return Placement(failures=[{"arn": i.arn, "reason": f"RESOURCE:{capped}"} for i in candidates])
        fitting = [i for i in candidates if i.cpu - i.used_cpu >= cpu and i.memory - i.used_memory >= memory]
        if not fitting:
            return Placement(
                failures=[
                    {"arn": i.arn, "reason": "RESOURCE:CPU" if i.cpu - i.used_cpu < cpu else "RESOURCE:MEMORY"}
                    for i in candidates
                ]
            )
        return Placement(instance=self._choose(fitting, strategy))

    def _choose(self, fitting: list[ContainerInstance], strategy: Sequence[Mapping[str, Any]]) -> ContainerInstance:
        """The first rule of the placement strategy decides (binpack, spread by tasks, or random)."""
        rule = strategy[0] if strategy else {"type": "random"}
        if rule.get("type") == "binpack":
            if rule.get("field") == "cpu":
                return min(fitting, key=lambda i: i.cpu - i.used_cpu)
            return min(fitting, key=lambda i: i.memory - i.used_memory)
        if rule.get("type") == "spread":
            return min(fitting, key=lambda i: i.running_tasks + i.pending_tasks)
        return self._rng.choice(fitting)

    def hold(self, task: Task, instance: ContainerInstance | None, cpu: int, memory: int) -> None:
        self._active[task.task_id] = task.cpu or cpu
        if task.capacity_provider:
            self._providers[task.task_id] = task.capacity_provider
        if instance is not None:
            task.container_instance = instance
            instance.used_cpu += cpu
            instance.used_memory += memory
            instance.pending_tasks += 1
            task.reserved = (cpu, memory)

    def running(self, task: Task) -> None:
        """The task reached RUNNING: its instance counts it as running, not pending."""
        if task.container_instance is not None and task.counted_running is False:
            task.container_instance.pending_tasks -= 1
            task.container_instance.running_tasks += 1
            task.counted_running = True

    def release(self, task: Task) -> None:
        """The task is STOPPED: its resources are free again."""
        self._active.pop(task.task_id, None)
        self._providers.pop(task.task_id, None)
        instance = task.container_instance
        if instance is not None and task.reserved is not None:
            cpu, memory = task.reserved
            instance.used_cpu -= cpu
            instance.used_memory -= memory
            if task.counted_running:
                instance.running_tasks -= 1
            else:
                instance.pending_tasks -= 1
            task.reserved = None

    def active_tasks(self) -> int:
        return len(self._active)

    def set_provider_limit(self, provider: str, max_tasks: int | None) -> None:
        """Cap one capacity provider at ``max_tasks`` running tasks; None lifts the cap."""
        if max_tasks is not None and max_tasks < 0:
            raise ValueError("max_tasks must be 0 or more, or null for no cap")
        limits = dict(self.provider_limits)
        if max_tasks is None:
            limits.pop(provider, None)
        else:
            limits[provider] = max_tasks
        self.provider_limits = limits  # one assignment: a RunTask under way sees the old or the new caps
