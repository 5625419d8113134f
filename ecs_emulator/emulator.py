"""The emulator as one object: profile, services, runner, faults and the HTTP server.

Use it in-process (``with Emulator("fast") as em: em.endpoint_url``) or over HTTP with
``python -m ecs_emulator``; the control API is the same in both ways (``ControlClient`` for HTTP).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from ecs_emulator import credentials as creds
from ecs_emulator import moto_bridge, requestlog, shapes
from ecs_emulator.ecs import DEFAULT_INSTANCE_CPU, DEFAULT_INSTANCE_MEMORY, EcsService
from ecs_emulator.errors import AwsError
from ecs_emulator.faults import TASK_FAULT_KINDS, FaultPlan
from ecs_emulator.logs import LogsService
from ecs_emulator.profile import Profile, RunnerKind, load_profile
from ecs_emulator.runners import ContainerSpec, ProcessRunner, make_runner
from ecs_emulator.server import (
    CONTROL_PREFIX,
    TASK_CREDENTIALS_PREFIX,
    Dispatcher,
    EmulatorHTTPServer,
    Reply,
    auth_error,
    json_reply,
)
from ecs_emulator.sigv4 import AuthFailure, Principal, Verified, Verifier
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
        credentials: tuple[str, str] | None = None,
        control_token: str | None = None,
        principals: Mapping[str, tuple[str, str]] | None = None,
        request_log: str | os.PathLike[str] | None = None,
    ) -> None:
        """``time_scale`` multiplies every lifecycle dwell time of the profile (see ``Profile.scaled``).

        ``credentials`` (access key ID, secret access key) and ``control_token`` are drawn afresh
        unless given: every AWS request must be signed with that key, every control request carry
        that token (``credentials.py``). ``principals`` adds named keys ({name: (key ID, secret)}),
        so the request log can tell callers apart; ``request_log`` is the path of that log
        (``requestlog.py``; None: no log).
        """
        self.credentials = creds.Credentials(*credentials) if credentials else creds.new_credentials()
        self.control_token = control_token or creds.new_control_token()
        self.keys = creds.KeyRing(self.credentials)
        for name, (key_id, secret) in (principals or {}).items():
            self.keys.add_principal(name, creds.Credentials(key_id, secret))
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
        self._verifier = requestlog.NotingVerifier(Verifier(region, self.keys.lookup))
        self._server = EmulatorHTTPServer(
            port, Dispatcher(self, services), self._control, self._other, self._task_credentials
        )
        self.request_log = self._open_request_log(request_log)
        self.port = self._server.server_address[1]
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        if isinstance(self.runner, ProcessRunner):
            self.runner.agent_environment = self._agent_environment

    # -- credentials ------------------------------------------------------------------------
    @property
    def access_key_id(self) -> str:
        return self.credentials.access_key_id

    @property
    def secret_access_key(self) -> str:
        return self.credentials.secret_access_key

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a boto3 client of this emulator: ``boto3.client("ecs", **em.client_kwargs())``."""
        return creds.client_kwargs(self.env())

    def env(self) -> dict[str, str]:
        """The environment a shell or a client needs (the env file's contents)."""
        return {
            creds.ENDPOINT_ENV: self.endpoint_url,
            creds.ACCESS_KEY_ENV: self.access_key_id,
            creds.SECRET_KEY_ENV: self.secret_access_key,
            creds.REGION_ENV: self.region,
            creds.CONTROL_TOKEN_ENV: self.control_token,
        }

    def control_client(self) -> ControlClient:
        """A ``ControlClient`` for this emulator, with its token."""
        return ControlClient(self.endpoint_url, token=self.control_token)

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
        if self.request_log is not None:
            self.request_log.close()
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

    def authenticate(self, method: str, path: str, headers: Mapping[str, str], body: bytes, service: str) -> Verified:
        return self._verifier.verify(method, path, headers, body, service_hint=service)

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
    def _control_refusal(self, headers: Mapping[str, str]) -> Reply | None:
        """403 unless the request carries the control token and says it is JSON.

        A web page can send a "simple" cross-origin request (``text/plain``, no custom header)
        without asking first; a custom header or ``application/json`` needs a CORS preflight,
        which the emulator refuses. The token keeps out other local users and processes.
        """
        lower = {k.lower(): v for k, v in headers.items()}
        token = lower.get(creds.CONTROL_TOKEN_HEADER.lower(), "")
        if not hmac.compare_digest(token.encode(), self.control_token.encode()):
            return json_reply(
                403,
                {
                    "message": f"control API: missing or wrong {creds.CONTROL_TOKEN_HEADER} header; "
                    f"the token is {creds.CONTROL_TOKEN_ENV} in the emulator's env file "
                    "(python -m ecs_emulator env --port PORT)"
                },
            )
        content_type = lower.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            return json_reply(
                403, {"message": f"control API: Content-Type must be application/json, not {content_type or 'none'!r}"}
            )
        return None

    def _control(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        refusal = self._control_refusal(headers)
        if refusal is not None:
            self.count("control", "refused")
            return refusal
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
        """S3, STS and the other moto services: signed for real first, as ECS and Logs are."""
        try:
            verified = self._verifier.verify(method, path, headers, body)
        except AuthFailure as failure:
            self.count("moto", f"auth.{failure.code}")
            return auth_error(failure, _protocol_of(failure.service, method, path, headers))
        if verified.principal.role_arn is not None and _is_get_caller_identity(verified.service, path, body):
            return _caller_identity(verified.principal)
        return moto_bridge.handle(method, path, headers, body, self.port)

    # -- the request log -------------------------------------------------------------------------
    def _open_request_log(self, path: str | os.PathLike[str] | None) -> requestlog.RequestLog | None:
        if path is None:
            return None
        log = requestlog.RequestLog(
            Path(path), principal_name=self.keys.principal_name, run_task_roles=self._run_task_roles
        )
        self._server.request_log = log
        return log

    def _run_task_roles(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """What IAM checks of a RunTask besides the call: the task definition's ARN, the roles it passes."""
        definition = self.ecs._definitions.resolve(params.get("taskDefinition"))  # read only
        overrides = params.get("overrides") or {}
        roles = [
            overrides.get(key) or definition.body.get(key)
            for key in ("taskRoleArn", "executionRoleArn")
            if overrides.get(key) or definition.body.get(key)
        ]
        return {"taskDefinitionArn": definition.arn, "passedRoles": roles}

    # -- task role credentials ----------------------------------------------------------------
    def _agent_environment(self, spec: ContainerSpec) -> dict[str, str]:
        """What the ECS agent gives a container: endpoint, Region and, with a task role, its credentials."""
        env = {
            creds.ENDPOINT_ENV: self.endpoint_url,
            creds.REGION_ENV: self.region,
            "AWS_REGION": self.region,
        }
        # Read without the ECS lock: containers start outside it, and a dict lookup is atomic.
        task = self.ecs._tasks.get(spec.task_id)  # the task table, read only
        role = (task.overrides.get("taskRoleArn") or task.task_definition.body.get("taskRoleArn")) if task else None
        if task is not None and role:
            credential_id, token = self.keys.task_slot(task.arn, str(role))
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"{self.endpoint_url}{TASK_CREDENTIALS_PREFIX}{credential_id}"
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
        return env

    def _task_credentials(self, path: str, headers: dict[str, str]) -> Reply:
        credential_id = path[len(TASK_CREDENTIALS_PREFIX) :].split("?", 1)[0].strip("/")
        token = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        answer = self.keys.fetch(credential_id, token)
        if answer is None:
            self.count("task-credentials", "refused")
            return json_reply(
                403, {"code": "AccessDenied", "message": "unknown credentials ID or wrong authorization token"}
            )
        self.count("task-credentials", "served")
        return json_reply(200, answer)

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


def _protocol_of(service: str | None, method: str, path: str, headers: Mapping[str, str]) -> str:
    """How a moto service words its errors: json, query (XML) or s3 (XML)."""
    lower = {k.lower(): v for k, v in headers.items()}
    if service == "s3":
        return "s3"
    if "x-amz-target" in lower or lower.get("content-type", "").startswith("application/x-amz-json"):
        return "json"
    if service is not None:
        return "query"
    # Unsigned: a query-protocol call is a form POSTed to "/"; anything else is taken for S3.
    form = lower.get("content-type", "").startswith("application/x-www-form-urlencoded")
    return "query" if method == "POST" and path.partition("?")[0] == "/" and form else "s3"


def _is_get_caller_identity(service: str, path: str, body: bytes) -> bool:
    if service != "sts":
        return False
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace")) | urllib.parse.parse_qs(path.partition("?")[2])
    return form.get("Action") == ["GetCallerIdentity"]


def _caller_identity(principal: Principal) -> Reply:
    """STS GetCallerIdentity for task role credentials: the assumed role, named by the task's ID."""
    role_arn = principal.role_arn or ""
    account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else "123456789012"
    role_name = role_arn.rsplit("/", 1)[-1]
    session = (principal.task_arn or "task").rsplit("/", 1)[-1]
    role_id = "AROA" + "".join(c for c in hashlib.sha256(role_arn.encode()).hexdigest().upper() if c.isalnum())[:17]
    body = (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
        f"<Arn>arn:aws:sts::{account}:assumed-role/{role_name}/{session}</Arn>"
        f"<UserId>{role_id}:{session}</UserId><Account>{account}</Account>"
        f"</GetCallerIdentityResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    )
    return Reply(200, body.encode(), "text/xml")


class ControlClient:
    """The control API of an emulator in another process, over HTTP.

    The token comes from ``token``, else ``ECS_EMULATOR_CONTROL_TOKEN``, else the env file the
    emulator on that port wrote (``~/.cache/ecs-emulator/127.0.0.1-<port>.env``).
    """

    def __init__(self, endpoint_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.base = endpoint_url.rstrip("/") + CONTROL_PREFIX
        self.timeout = timeout
        self._token = token or os.environ.get(creds.CONTROL_TOKEN_ENV) or None
        self._token_from_file = False
        self._port = creds.port_of(endpoint_url)

    @property
    def token(self) -> str:
        """The control token; read from the env file on first use, so a client may exist before its emulator."""
        if self._token is None:
            path = creds.default_env_file(self._port)
            try:
                self._token = creds.read_env_file(path)[creds.CONTROL_TOKEN_ENV]
                self._token_from_file = True
            except (FileNotFoundError, KeyError):
                raise RuntimeError(
                    f"no control token for the emulator on port {self._port}: pass token=, set "
                    f"{creds.CONTROL_TOKEN_ENV}, or start it with python -m ecs_emulator (it writes {path})"
                ) from None
        return self._token

    def _call(self, method: str, route: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.base + route, data=data, method=method)  # noqa: S310 - our http URL
        request.add_header("Content-Type", "application/json")
        request.add_header(creds.CONTROL_TOKEN_HEADER, self.token)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 403 and self._token_from_file:
                self._token = None  # a stale file from an earlier emulator: read it again next time
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
            except (OSError, RuntimeError):  # includes an env file not written yet
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
