"""The ECS API: each operation's request in, its answer out, over the emulator's in-memory state.

State lives in memory under one lock. The rules live with their concepts: request checks in
``validation``, where tasks go and whether they fit in ``placement``, the walk through statuses in
``lifecycle``, clientTokens in ``idempotency``, tags in ``tags``, ARNs in ``arns``, task definitions
in ``definitions``, the building of task records in ``launch``. This module holds the clusters and
tasks and calls the others in the order ECS applies its checks.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ecs_emulator.arns import Names
from ecs_emulator.definitions import TaskDefinitions
from ecs_emulator.errors import (
    ClientException,
    ClusterContainsContainerInstancesException,
    ClusterContainsTasksException,
    ClusterNotFoundException,
    InvalidParameterException,
    ThrottlingException,
)
from ecs_emulator.events import TaskEvents
from ecs_emulator.faults import FaultPlan
from ecs_emulator.idempotency import ClientTokens
from ecs_emulator.launch import new_task
from ecs_emulator.lifecycle import TaskLifecycle
from ecs_emulator.logs import LogsService
from ecs_emulator.model import (
    TERMINAL,
    Cluster,
    Task,
)
from ecs_emulator.placement import Capacity, check_strategy, ec2_reservation, resolve_launch
from ecs_emulator.profile import Profile
from ecs_emulator.runners import OOM_REASON, Runner
from ecs_emulator.tags import merge_tags, remove_tags, validate_tags
from ecs_emulator.throttle import TokenBucket
from ecs_emulator.timeline import Timeline
from ecs_emulator.validation import (
    check_describe_tasks,
    check_launch,
    check_list_tasks,
    check_stop_reason,
    page,
    parse_cpu,
    parse_memory,
    validate_run_task,
)

_log = logging.getLogger(__name__)

# A container instance registered without totalResources: the size of an m5.xlarge as ECS reports it.
DEFAULT_INSTANCE_CPU = 4096
DEFAULT_INSTANCE_MEMORY = 15_700
# DescribeContainerInstances accepts at most 100 IDs or ARNs (ECS API model).
MAX_DESCRIBE_INSTANCES = 100


class EcsService:
    """In-memory ECS for one account and Region."""

    def __init__(
        self,
        *,
        profile: Profile,
        timeline: Timeline,
        runner: Runner,
        faults: FaultPlan,
        logs: LogsService,
        rng: random.Random,
        region: str = "us-east-1",
    ) -> None:
        self.profile = profile
        self.region = region
        self.names = Names(region)
        self._timeline = timeline
        self._faults = faults
        self._rng = rng
        self._lock = threading.RLock()
        self._clusters: dict[str, Cluster] = {}
        self._definitions = TaskDefinitions(self.names)
        self._tasks: dict[str, Task] = {}
        # A task that left DescribeTasks (retention) while its clientToken is remembered: a repeated
        # RunTask with that token still answers with it, never with a new task.
        self._retired: dict[str, Task] = {}
        self._tokens = ClientTokens(on_forget=self._forget_retired)
        self._launched = 0  # tasks created so far: the n-th task's draws come from (seed, n)
        self.capacity = Capacity(self.names, rng, profile.capacity.max_tasks, profile.capacity.max_vcpu)
        self._launch_buckets = {
            "FARGATE": TokenBucket(b.capacity, b.rate) if (b := profile.fargate_launch) else None,
            "FARGATE_SPOT": TokenBucket(b.capacity, b.rate) if (b := profile.fargate_spot_launch) else None,
        }
        self.counters: Counter[str] = Counter()
        self.lifecycle = TaskLifecycle(
            lock=self._lock,
            profile=profile,
            timeline=timeline,
            runner=runner,
            faults=faults,
            logs=logs,
            counters=self.counters,
            on_running=self.capacity.running,
            on_stopped=self._stopped,
        )
        # ECS Task State Change events to moto's EventBridge, on every task transition (events.py).
        self.events = TaskEvents(
            account=self.names.account,
            region=region,
            timeline=timeline,
            faults=profile.faults.events,
            # its own generator: drawing from ``rng`` would change every seeded run's other draws
            rng=random.Random(None if profile.seed is None else profile.seed + 1),
            counters=self.counters,
            clock=time.time,
        )
        self.lifecycle.on_change = self.events.changed
        self.handlers: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateCluster": self.create_cluster,
            "DescribeClusters": self.describe_clusters,
            "DeleteCluster": self.delete_cluster,
            "ListClusters": self.list_clusters,
            "RegisterTaskDefinition": self.register_task_definition,
            "DescribeTaskDefinition": self.describe_task_definition,
            "DeregisterTaskDefinition": self.deregister_task_definition,
            "ListTaskDefinitions": self.list_task_definitions,
            "RegisterContainerInstance": self.register_container_instance,
            "DeregisterContainerInstance": self.deregister_container_instance,
            "DescribeContainerInstances": self.describe_container_instances,
            "ListContainerInstances": self.list_container_instances,
            "RunTask": self.run_task,
            "DescribeTasks": self.describe_tasks,
            "StopTask": self.stop_task,
            "ListTasks": self.list_tasks,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags_for_resource,
        }

    # ------------------------------------------------------------------ names and lookups
    def _arn(self, kind: str, name: str) -> str:
        return self.names.arn(kind, name)

    def _cluster(self, ref: Any) -> Cluster:
        name = str(ref or "default").rsplit("/", 1)[-1] if ref else "default"
        cluster = self._clusters.get(name)
        if cluster is None or cluster.status != "ACTIVE":
            raise ClusterNotFoundException("Cluster not found.")
        return cluster

    def _find_task(self, ref: Any, cluster: Cluster) -> Task | None:
        """The task ``ref`` names in ``cluster``; an ARN of another cluster, account or Region raises."""
        task = self._tasks.get(self.names.task_id(ref, cluster.name))
        if task is None or task.cluster_arn != cluster.arn or time.time() < task.visible_from:
            return None
        return task

    # ------------------------------------------------------------------ clusters
    def _describe_cluster(self, c: Cluster, include_tags: bool = False) -> dict[str, Any]:
        tasks = [t for t in self._tasks.values() if t.cluster_arn == c.arn and t.last_status != TERMINAL]
        return {
            "clusterArn": c.arn,
            "clusterName": c.name,
            "status": c.status,
            "registeredContainerInstancesCount": len(self.capacity.instances(c, "ACTIVE")),
            "runningTasksCount": sum(t.last_status == "RUNNING" for t in tasks),
            "pendingTasksCount": sum(t.last_status != "RUNNING" for t in tasks),
            "activeServicesCount": 0,
            "statistics": [],
            "tags": c.tags if include_tags else [],
            "settings": c.settings,
            "capacityProviders": c.capacity_providers,
            "defaultCapacityProviderStrategy": c.default_strategy,
            "attachments": [],
        }

    def create_cluster(self, req: dict[str, Any]) -> dict[str, Any]:
        name = req.get("clusterName") or "default"
        providers = list(req.get("capacityProviders") or [])
        strategy = [dict(s) for s in req.get("defaultCapacityProviderStrategy") or []]
        check_strategy(strategy, providers)
        with self._lock:
            existing = self._clusters.get(name)
            if existing is None or existing.status != "ACTIVE":
                existing = Cluster(
                    name,
                    self._arn("cluster", name),
                    providers,
                    strategy,
                    validate_tags(req.get("tags")),
                    list(req.get("settings") or [{"name": "containerInsights", "value": "disabled"}]),
                )
                self._clusters[name] = existing
                fleet = self.profile.container_instances
                for _ in range(fleet.count):
                    self.capacity.register(existing, cpu=fleet.cpu, memory=fleet.memory)
            return {"cluster": self._describe_cluster(existing, include_tags=True)}

    def describe_clusters(self, req: dict[str, Any]) -> dict[str, Any]:
        refs = req.get("clusters") or ["default"]
        include_tags = "TAGS" in (req.get("include") or [])
        clusters, failures = [], []
        with self._lock:
            for ref in refs:
                name = str(ref).rsplit("/", 1)[-1]
                c = self._clusters.get(name)
                if c is None:
                    failures.append({"arn": self._arn("cluster", name), "reason": "MISSING"})
                else:
                    clusters.append(self._describe_cluster(c, include_tags))
        return {"clusters": clusters, "failures": failures}

    def delete_cluster(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            c = self._cluster(req.get("cluster"))
            if any(t.cluster_arn == c.arn and t.last_status != TERMINAL for t in self._tasks.values()):
                # ECS API model, DeleteCluster errors: "You can't delete a cluster that has active tasks."
                raise ClusterContainsTasksException("The Cluster cannot be deleted while Tasks are active.")
            if self.capacity.instances(c, "ACTIVE"):
                # ECS API model, DeleteCluster: deregister every container instance first.
                raise ClusterContainsContainerInstancesException(
                    "The Cluster cannot be deleted while Container Instances are active or draining."
                )
            c.status = "INACTIVE"
            return {"cluster": self._describe_cluster(c)}

    def list_clusters(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"clusterArns": [c.arn for c in self._clusters.values() if c.status == "ACTIVE"]}

    # ------------------------------------------------------------------ task definitions
    def register_task_definition(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            td = self._definitions.register(req)
            return {"taskDefinition": td.describe(), "tags": td.tags}

    def describe_task_definition(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            td = self._definitions.resolve(req.get("taskDefinition"))
            out: dict[str, Any] = {"taskDefinition": td.describe()}
            if "TAGS" in (req.get("include") or []):
                out["tags"] = td.tags
            return out

    def deregister_task_definition(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"taskDefinition": self._definitions.deregister(req.get("taskDefinition")).describe()}

    def list_task_definitions(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            arns = self._definitions.arns(
                req.get("familyPrefix") or "", req.get("status") or "ACTIVE", req.get("sort") == "DESC"
            )
        return page(arns, req, "taskDefinitionArns")

    # ------------------------------------------------------------------ RunTask
    def run_task(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            cluster = self._cluster(req.get("cluster"))
            token = req.get("clientToken")
            replayed = self._tokens.replay(cluster.arn, token, req)
            if replayed is not None:
                self.counters["RunTask.idempotent_replay"] += 1
                ids = [arn.rsplit("/", 1)[-1] for arn in replayed]
                known = [t for i in ids if (t := self._tasks.get(i) or self._retired.get(i)) is not None]
                return {"tasks": [t.describe(include_tags=True) for t in known], "failures": []}
            td = self._definitions.resolve(req.get("taskDefinition"))
            if td.status != "ACTIVE":
                # ECS API model, DeregisterTaskDefinition: "You can't use an INACTIVE task definition to
                # run new tasks". AWS may allow it for up to 10 minutes after deregistration; we never do.
                raise ClientException(f"TaskDefinition is inactive: {td.arn}")
            validate_run_task(req, {c["name"] for c in td.body["containerDefinitions"]})
            count = int(req.get("count", 1))
            placements = [resolve_launch(req, cluster, i, self._rng) for i in range(count)]
            overrides = req.get("overrides") or {}
            cpu = parse_cpu(overrides.get("cpu")) or td.cpu
            memory = parse_memory(overrides.get("memory")) or td.memory
            platform = check_launch(req, td.body, placements[0][0], cpu, memory)
            if any(lt == "EC2" for lt, _ in placements) and not self.capacity.instances(cluster, "ACTIVE"):
                raise InvalidParameterException("No Container Instances were found in your cluster.")
            for launch_type, provider in set(placements):
                bucket = self._launch_buckets.get(provider or launch_type) if launch_type == "FARGATE" else None
                n = sum(1 for p in placements if p == (launch_type, provider))
                if bucket is not None and not bucket.try_take(n):
                    self.counters["RunTask.launch_throttled"] += 1
                    raise ThrottlingException()
            reserve_cpu, reserve_memory = ec2_reservation(td, overrides, cpu, memory)
            tasks: list[Task] = []
            failures: list[dict[str, str]] = []
            for launch_type, provider in placements:
                if launch_type == "EC2":
                    where = self.capacity.place(
                        cluster,
                        "EC2",
                        reserve_cpu,
                        reserve_memory,
                        req.get("placementStrategy") or (),
                        provider=provider,
                    )
                else:
                    where = self.capacity.place(cluster, "FARGATE", cpu or 0, memory or 0, provider=provider)
                if where.failures:
                    failures += [f for f in where.failures if f not in failures]
                    self.counters["RunTask.capacity_failures"] += 1
                    continue
                task = new_task(
                    req,
                    cluster,
                    td,
                    launch_type,
                    provider,
                    platform,
                    cpu,
                    memory,
                    names=self.names,
                    faults=self._faults,
                )
                task.rng = self._task_rng()
                self._tasks[task.task_id] = task
                self.capacity.hold(task, where.instance, reserve_cpu, reserve_memory)
                self.lifecycle.start(task)
                self.lifecycle.changed(task)  # the new task's first event (PROVISIONING, version 1)
                tasks.append(task)
            self._tokens.remember(cluster.arn, token, req, [t.arn for t in tasks])
            self.counters["tasks_launched"] += len(tasks)
            return {"tasks": [t.describe(include_tags=True) for t in tasks], "failures": failures}

    def _stopped(self, task: Task) -> None:
        """The lifecycle's last step: free the task's capacity; keep it describable for a while."""
        self.capacity.release(task)
        self._timeline.call_later(self.profile.stopped_task_retention, lambda: self._expire(task))

    def _expire(self, task: Task) -> None:
        with self._lock:
            self._tasks.pop(task.task_id, None)
            if task.client_token:
                self._retired[task.task_id] = task

    def _task_rng(self) -> random.Random:
        """A new task's own generator, seeded by (profile seed, the task's place in launch order).

        Two runs of one seeded profile give their n-th tasks the same lifecycle even when API calls,
        placement draws and transitions interleave differently. Unseeded: a draw from the service's.
        """
        self._launched += 1
        if self.profile.seed is None:
            return random.Random(self._rng.random())
        return random.Random(f"{self.profile.seed}/task/{self._launched}")

    def _forget_retired(self, task_arns: tuple[str, ...]) -> None:
        for arn in task_arns:
            self._retired.pop(arn.rsplit("/", 1)[-1], None)

    # ------------------------------------------------------------------ describe, stop, list
    def describe_tasks(self, req: dict[str, Any]) -> dict[str, Any]:
        refs = check_describe_tasks(req.get("tasks"))
        include_tags = "TAGS" in (req.get("include") or [])
        tasks, failures = [], []
        with self._lock:
            cluster = self._cluster(req.get("cluster"))
            # Any ARN of another cluster, account or Region fails the whole call, so look at all first.
            found = [(ref, self._find_task(ref, cluster)) for ref in refs]
            for ref, task in found:
                if task is None:
                    arn = ref if str(ref).startswith("arn:") else self._arn("task", f"{cluster.name}/{ref}")
                    failures.append({"arn": arn, "reason": "MISSING"})
                else:
                    tasks.append(task.describe(include_tags=include_tags))
        return {"tasks": tasks, "failures": failures}

    def stop_task(self, req: dict[str, Any]) -> dict[str, Any]:
        reason = check_stop_reason(req.get("reason"))
        with self._lock:
            cluster = self._cluster(req.get("cluster"))
            task = self._find_task(req.get("task"), cluster)
            if task is None:
                raise InvalidParameterException("The referenced task was not found.")
            self.lifecycle.begin_stop(task, "UserInitiated", reason or "Task stopped by user")
            # ECS API model, StopTask: "Any tags associated with the task will be deleted."
            task.tags.clear()
            return {"task": task.describe()}

    def list_tasks(self, req: dict[str, Any]) -> dict[str, Any]:
        check_list_tasks(req)
        desired = req.get("desiredStatus") or "RUNNING"
        with self._lock:
            cluster = self._cluster(req.get("cluster"))
            instance_arn = None
            if req.get("containerInstance"):
                instance = self.capacity.find(cluster, req["containerInstance"])
                instance_arn = instance.arn if instance is not None else ""
            now = time.time()
            arns = [
                t.arn
                for t in self._tasks.values()
                if t.cluster_arn == cluster.arn
                and t.visible_from <= now
                and t.desired_status == desired
                and (not req.get("family") or t.task_definition.family == req["family"])
                and (not req.get("startedBy") or t.started_by == req["startedBy"])
                and (not req.get("launchType") or t.launch_type == req["launchType"])
                and (instance_arn is None or (t.container_instance and t.container_instance.arn) == instance_arn)
            ]
        return page(arns, req, "taskArns")

    # ------------------------------------------------------------------ container instances
    def register_container_instance(self, req: dict[str, Any]) -> dict[str, Any]:
        """What the ECS agent calls when an EC2 instance joins a cluster; here, one way to add EC2 capacity."""
        resources = {r.get("name"): r for r in req.get("totalResources") or []}
        cpu = int((resources.get("CPU") or {}).get("integerValue") or DEFAULT_INSTANCE_CPU)
        memory = int((resources.get("MEMORY") or {}).get("integerValue") or DEFAULT_INSTANCE_MEMORY)
        ec2_id = None
        document = req.get("instanceIdentityDocument")
        if document:
            try:
                ec2_id = json.loads(document).get("instanceId")
            except (ValueError, AttributeError):
                raise InvalidParameterException("instanceIdentityDocument is not a valid identity document.") from None
        with self._lock:
            cluster = self._cluster(req.get("cluster"))
            instance = self.capacity.register(
                cluster,
                cpu=cpu,
                memory=memory,
                ec2_instance_id=ec2_id,
                tags=validate_tags(req.get("tags")),
                attributes=[dict(a) for a in req.get("attributes") or []],
            )
            return {"containerInstance": instance.describe(include_tags=True)}

    def add_container_instances(self, cluster_ref: str, count: int, cpu: int, memory: int) -> list[str]:
        """Register ``count`` container instances of ``cpu`` units and ``memory`` MiB (the control API)."""
        with self._lock:
            cluster = self._cluster(cluster_ref)
            return [self.capacity.register(cluster, cpu=cpu, memory=memory).arn for _ in range(count)]

    def deregister_container_instance(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            cluster = self._cluster(req.get("cluster"))
            instance = self.capacity.find(cluster, req.get("containerInstance"))
            if instance is None or instance.status == "INACTIVE":
                raise InvalidParameterException("The referenced container instance was not found.")
            if instance.running_tasks + instance.pending_tasks and not req.get("force"):
                raise InvalidParameterException(
                    "The specified container instance has tasks running. Stop them, or deregister with force."
                )
            instance.status = "INACTIVE"
            return {"containerInstance": instance.describe()}

    def describe_container_instances(self, req: dict[str, Any]) -> dict[str, Any]:
        refs = req.get("containerInstances") or []
        if not refs:
            raise InvalidParameterException("Container instances cannot be empty.")
        if len(refs) > MAX_DESCRIBE_INSTANCES:
            raise InvalidParameterException(f"containerInstances can have at most {MAX_DESCRIBE_INSTANCES} items.")
        include_tags = "TAGS" in (req.get("include") or [])
        found, failures = [], []
        with self._lock:
            cluster = self._cluster(req.get("cluster"))
            for ref in refs:
                instance = self.capacity.find(cluster, ref)
                if instance is None:
                    failures.append({"arn": str(ref), "reason": "MISSING"})
                else:
                    found.append(instance.describe(include_tags=include_tags))
        return {"containerInstances": found, "failures": failures}

    def list_container_instances(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            cluster = self._cluster(req.get("cluster"))
            status = req.get("status")
            arns = [
                i.arn
                for i in self.capacity.instances(cluster)
                if (i.status == status if status else i.status != "INACTIVE")
            ]
        return page(arns, req, "containerInstanceArns")

    # ------------------------------------------------------------------ tags
    def _tag_owner(self, arn: Any) -> list[dict[str, str]]:
        text = str(arn or "")
        if ":cluster/" in text:
            return self._cluster(text).tags
        if ":task-definition/" in text:
            return self._definitions.resolve(text).tags
        if ":task/" in text:
            parts = text.split(":", 5)[-1].split("/")
            if len(parts) == 3:
                cluster = self._clusters.get(parts[1])
                task = self._tasks.get(parts[2])
                if cluster is not None and task is not None and task.cluster_arn == cluster.arn:
                    return task.tags
        if ":container-instance/" in text:
            parts = text.split(":", 5)[-1].split("/")
            if len(parts) == 3 and (c := self._clusters.get(parts[1])) is not None:
                found = self.capacity.find(c, parts[2])
                if found is not None:
                    return found.tags
        raise InvalidParameterException("The specified resource is not valid.")

    def tag_resource(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            merge_tags(self._tag_owner(req.get("resourceArn")), req.get("tags") or [])
        return {}

    def untag_resource(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            remove_tags(self._tag_owner(req.get("resourceArn")), req.get("tagKeys") or [])
        return {}

    def list_tags_for_resource(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"tags": list(self._tag_owner(req.get("resourceArn")))}

    # ------------------------------------------------------------------ control
    def inject_task_fault(self, kind: str, task_ref: str) -> None:
        """Apply a fault to one task now: Spot interruption or an OOM kill."""
        with self._lock:
            task = self._tasks.get(task_ref.rsplit("/", 1)[-1])
            if task is None:
                raise KeyError(f"no task {task_ref}")
            if kind == "spot_interruption":
                self._faults.injected[kind] += 1
                self.lifecycle.interrupt_spot(task)
            elif kind == "oom":
                self._faults.injected[kind] += 1
                for c in task.containers:
                    if c.essential and c.live and c.handle is not None:
                        c.forced_reason = OOM_REASON
                        c.handle.signal(signal.SIGKILL)
                        break
            else:
                raise ValueError(f"fault {kind!r} cannot target one task; use spot_interruption or oom")

    def set_capacity(self, max_tasks: int | None, max_vcpu: float | None = None) -> None:
        with self._lock:
            self.capacity.max_tasks = max_tasks
            self.capacity.max_vcpu = max_vcpu

    def task_rows(self, *, with_overrides: bool = False) -> list[dict[str, Any]]:
        """A summary of every task; ``with_overrides`` adds the RunTask overrides (commands and all)."""
        with self._lock:
            return [
                {
                    **({"overrides": t.overrides} if with_overrides else {}),
                    "taskArn": t.arn,
                    "family": t.task_definition.family,
                    "lastStatus": t.last_status,
                    "desiredStatus": t.desired_status,
                    "version": t.version,
                    "startedBy": t.started_by,
                    "clientToken": t.client_token,
                    "stopCode": t.stop_code,
                    "stoppedReason": t.stopped_reason,
                    "capacityProviderName": t.capacity_provider,
                    "createdAt": t.created_at,
                    "startedAt": t.started_at,
                    "stoppedAt": t.stopped_at,
                    "containers": [
                        {
                            "name": c.name,
                            "lastStatus": c.last_status,
                            "exitCode": c.exit_code,
                            "reason": c.reason,
                            "tail": list(c.tail)[-20:],
                        }
                        for c in t.containers
                    ],
                }
                for t in self._tasks.values()
            ]

    def close(self) -> None:
        with self._lock:
            live = [c for t in self._tasks.values() for c in t.containers if c.live]
        for c in live:
            if c.handle is not None:
                c.handle.signal(signal.SIGKILL)
