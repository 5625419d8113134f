"""Building one RunTask request: configuration, queue profile, executor_config, tags, token.

Everything a DAG author can influence (``executor_config``) is checked here against the
administrator's allowlist and botocore's RunTask shape before anything is sent, and the overrides
are measured against ECS's 8,192-character limit, so a bad value fails that one task with a clear
message instead of an AWS error.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import botocore.session
from botocore.model import Shape
from botocore.validate import ParamValidator

from airflow_ecs_executor.aws.sealing import SealError, launch_context

if TYPE_CHECKING:  # the configuration model depends on aws.session; no import cycle at run time
    from airflow_ecs_executor.config import ExecutorConfig

# RunTask.overrides: "A total of 8192 characters are allowed for overrides. This limit includes the
# JSON formatting characters of the override structure." (ECS API model)
MAX_OVERRIDES_CHARS: Final = 8192
# Tag rules (ECS API model, Tag): key up to 128, value up to 256 characters; letters, numbers,
# spaces and + - = . _ : / @ are safe everywhere.
_TAG_UNSAFE = re.compile(r"[^\w\s+\-=.:/@]", re.UNICODE)
STARTED_BY: Final = "airflow-ecs-executor"


class RequestError(ValueError):
    """The request cannot be built or would be rejected; the message is for the Airflow UI."""


QUEUEING_TAG: Final = "ecs_executor_queueing"


def client_token(queueing: str, attempt: int) -> str:
    """The RunTask clientToken of one (queueing, launch attempt): 64 hex characters.

    ECS answers a repeated token (within one cluster, for 24 hours) with the task it already started
    for it, so a resend of the same request after a lost response never starts a second task. The
    queueing id is drawn at random each time Airflow hands a workload over, so a rescheduled sensor's
    next poke, a resumed deferral or a cleared task never meets the token of an earlier queueing.
    """
    return hashlib.sha256(f"{queueing}:{attempt}".encode()).hexdigest()


def started_by(attempt: int) -> str:
    """RunTask ``startedBy``: the launch attempt rides in a task field that survives StopTask.

    StopTask deletes a task's tags (ECS API model), so nothing the executor needs after a stop may
    live only in a tag. startedBy allows up to 128 letters, digits, ``-``, ``/`` and ``_``.
    """
    return f"{STARTED_BY}/{attempt}"


def launch_attempt_of(value: str | None) -> int | None:
    """The launch attempt that ``started_by`` wrote, or None for a task we did not start this way."""
    prefix = f"{STARTED_BY}/"
    if value and value.startswith(prefix) and value[len(prefix) :].isdigit():
        return int(value[len(prefix) :])
    return None


def sanitise_tag(text: str, limit: int) -> str:
    """Text made safe for an ECS tag: unsafe characters become _, reserved aws: prefix avoided."""
    cleaned = _TAG_UNSAFE.sub("_", text)
    if cleaned.lower().startswith("aws:"):
        cleaned = "_" + cleaned[1:]
    return cleaned[:limit]


@functools.cache
def _run_task_shape() -> Shape:
    shape = botocore.session.get_session().get_service_model("ecs").operation_model("RunTask").input_shape
    assert shape is not None
    return shape


def load_request_model() -> None:
    """Load botocore's RunTask model now (the executor's start), not in the first launch of a burst (0.1 s)."""
    _run_task_shape()


@dataclass(frozen=True)
class WorkloadSpec:
    """What the executor knows of one workload when it builds its request."""

    workload_id: str
    queueing: str  # this hand-over's identity: the clientTokens derive from it
    command: Sequence[str] | Callable[[], Sequence[str]]  # a callable is asked when the request is built
    queue: str | None
    executor_config: Mapping[str, Any]
    tags: Mapping[str, str]
    # The workload JSON, serialised when first asked: what a sealer encrypts instead of ``command``.
    payload: Callable[[], str] | None = None


# Seals a workload JSON for one launch: (plaintext, encryption context) -> the container command.
Sealer = Callable[[bytes, Mapping[str, str]], list[str]]


def _check_executor_config(cfg: ExecutorConfig, given: Mapping[str, Any]) -> None:
    if not isinstance(given, Mapping):
        raise RequestError(f"executor_config must be a dict, got {type(given).__name__}")
    not_allowed = sorted(set(given) - set(cfg.executor_config_allowlist))
    if not_allowed:
        raise RequestError(
            f"executor_config keys {not_allowed} are not allowed here; the administrator allows "
            f"{sorted(cfg.executor_config_allowlist)} ([ecs_executor] executor_config_allowlist)"
        )
    checks: dict[str, tuple[type | tuple[type, ...], str]] = {
        "cpu": ((int, str), "CPU units, e.g. 1024"),
        "memory": ((int, str), "memory in MiB, e.g. 2048"),
        "gpu": ((int,), "a number of GPUs, e.g. 1"),
        "ephemeral_storage": ((int,), "GiB of ephemeral storage, 21 to 200"),
        "environment": ((dict,), 'a dict of names to values, e.g. {"MODE": "fast"}'),
        "tags": ((dict,), 'a dict of tag keys to values, e.g. {"team": "data"}'),
        "cluster": ((str,), "a cluster name"),
        "task_definition": ((str,), "a task definition family or ARN"),
        "task_role_arn": ((str,), "an IAM role ARN"),
        "execution_role_arn": ((str,), "an IAM role ARN"),
        "network": ((dict,), '{"subnets": [...], "security_groups": [...]}'),
        "capacity_provider_strategy": ((list,), '[{"capacityProvider": "FARGATE_SPOT", "weight": 1}]'),
        "spot": ((dict,), '{"fallback_after": 60, "on_demand_after_interruption": true} (see aws.capacity)'),
    }
    for key, value in given.items():
        types, hint = checks[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise RequestError(f"executor_config[{key!r}] must be {hint}; got {value!r}")
    for key in ("environment", "tags"):
        for k, v in dict(given.get(key) or {}).items():
            if not isinstance(k, str) or not isinstance(v, str | int | float):
                raise RequestError(f"executor_config[{key!r}] must map strings to strings; got {k!r}: {v!r}")


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def build_run_task(
    cfg: ExecutorConfig, spec: WorkloadSpec, *, attempt: int, sealer: Sealer | None = None
) -> dict[str, Any]:
    """The complete RunTask request for one launch attempt; RequestError when it cannot be sent.

    With a ``sealer`` the container command is the sealed workload (encrypted for this launch's
    cluster, queueing and attempt); without one it is ``spec.command``, the workload in clear.
    """
    ec = spec.executor_config or {}
    _check_executor_config(cfg, ec)
    profile = cfg.profile_for(spec.queue)
    container = profile.container_name or cfg.container_name
    container_override: dict[str, Any] = {"name": container, "command": []}  # set last, see _set_command
    if ec.get("environment"):
        container_override["environment"] = [{"name": k, "value": str(v)} for k, v in ec["environment"].items()]
    if ec.get("gpu"):
        container_override["resourceRequirements"] = [{"type": "GPU", "value": str(ec["gpu"])}]
    overrides: dict[str, Any] = {"containerOverrides": [container_override]}
    cpu = ec.get("cpu") or profile.cpu
    memory = ec.get("memory") or profile.memory
    if cpu:
        overrides["cpu"] = str(cpu)
    if memory:
        overrides["memory"] = str(memory)
    if ec.get("ephemeral_storage"):
        overrides["ephemeralStorage"] = {"sizeInGiB": int(ec["ephemeral_storage"])}
    if ec.get("task_role_arn"):
        overrides["taskRoleArn"] = ec["task_role_arn"]
    if ec.get("execution_role_arn"):
        overrides["executionRoleArn"] = ec["execution_role_arn"]
    tags = _tags(cfg, spec, ec)
    request: dict[str, Any] = {
        "cluster": ec.get("cluster") or cfg.cluster,
        "taskDefinition": ec.get("task_definition") or profile.task_definition or cfg.task_definition,
        "count": 1,
        "startedBy": started_by(attempt),
        "clientToken": client_token(spec.queueing, attempt),
        "overrides": overrides,
        "tags": [{"key": sanitise_tag(k, 128), "value": sanitise_tag(v, 256)} for k, v in tags.items()],
    }
    strategy = (
        ec.get("capacity_provider_strategy") or profile.capacity_provider_strategy or cfg.capacity_provider_strategy
    )
    launch_type = profile.launch_type or cfg.launch_type
    if strategy:
        request["capacityProviderStrategy"] = [s if isinstance(s, Mapping) else s.model_dump() for s in strategy]
    elif launch_type:
        request["launchType"] = launch_type
    if cfg.platform_version:
        request["platformVersion"] = cfg.platform_version
    network = dict(ec.get("network") or {})
    subnets = network.get("subnets") or profile.subnets or cfg.subnets
    if subnets:
        vpc: dict[str, Any] = {
            "subnets": list(subnets),
            "assignPublicIp": "ENABLED" if network.get("assign_public_ip", cfg.assign_public_ip) else "DISABLED",
        }
        groups = network.get("security_groups") or profile.security_groups or cfg.security_groups
        if groups:
            vpc["securityGroups"] = list(groups)
        request["networkConfiguration"] = {"awsvpcConfiguration": vpc}
    request = _merge(request, {k: v for k, v in cfg.run_task_kwargs.items() if k not in _MERGED_APART})
    if "overrides" in cfg.run_task_kwargs:
        request["overrides"] = merge_overrides(cfg.run_task_kwargs["overrides"], request["overrides"])
    _set_command(request, container, spec, attempt, sealer)
    _validate(request)
    return request


# Precedence where values collide (docs/configuration.md, "Precedence"): administrator
# (run_task_kwargs) > executor > DAG author (executor_config), except what the executor must set
# for every launch: the command, clientToken, startedBy, count and its identity tags.
_MERGED_APART: Final = frozenset({"overrides", "tags", "startedBy", "count", "clientToken"})


def _tags(cfg: ExecutorConfig, spec: WorkloadSpec, ec: Mapping[str, Any]) -> dict[str, str]:
    """DAG author's tags, then the administrator's, then the executor's identity tags (always win).

    Cost reports and tag-based access control read dag_id, task_id, run_id, map_index, try_number
    and the queueing from these tags: a DAG author's ``executor_config`` can add tags, never change those.
    """
    author = {str(k): str(v) for k, v in (ec.get("tags") or {}).items()}
    admin: dict[str, str] = {}
    for item in cfg.run_task_kwargs.get("tags") or []:
        if isinstance(item, Mapping) and "key" in item:
            admin[str(item["key"])] = str(item.get("value", ""))
    merged = {k: v for k, v in {**author, **admin}.items() if k not in IDENTITY_TAGS}
    return {**merged, **spec.tags, QUEUEING_TAG: spec.queueing}


# The executor's identity tags: only the executor sets them, whether or not a workload has them all.
IDENTITY_TAGS: Final = frozenset(
    {"dag_id", "task_id", "run_id", "map_index", "try_number", "callback_id", QUEUEING_TAG}
)


def _by_name(items: Sequence[Any], field: str) -> dict[str, Any]:
    return {str(item.get(field)): item for item in items if isinstance(item, Mapping)}


def merge_overrides(admin: Mapping[str, Any], ours: Mapping[str, Any]) -> dict[str, Any]:
    """The administrator's ``overrides`` merged with the executor's; never replaced.

    Task-level fields: the administrator's win. ``containerOverrides`` are merged by container name;
    in a container both name: environment variables and resource requirements (by name/type) merge
    with the administrator's values winning, every other field is the administrator's, except the
    command, which is always the executor's. Containers only the administrator names are kept.
    """
    out = _merge(dict(ours), {k: v for k, v in admin.items() if k != "containerOverrides"})
    theirs = _by_name(list(admin.get("containerOverrides") or []), "name")
    merged: list[dict[str, Any]] = []
    for co in ours.get("containerOverrides") or []:
        extra = theirs.pop(str(co.get("name")), None)
        if extra is None:
            merged.append(dict(co))
            continue
        both = {**co, **{k: v for k, v in extra.items() if k != "command"}}
        for field, key in (("environment", "name"), ("resourceRequirements", "type"), ("environmentFiles", "value")):
            if field in co or field in extra:
                joined = {**_by_name(list(co.get(field) or []), key), **_by_name(list(extra.get(field) or []), key)}
                both[field] = list(joined.values())
        both["command"] = co.get("command", [])
        merged.append(both)
    merged += [dict(co) for co in theirs.values()]
    out["containerOverrides"] = merged
    return out


def request_cluster(cfg: ExecutorConfig, spec: WorkloadSpec) -> str:
    """The cluster ``build_run_task`` will name (administrator > DAG author > section), for sealing ahead."""
    ec = spec.executor_config if isinstance(spec.executor_config, Mapping) else {}
    return str(cfg.run_task_kwargs.get("cluster") or ec.get("cluster") or cfg.cluster)


def _set_command(
    request: dict[str, Any], container: str, spec: WorkloadSpec, attempt: int, sealer: Sealer | None
) -> None:
    """The workload container's command, set last: sealed for the request's final cluster, or in clear."""
    co = next(c for c in request["overrides"]["containerOverrides"] if c.get("name") == container)
    if sealer is None:
        command = spec.command() if callable(spec.command) else spec.command
        co["command"] = list(command)
        return
    if spec.payload is None:
        raise RequestError("the workload cannot be sealed: the executor has no workload JSON for it")
    context = launch_context(str(request["cluster"]), spec.queueing, attempt)
    try:
        co["command"] = sealer(spec.payload().encode(), context)
    except SealError as exc:
        raise RequestError(str(exc)) from None


def overrides_length(request: Mapping[str, Any]) -> int:
    """Characters of the overrides structure as JSON, formatting included (the 8,192 limit)."""
    return len(json.dumps(request.get("overrides") or {}, separators=(",", ":"), ensure_ascii=False))


def _validate(request: dict[str, Any]) -> None:
    report = ParamValidator().validate(request, _run_task_shape())
    if report.has_errors():
        raise RequestError("the RunTask request is not valid: " + report.generate_report().replace("\n", "; "))
    size = overrides_length(request)
    if size > MAX_OVERRIDES_CHARS:
        raise RequestError(
            f"the container overrides are {size} characters; ECS allows at most {MAX_OVERRIDES_CHARS} "
            "(RunTask overrides limit). Shorten executor_config environment values, or pass large values "
            "through the task definition or a secret."
        )


def redact(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request without the command and environment values: safe to log (the command holds a JWT)."""
    out = json.loads(json.dumps(request))
    for co in (out.get("overrides") or {}).get("containerOverrides") or []:
        if "command" in co:
            co["command"] = [f"<{len(co['command'])} arguments redacted>"]
        for env in co.get("environment") or []:
            env["value"] = "<redacted>"
    return dict(out)
