"""The emulator as one object: profile, services, runner, faults and the HTTP server.

Use it in-process (``with Emulator("fast") as em: em.endpoint_url``) or over HTTP with
``python -m ecs_emulator``; the control API is the same in both ways (``ControlClient`` for HTTP).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from types import TracebackType
from typing import Any

from ecs_emulator import moto_bridge, shapes
from ecs_emulator.ecs import DEFAULT_INSTANCE_CPU, DEFAULT_INSTANCE_MEMORY, EcsService
from ecs_emulator.errors import AwsError
from ecs_emulator.faults import TASK_FAULT_KINDS, FaultPlan
from ecs_emulator.logs import LogsService
from ecs_emulator.profile import Profile, RunnerKind, load_profile
from ecs_emulator.runners import make_runner
from ecs_emulator.server import CONTROL_PREFIX, Dispatcher, EmulatorHTTPServer, Reply, json_reply
from ecs_emulator.throttle import TokenBucket
from ecs_emulator.timeline import Timeline

_log = logging.getLogger(__name__)
PROVIDER_CAPACITY_ROUTE = "provider-capacity"


class Emulator:
    """A running ECS + CloudWatch Logs emulator bound to 127.0.0.1."""

    def __init__(
        self,
        profile: str | Profile = "fast",
        *,
        port: int = 0,
        runner: RunnerKind | None = None,
        region: str = "us-east-1",
        validate_responses: bool | None = None,
        stopped_task_retention: float | None = None,
        time_scale: float | None = None,
    ) -> None:
        """``time_scale`` multiplies every lifecycle dwell time of the profile (see ``Profile.scaled``)."""
        prof = load_profile(profile) if isinstance(profile, str) else profile
        if time_scale is not None:
            prof = prof.scaled(time_scale)
        updates: dict[str, Any] = {}
        if runner is not None:
            updates["runner"] = runner
        if stopped_task_retention is not None:
            updates["stopped_task_retention"] = stopped_task_retention
        self.profile = prof.model_copy(update=updates) if updates else prof
        self.region = region
        # None: on where ECS_EMULATOR_VALIDATE_RESPONSES=1, as the pytest plugin sets it (shapes.py).
        self.validate_responses = shapes.validation_default() if validate_responses is None else validate_responses
        self.rng = random.Random(self.profile.seed)
        self.timeline = Timeline()
        self.faults = FaultPlan(self.profile.faults, random.Random(self.rng.random()))
        self.logs = LogsService(region)
        self.runner = make_runner(
            self.profile.runner,
            timeline=self.timeline,
            simulated=self.profile.simulated,
            rng=random.Random(self.rng.random()),
            max_processes=self.profile.max_processes,
            enforce_memory=self.profile.enforce_memory,
        )
        self.ecs = EcsService(
            profile=self.profile,
            timeline=self.timeline,
            runner=self.runner,
            faults=self.faults,
            logs=self.logs,
            rng=random.Random(self.rng.random()),
            region=region,
        )
        self._buckets: dict[str, TokenBucket] = {}
        for bucket in self.profile.throttling.values():
            shared = TokenBucket(bucket.capacity, bucket.rate)
            for api in bucket.apis:
                self._buckets[api] = shared
        self._storm_until = 0.0
        self._counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._counts_lock = threading.Lock()
        self.shape_problems: list[str] = []
        services = {
            "AmazonEC2ContainerServiceV20141113": ("ecs", self.ecs.handlers),
            "Logs_20140328": ("logs", self.logs.handlers),
        }
        self._init_provider_capacity()
        self._server = EmulatorHTTPServer(port, Dispatcher(self, services), self._control, self._other)
        self.port = self._server.server_address[1]
        self.endpoint_url = f"http://127.0.0.1:{self.port}"

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> Emulator:
        self._server.start()
        _log.info(
            "ECS emulator listening on %s (profile %s, runner %s)",
            self.endpoint_url,
            self.profile.name,
            self.runner.kind,
        )
        return self

    def stop(self) -> None:
        self._server.stop()
        self.ecs.close()
        self.runner.close()
        self.timeline.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- used by the dispatcher ---------------------------------------------------------------
    def count(self, api: str, what: str) -> None:
        with self._counts_lock:
            self._counts[api][what] += 1

    def take_token(self, api: str) -> bool:
        if time.monotonic() < self._storm_until:
            return False
        bucket = self._buckets.get(api)
        return bucket is None or bucket.try_take()

    def record_shape_problems(self, api: str, problems: list[str]) -> None:
        _log.error("response of %s does not match botocore's shape: %s", api, problems)
        shapes.report(api, problems)
        with self._counts_lock:
            self.shape_problems.extend(f"{api}: {p}" for p in problems)

    # -- control (Python) ---------------------------------------------------------------------
    def inject(
        self,
        kind: str,
        *,
        api: str | None = None,
        count: int = 1,
        reason: str | None = None,
        seconds: float | None = None,
        task_arn: str | None = None,
    ) -> None:
        """Inject a fault now. See ``ecs_emulator.faults.FAULT_KINDS`` for the kinds."""
        if kind == "throttle_storm":
            self._storm_until = time.monotonic() + (seconds or 2.0)
            self.faults.injected[kind] += 1
        elif task_arn is not None and kind in TASK_FAULT_KINDS:
            self.ecs.inject_task_fault(kind, task_arn)
        else:
            self.faults.inject(kind, api=api, count=count, reason=reason, seconds=seconds)

    def set_capacity(self, max_tasks: int | None, max_vcpu: float | None = None) -> None:
        self.ecs.set_capacity(max_tasks, max_vcpu)

    def register_container_instances(
        self, cluster: str, *, count: int = 1, cpu: int = DEFAULT_INSTANCE_CPU, memory: int = DEFAULT_INSTANCE_MEMORY
    ) -> list[str]:
        """EC2 capacity: register ``count`` container instances (``cpu`` units, ``memory`` MiB each); their ARNs."""
        return self.ecs.add_container_instances(cluster, count, cpu, memory)

    def counters(self) -> dict[str, Any]:
        with self._counts_lock:
            api = {name: dict(c) for name, c in self._counts.items()}
            shape_problems = len(self.shape_problems)
        return {
            "api": api,
            "ecs": dict(self.ecs.counters),
            "faults": self.faults.snapshot()["injected"],
            "shape_problems": shape_problems,
        }

    def reset_counters(self) -> None:
        with self._counts_lock:
            self._counts.clear()
        self.ecs.counters.clear()
        self.faults.injected.clear()

    def tasks(self, *, with_overrides: bool = False) -> list[dict[str, Any]]:
        return self.ecs.task_rows(with_overrides=with_overrides)

    # -- control (HTTP) -----------------------------------------------------------------------
    def _control(self, method: str, path: str, body: bytes) -> Reply:
        route = path[len(CONTROL_PREFIX) :].split("?", 1)[0].strip("/")
        try:
            payload = json.loads(body) if body else {}
            if method == "GET" and route == "health":
                return json_reply(200, {"ok": True, "profile": self.profile.name, "runner": self.runner.kind})
            if method == "GET" and route == "counters":
                return json_reply(200, self.counters())
            if method == "GET" and route == "tasks":
                return json_reply(200, {"tasks": self.tasks()})
            if method == "GET" and route == "profile":
                return json_reply(200, self.profile.model_dump(mode="json"))
            if method == "POST" and route == "faults":
                self.inject(**payload)
                return json_reply(200, {"injected": payload.get("kind")})
            if method == "POST" and route == "capacity":
                self.set_capacity(payload.get("max_tasks"), payload.get("max_vcpu"))
                return json_reply(200, {"ok": True})
            if method == "POST" and route == "container-instances":
                arns = self.register_container_instances(
                    payload["cluster"],
                    count=int(payload.get("count", 1)),
                    cpu=int(payload.get("cpu", DEFAULT_INSTANCE_CPU)),
                    memory=int(payload.get("memory", DEFAULT_INSTANCE_MEMORY)),
                )
                return json_reply(200, {"containerInstanceArns": arns})
            if method == "POST" and route == "reset-counters":
                self.reset_counters()
                return json_reply(200, {"ok": True})
            if route == PROVIDER_CAPACITY_ROUTE:
                return self._provider_capacity_route(method, payload)
        except (TypeError, ValueError, KeyError) as exc:
            return json_reply(400, {"message": str(exc)})
        except AwsError as exc:
            return json_reply(400, {"message": f"{exc.code}: {exc.message}"})
        return json_reply(404, {"message": f"no control route {method} {path}"})

    def _other(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        return moto_bridge.handle(method, path, headers, body, self.port)

    # -- capacity per provider (FARGATE, FARGATE_SPOT, EC2 providers) -------------------------------
    def _init_provider_capacity(self) -> None:
        for provider, max_tasks in self.profile.capacity.providers.items():
            self.ecs.capacity.set_provider_limit(provider, max_tasks)

    def set_provider_capacity(self, provider: str, max_tasks: int | None) -> None:
        """Cap one capacity provider (e.g. FARGATE_SPOT) at ``max_tasks`` running tasks; None lifts the cap."""
        self.ecs.capacity.set_provider_limit(provider, max_tasks)

    def provider_capacity(self) -> dict[str, int]:
        return dict(self.ecs.capacity.provider_limits)

    def _provider_capacity_route(self, method: str, payload: dict[str, Any]) -> Reply:
        """``POST provider-capacity {"provider": "FARGATE_SPOT", "max_tasks": 0}``; ``GET`` lists the caps."""
        if method == "GET":
            return json_reply(200, {"providers": self.provider_capacity()})
        if method != "POST":
            return json_reply(405, {"message": f"{method} is not allowed on {PROVIDER_CAPACITY_ROUTE}"})
        provider, max_tasks = payload.get("provider"), payload.get("max_tasks")
        if not isinstance(provider, str) or not provider:
            return json_reply(
                400, {"message": 'provider is required, e.g. {"provider": "FARGATE_SPOT", "max_tasks": 0}'}
            )
        if max_tasks is not None and (isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 0):
            return json_reply(400, {"message": f"max_tasks must be an integer >= 0 or null, not {max_tasks!r}"})
        self.set_provider_capacity(provider, max_tasks)
        return json_reply(200, {"providers": self.provider_capacity()})


class ControlClient:
    """The control API of an emulator in another process, over HTTP."""

    def __init__(self, endpoint_url: str, timeout: float = 10.0) -> None:
        self.base = endpoint_url.rstrip("/") + CONTROL_PREFIX
        self.timeout = timeout

    def _call(self, method: str, route: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.base + route, data=data, method=method)  # noqa: S310 - our http URL
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"emulator control {route}: {exc.code} {exc.read().decode()}") from None

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.health()
                return
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the emulator at {self.base} did not answer within {timeout:.0f} s") from None
                time.sleep(0.1)

    def inject(self, kind: str, **options: Any) -> None:
        self._call("POST", "faults", {"kind": kind, **options})

    def set_capacity(self, max_tasks: int | None, max_vcpu: float | None = None) -> None:
        self._call("POST", "capacity", {"max_tasks": max_tasks, "max_vcpu": max_vcpu})

    def register_container_instances(
        self, cluster: str, *, count: int = 1, cpu: int = DEFAULT_INSTANCE_CPU, memory: int = DEFAULT_INSTANCE_MEMORY
    ) -> list[str]:
        payload = {"cluster": cluster, "count": count, "cpu": cpu, "memory": memory}
        arns: list[str] = self._call("POST", "container-instances", payload)["containerInstanceArns"]
        return arns

    def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "counters")
        return result

    def set_provider_capacity(self, provider: str, max_tasks: int | None) -> None:
        """Cap one capacity provider (e.g. FARGATE_SPOT) at ``max_tasks`` running tasks; None lifts the cap."""
        self._call("POST", PROVIDER_CAPACITY_ROUTE, {"provider": provider, "max_tasks": max_tasks})

    def reset_counters(self) -> None:
        self._call("POST", "reset-counters", {})

    def tasks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "tasks")["tasks"]
        return result
