"""The ECS API and the task lifecycle.

State lives in memory under one lock. Each task walks PROVISIONING -> PENDING -> ACTIVATING ->
RUNNING -> DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED on the shared timeline, with the
profile's timing; its containers are started by the runner and their exits drive the stop.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ecs_emulator import awslogs as awslogs_driver
from ecs_emulator.errors import (
    ClientException,
    ClusterNotFoundException,
    ConflictException,
    InvalidParameterException,
    PlatformUnknownException,
    ThrottlingException,
)
from ecs_emulator.faults import FaultPlan
from ecs_emulator.logs import LogsService
from ecs_emulator.model import (
    ACCOUNT,
    TERMINAL,
    Cluster,
    Container,
    Task,
    TaskDefinition,
)
from ecs_emulator.profile import Profile
from ecs_emulator.runners import OOM_REASON, ContainerSpec, Runner, StartError
from ecs_emulator.throttle import TokenBucket
from ecs_emulator.timeline import Timeline
from ecs_emulator.validation import (
    check_fargate_size,
    parse_cpu,
    parse_memory,
    validate_run_task,
    validate_tags,
    validate_task_definition,
)

_log = logging.getLogger(__name__)

# DescribeTasks accepts at most 100 task IDs or ARNs per call (ECS API model).
MAX_DESCRIBE = 100
DEFAULT_STOP_TIMEOUT = 30.0  # seconds between SIGTERM and SIGKILL unless the container sets stopTimeout
FARGATE_PLATFORMS = {"LATEST": "1.4.0", "1.4.0": "1.4.0", "1.3.0": "1.3.0"}
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
ESSENTIAL_EXITED = "Essential container in task exited"
SPOT_REASON = "Your Spot Task was interrupted."
FARGATE_CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone"


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
        self._timeline = timeline
        self._runner = runner
        self._faults = faults
        self._logs = logs
        self._rng = rng
        self._lock = threading.RLock()
        self._clusters: dict[str, Cluster] = {}
        self._families: dict[str, list[TaskDefinition]] = {}
        self._tasks: dict[str, Task] = {}
        self._active: dict[str, Task] = {}  # tasks not yet STOPPED: what counts against capacity
        self._tokens: dict[str, tuple[str, list[str]]] = {}
        self._max_tasks = profile.capacity.max_tasks
        self._max_vcpu = profile.capacity.max_vcpu
        self._launch_buckets = {
            "FARGATE": TokenBucket(b.capacity, b.rate) if (b := profile.fargate_launch) else None,
            "FARGATE_SPOT": TokenBucket(b.capacity, b.rate) if (b := profile.fargate_spot_launch) else None,
        }
        self.counters: Counter[str] = Counter()
        self.handlers: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateCluster": self.create_cluster,
            "DescribeClusters": self.describe_clusters,
            "DeleteCluster": self.delete_cluster,
            "ListClusters": self.list_clusters,
            "RegisterTaskDefinition": self.register_task_definition,
            "DescribeTaskDefinition": self.describe_task_definition,
            "DeregisterTaskDefinition": self.deregister_task_definition,
            "ListTaskDefinitions": self.list_task_definitions,
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
        return f"arn:aws:ecs:{self.region}:{ACCOUNT}:{kind}/{name}"

    def _cluster(self, ref: Any) -> Cluster:
        name = str(ref or "default").rsplit("/", 1)[-1] if ref else "default"
        cluster = self._clusters.get(name)
        if cluster is None or cluster.status != "ACTIVE":
            raise ClusterNotFoundException("Cluster not found.")
        return cluster

    def _task_definition(self, ref: Any) -> TaskDefinition:
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

    def _find_task(self, ref: Any) -> Task | None:
        task_id = str(ref).rsplit("/", 1)[-1]
        task = self._tasks.get(task_id)
        if task is None or time.time() < task.visible_from:
            return None
        return task

    # ------------------------------------------------------------------ clusters
    def _describe_cluster(self, c: Cluster, include_tags: bool = False) -> dict[str, Any]:
        tasks = [t for t in self._tasks.values() if t.cluster_arn == c.arn and t.last_status != TERMINAL]
        return {
            "clusterArn": c.arn,
            "clusterName": c.name,
            "status": c.status,
            "registeredContainerInstancesCount": 0,
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
        for item in strategy:
            if item.get("capacityProvider") not in providers:
                raise InvalidParameterException(
                    "The specified capacity provider strategy cannot contain a capacity provider that is not "
                    "associated with the cluster. Associate the capacity provider with the cluster or specify "
                    "a valid capacity provider and try again."
                )
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
                raise ClientException("The Cluster cannot be deleted while Tasks are active.")
            c.status = "INACTIVE"
            return {"cluster": self._describe_cluster(c)}

    def list_clusters(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"clusterArns": [c.arn for c in self._clusters.values() if c.status == "ACTIVE"]}

    # ------------------------------------------------------------------ task definitions
    def register_task_definition(self, req: dict[str, Any]) -> dict[str, Any]:
        cpu, memory = validate_task_definition(req)
        tags = validate_tags(req.get("tags"))
        family = req["family"]
        containers = []
        for given in req["containerDefinitions"]:
            c = dict(given)
            c.setdefault("essential", True)
            for key in (
                "portMappings",
                "environment",
                "mountPoints",
                "volumesFrom",
                "environmentFiles",
                "systemControls",
                "credentialSpecs",
            ):
                c.setdefault(key, [])
            c.setdefault("cpu", 0)
            containers.append(c)
        network_mode = req.get("networkMode") or "bridge"
        compat = ["EC2"]
        if network_mode == "awsvpc" and cpu is not None and memory is not None:
            compat.append("FARGATE")
        with self._lock:
            revisions = self._families.setdefault(family, [])
            revision = revisions[-1].revision + 1 if revisions else 1
            arn = self._arn("task-definition", f"{family}:{revision}")
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
                "registeredBy": f"arn:aws:iam::{ACCOUNT}:root",
            }
            for key in (
                "taskRoleArn",
                "executionRoleArn",
                "runtimePlatform",
                "pidMode",
                "ipcMode",
                "ephemeralStorage",
            ):
                if req.get(key):
                    body[key] = req[key]
            if req.get("cpu") is not None:
                body["cpu"] = str(cpu)
            if req.get("memory") is not None:
                body["memory"] = str(memory)
            td = TaskDefinition(family, revision, arn, body, tags, cpu, memory)
            revisions.append(td)
            return {"taskDefinition": td.describe(), "tags": tags}

    def describe_task_definition(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            td = self._task_definition(req.get("taskDefinition"))
            out: dict[str, Any] = {"taskDefinition": td.describe()}
            if "TAGS" in (req.get("include") or []):
                out["tags"] = td.tags
            return out

    def deregister_task_definition(self, req: dict[str, Any]) -> dict[str, Any]:
        ref = str(req.get("taskDefinition") or "")
        if ":" not in ref.split(":task-definition/", 1)[-1]:
            raise ClientException("Invalid revision number. Number: ")
        with self._lock:
            td = self._task_definition(ref)
            if td.status == "ACTIVE":
                td.status = "INACTIVE"
                td.deregistered_at = time.time()
            return {"taskDefinition": td.describe()}

    def list_task_definitions(self, req: dict[str, Any]) -> dict[str, Any]:
        prefix = req.get("familyPrefix") or ""
        status = req.get("status") or "ACTIVE"
        with self._lock:
            arns = [
                td.arn
                for family in sorted(self._families)
                if family.startswith(prefix)
                for td in self._families[family]
                if status in ("ALL", td.status)
            ]
        if req.get("sort") == "DESC":
            arns.reverse()
        return _page(arns, req, "taskDefinitionArns")

    # ------------------------------------------------------------------ RunTask
    def _placement(self, req: Mapping[str, Any], cluster: Cluster, index: int) -> tuple[str, str | None]:
        """(launchType, capacityProviderName) for the index-th task of a RunTask call."""
        if req.get("launchType"):
            return req["launchType"], None
        strategy = req.get("capacityProviderStrategy") or cluster.default_strategy
        if not strategy:
            return "EC2", None
        for item in strategy:
            if item.get("capacityProvider") not in cluster.capacity_providers:
                raise InvalidParameterException(
                    "The specified capacity provider strategy cannot contain a capacity provider that is not "
                    "associated with the cluster. Associate the capacity provider with the cluster or specify "
                    "a valid capacity provider and try again."
                )
        based = [s for s in strategy if s.get("base", 0) > index]
        if based:
            provider = based[0]["capacityProvider"]
        else:
            weights = [max(0, int(s.get("weight", 0))) for s in strategy]
            if sum(weights) == 0:
                weights = [1] + [0] * (len(strategy) - 1)
            provider = self._rng.choices([s["capacityProvider"] for s in strategy], weights)[0]
        return ("FARGATE" if provider in FARGATE_PROVIDERS else "EC2"), provider

    def _capacity_failure(self, launch_type: str, cpu_units: int) -> str | None:
        if self._max_tasks is not None and len(self._active) >= self._max_tasks:
            return FARGATE_CAPACITY if launch_type == "FARGATE" else "RESOURCE:MEMORY"
        if self._max_vcpu is not None:
            used = sum((t.cpu or 0) for t in self._active.values()) / 1024
            if used + cpu_units / 1024 > self._max_vcpu:
                return FARGATE_CAPACITY if launch_type == "FARGATE" else "RESOURCE:CPU"
        return None

    def run_task(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            cluster = self._cluster(req.get("cluster"))
            td = self._task_definition(req.get("taskDefinition"))
            if td.status != "ACTIVE" and ":" not in str(req.get("taskDefinition")).split("/")[-1]:
                raise ClientException("TaskDefinition is inactive")
            validate_run_task(req, {c["name"] for c in td.body["containerDefinitions"]})
            token = req.get("clientToken")
            fingerprint = json.dumps({k: v for k, v in req.items() if k != "clientToken"}, sort_keys=True)
            if token and token in self._tokens:
                original, task_ids = self._tokens[token]
                if original != fingerprint:
                    raise ConflictException(
                        "The clientToken is already in use with a different RunTask request.",
                        extra={"resourceIds": [self._tasks[i].arn for i in task_ids if i in self._tasks]},
                    )
                self.counters["RunTask.idempotent_replay"] += 1
                return {
                    "tasks": [self._tasks[i].describe(include_tags=True) for i in task_ids if i in self._tasks],
                    "failures": [],
                }
            count = int(req.get("count", 1))
            placements = [self._placement(req, cluster, i) for i in range(count)]
            overrides = req.get("overrides") or {}
            cpu = parse_cpu(overrides.get("cpu")) or td.cpu
            memory = parse_memory(overrides.get("memory")) or td.memory
            platform = self._check_launch(req, td, placements[0][0], cpu, memory)
            for launch_type, provider in set(placements):
                bucket = self._launch_buckets.get(provider or launch_type) if launch_type == "FARGATE" else None
                n = sum(1 for p in placements if p == (launch_type, provider))
                if bucket is not None and not bucket.try_take(n):
                    self.counters["RunTask.launch_throttled"] += 1
                    raise ThrottlingException()
            tasks: list[Task] = []
            failures: list[dict[str, Any]] = []
            for launch_type, provider in placements:
                reason = self._capacity_failure(launch_type, cpu or 0)
                if reason:
                    failures.append({"arn": cluster.arn, "reason": reason})
                    self.counters["RunTask.capacity_failures"] += 1
                    continue
                task = self._new_task(req, cluster, td, launch_type, provider, platform, cpu, memory)
                tasks.append(task)
            if token and tasks:
                self._tokens[token] = (fingerprint, [t.task_id for t in tasks])
            self.counters["tasks_launched"] += len(tasks)
            return {"tasks": [t.describe(include_tags=True) for t in tasks], "failures": failures}

    def _check_launch(
        self,
        req: Mapping[str, Any],
        td: TaskDefinition,
        launch_type: str,
        cpu: int | None,
        memory: int | None,
    ) -> str | None:
        platform = req.get("platformVersion")
        network = td.body["networkMode"]
        if launch_type == "FARGATE":
            if "FARGATE" not in td.body["compatibilities"]:
                raise InvalidParameterException("Task definition does not support launch_type FARGATE.")
            if platform is not None and platform not in FARGATE_PLATFORMS:
                raise PlatformUnknownException("The specified platform does not exist.")
            # A FARGATE-compatible definition has both.
            assert cpu is not None
            assert memory is not None
            check_fargate_size(cpu, memory)
            platform = FARGATE_PLATFORMS[platform or "LATEST"]
        elif platform is not None:
            raise InvalidParameterException("The platform version must be null when specifying an EC2 launch type.")
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
        return platform

    def _new_task(
        self,
        req: Mapping[str, Any],
        cluster: Cluster,
        td: TaskDefinition,
        launch_type: str,
        provider: str | None,
        platform: str | None,
        cpu: int | None,
        memory: int | None,
    ) -> Task:
        task_id = uuid.uuid4().hex
        arn = self._arn("task", f"{cluster.name}/{task_id}")
        now = time.time()
        overrides = req.get("overrides") or {}
        by_name = {co["name"]: co for co in overrides.get("containerOverrides") or []}
        containers = [
            self._container(td, cdef, by_name.get(cdef["name"], {}), cluster, task_id, memory, index)
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
        tags = validate_tags(req.get("tags"))
        if req.get("propagateTags") == "TASK_DEFINITION":
            given = {t["key"] for t in tags}
            tags = tags + [t for t in td.tags if t["key"] not in given]
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
            availability_zone=f"{self.region}{'abc'[zlib.crc32(zone_seed.encode()) % 3]}",
            eni=eni,
            client_token=req.get("clientToken"),
            visible_from=now + self._faults.invisible_for(),
            start_failure=self._faults.start_failure(containers[0].image),
        )
        self._tasks[task_id] = task
        self._active[task_id] = task
        self._after(self.profile.lifecycle.provisioning.sample(self._rng), task, self._to_pending)
        return task

    def _container(
        self,
        td: TaskDefinition,
        cdef: Mapping[str, Any],
        override: Mapping[str, Any],
        cluster: Cluster,
        task_id: str,
        task_memory: int | None,
        index: int,
    ) -> Container:
        env = {e["name"]: e.get("value", "") for e in cdef.get("environment") or []}
        env.update({e["name"]: e.get("value", "") for e in override.get("environment") or []})
        env.setdefault("AWS_REGION", self.region)
        env.setdefault("AWS_DEFAULT_REGION", self.region)
        command = override.get("command") if override.get("command") is not None else cdef.get("command")
        argv = list(cdef.get("entryPoint") or []) + list(command or [])
        runtime_id = f"{task_id}-{index}"
        awslogs = awslogs_driver.target(
            cdef.get("logConfiguration"), container_name=cdef["name"], task_id=task_id, container_id=runtime_id
        )
        memory = override.get("memory") or cdef.get("memory") or task_memory
        return Container(
            name=cdef["name"],
            arn=self._arn("container", f"{cluster.name}/{task_id}/{uuid.uuid4()}"),
            image=cdef["image"],
            essential=bool(cdef.get("essential", True)),
            argv=argv,
            environment=env,
            stop_timeout=float(cdef.get("stopTimeout") or DEFAULT_STOP_TIMEOUT),
            memory_limit_mib=int(memory) if memory else None,
            cpu=int(override.get("cpu") or cdef.get("cpu") or 0),
            working_directory=cdef.get("workingDirectory"),
            awslogs=awslogs,
            runtime_id=runtime_id,
        )

    # ------------------------------------------------------------------ lifecycle
    def _after(self, delay: float, task: Task, step: Callable[[Task], None]) -> None:
        def run() -> None:
            with self._lock:
                step(task)

        self._timeline.call_later(delay, run)

    def _set_status(self, task: Task, status: str) -> None:
        task.last_status = status
        task.version += 1

    def _to_pending(self, task: Task) -> None:
        if task.last_status != "PROVISIONING" or task.desired_status != "RUNNING":
            return
        self._set_status(task, "PENDING")
        task.pull_started_at = time.time()
        self._after(self.profile.lifecycle.pending.sample(self._rng), task, self._pulled)

    def _pulled(self, task: Task) -> None:
        if task.last_status != "PENDING" or task.desired_status != "RUNNING":
            return
        reason = task.start_failure or self._prepare_logs(task)
        if reason:
            for c in task.containers:
                c.reason = reason
            self.counters["tasks_failed_to_start"] += 1
            self._begin_stop(task, "TaskFailedToStart", reason)
            return
        task.pull_stopped_at = time.time()
        self._set_status(task, "ACTIVATING")
        self._after(self.profile.lifecycle.activating.sample(self._rng), task, self._activate)

    def _prepare_logs(self, task: Task) -> str | None:
        for c in task.containers:
            if c.awslogs is None:
                continue
            reason = awslogs_driver.start(self._logs, c.awslogs, fargate=task.launch_type == "FARGATE")
            if reason:
                return reason
        return None

    def _activate(self, task: Task) -> None:
        if task.last_status != "ACTIVATING" or task.desired_status != "RUNNING":
            return
        task.starting = True
        threading.Thread(target=self._start_containers, args=(task,), name="ecs-emulator-start", daemon=True).start()

    def _start_containers(self, task: Task) -> None:
        """Start every container outside the lock (process creation is slow), then record them."""
        started: list[tuple[Container, Any]] = []
        failure: str | None = None
        for c in task.containers:
            spec = ContainerSpec(
                task_id=task.task_id,
                name=c.name,
                image=c.image,
                argv=c.argv,
                environment=c.environment,
                working_directory=c.working_directory,
                memory_limit_mib=c.memory_limit_mib if self.profile.enforce_memory else None,
                labels={"com.amazonaws.ecs.task-arn": task.arn},
            )
            try:
                handle = self._runner.start(spec, self._output_sink(c), self._exit_sink(task, c))
            except StartError as exc:
                failure = str(exc)
                c.reason = failure
                break
            started.append((c, handle))
        with self._lock:
            task.starting = False
            for c, handle in started:
                c.handle = handle
                if c.last_status != TERMINAL:
                    c.last_status = "RUNNING"
            if failure:
                for _, handle in started:
                    handle.signal(signal.SIGKILL)
                self.counters["tasks_failed_to_start"] += 1
                if task.desired_status == TERMINAL:  # StopTask came first; it keeps its stop code
                    self._continue_stop(task)
                else:
                    self._begin_stop(task, "TaskFailedToStart", failure)
                return
            task.started_at = time.time()
            if task.eni:
                task.eni["status"] = "ATTACHED"
            self._set_status(task, "RUNNING")
            if task.desired_status == TERMINAL:  # StopTask arrived while the containers were starting
                self._continue_stop(task)
                return
            task.spot_after = self._faults.spot_interruption_after(task.is_spot)
            if task.spot_after is not None:
                self._after(task.spot_after, task, self._interrupt_spot)
            self._check_essential(task)

    def _output_sink(self, c: Container) -> Callable[[int, str], None]:
        target = c.awslogs

        def sink(ts: int, line: str) -> None:
            c.tail.append(line)
            if target is not None:
                self._logs.append(target.group, target.stream, awslogs_driver.events(ts, line))

        return sink

    def _exit_sink(self, task: Task, c: Container) -> Callable[[int, str | None], None]:
        def on_exit(code: int, reason: str | None) -> None:
            with self._lock:
                c.last_status = TERMINAL
                c.exit_code = code
                c.reason = c.forced_reason or reason
                if c.forced_reason == OOM_REASON:
                    c.exit_code = 137
                if task.starting:
                    return  # _start_containers looks at the exit once it has recorded every container
                self._check_essential(task)
                self._maybe_execution_stopped(task)

        return on_exit

    def _check_essential(self, task: Task) -> None:
        if task.desired_status == "RUNNING" and any(c.essential and c.last_status == TERMINAL for c in task.containers):
            self._begin_stop(task, "EssentialContainerExited", ESSENTIAL_EXITED)

    def _interrupt_spot(self, task: Task) -> None:
        if task.last_status == "RUNNING" and task.desired_status == "RUNNING":
            self.counters["spot_interruptions"] += 1
            self._begin_stop(task, "SpotInterruption", SPOT_REASON)

    def _begin_stop(self, task: Task, code: str, reason: str) -> None:
        if task.desired_status == TERMINAL:
            return
        task.desired_status = TERMINAL
        task.stop_code = code
        task.stopped_reason = reason
        task.stopping_at = time.time()
        task.version += 1
        if not task.starting:  # else _start_containers sees the stop request and continues it
            self._continue_stop(task)

    def _continue_stop(self, task: Task) -> None:
        if task.last_status == "RUNNING":
            self._set_status(task, "DEACTIVATING")
            self._after(self.profile.lifecycle.deactivating.sample(self._rng), task, self._deactivated)
        else:  # nothing runs yet: no container to signal
            for c in task.containers:
                c.last_status = TERMINAL
            self._set_status(task, "STOPPING")
            self._maybe_execution_stopped(task)

    def _deactivated(self, task: Task) -> None:
        if task.last_status != "DEACTIVATING":
            return
        self._set_status(task, "STOPPING")
        for c in task.containers:
            if c.live and c.handle is not None:
                c.handle.signal(signal.SIGTERM)
                self._timeline.call_later(c.stop_timeout, self._killer(c))
        self._maybe_execution_stopped(task)

    def _killer(self, c: Container) -> Callable[[], None]:
        def kill() -> None:  # SIGKILL once stopTimeout has passed, if SIGTERM was not enough
            with self._lock:
                if c.live and c.handle is not None:
                    c.handle.signal(signal.SIGKILL)

        return kill

    def _maybe_execution_stopped(self, task: Task) -> None:
        if task.last_status != "STOPPING" or task.execution_stopped_at is not None:
            return
        if any(c.live for c in task.containers):
            return
        task.execution_stopped_at = time.time()
        self._after(self.profile.lifecycle.stopping.sample(self._rng), task, self._deprovision)

    def _deprovision(self, task: Task) -> None:
        self._set_status(task, "DEPROVISIONING")
        if task.eni:
            task.eni["status"] = "DELETED"
        self._after(self.profile.lifecycle.deprovisioning.sample(self._rng), task, self._stopped)

    def _stopped(self, task: Task) -> None:
        task.stopped_at = time.time()
        self._set_status(task, TERMINAL)
        self._active.pop(task.task_id, None)
        self.counters[f"stopped.{task.stop_code}"] += 1
        self._timeline.call_later(self.profile.stopped_task_retention, lambda: self._expire(task))

    def _expire(self, task: Task) -> None:
        with self._lock:
            self._tasks.pop(task.task_id, None)
            if task.client_token and task.client_token in self._tokens:
                _, ids = self._tokens[task.client_token]
                if not any(i in self._tasks for i in ids):
                    del self._tokens[task.client_token]

    # ------------------------------------------------------------------ describe, stop, list
    def describe_tasks(self, req: dict[str, Any]) -> dict[str, Any]:
        refs = req.get("tasks")
        if not refs:
            raise InvalidParameterException("Tasks cannot be empty.")
        if len(refs) > MAX_DESCRIBE:
            raise InvalidParameterException(f"Tasks cannot be longer than {MAX_DESCRIBE}.")
        include_tags = "TAGS" in (req.get("include") or [])
        tasks, failures = [], []
        with self._lock:
            cluster = self._cluster(req.get("cluster"))
            for ref in refs:
                task = self._find_task(ref)
                if task is None or task.cluster_arn != cluster.arn:
                    arn = ref if str(ref).startswith("arn:") else self._arn("task", f"{cluster.name}/{ref}")
                    failures.append({"arn": arn, "reason": "MISSING"})
                else:
                    tasks.append(task.describe(include_tags=include_tags))
        return {"tasks": tasks, "failures": failures}

    def stop_task(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            cluster = self._cluster(req.get("cluster"))
            task = self._find_task(req.get("task") or "")
            if task is None or task.cluster_arn != cluster.arn:
                raise InvalidParameterException("The referenced task was not found.")
            self._begin_stop(task, "UserInitiated", req.get("reason") or "Task stopped by user")
            return {"task": task.describe()}

    def list_tasks(self, req: dict[str, Any]) -> dict[str, Any]:
        desired = req.get("desiredStatus") or "RUNNING"
        with self._lock:
            cluster = self._cluster(req.get("cluster"))
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
            ]
        return _page(arns, req, "taskArns")

    # ------------------------------------------------------------------ tags
    def _tag_owner(self, arn: Any) -> list[dict[str, str]]:
        text = str(arn or "")
        if ":cluster/" in text:
            return self._cluster(text).tags
        if ":task-definition/" in text:
            return self._task_definition(text).tags
        if ":task/" in text:
            task = self._find_task(text)
            if task is not None:
                return task.tags
        raise InvalidParameterException("The specified resource is not valid.")

    def tag_resource(self, req: dict[str, Any]) -> dict[str, Any]:
        new = validate_tags(req.get("tags"))
        with self._lock:
            tags = self._tag_owner(req.get("resourceArn"))
            merged = {t["key"]: t["value"] for t in tags} | {t["key"]: t["value"] for t in new}
            tags[:] = validate_tags([{"key": k, "value": v} for k, v in merged.items()])
        return {}

    def untag_resource(self, req: dict[str, Any]) -> dict[str, Any]:
        keys = set(req.get("tagKeys") or [])
        with self._lock:
            tags = self._tag_owner(req.get("resourceArn"))
            tags[:] = [t for t in tags if t["key"] not in keys]
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
                self._interrupt_spot(task)
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
            self._max_tasks = max_tasks
            self._max_vcpu = max_vcpu

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


def _page(items: list[str], req: Mapping[str, Any], key: str) -> dict[str, Any]:
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
