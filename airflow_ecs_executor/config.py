"""The ``[ecs_executor]`` section as one typed model, parsed once at start.

Airflow hands every option over as a string. Here booleans, numbers, lists and JSON are parsed as
a person expects (``assign_public_ip = true`` turns it on; ``subnets = a, b`` is two subnets), and
every problem is reported at once with its fix, so a scheduler with a bad section refuses to start
with one readable message.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from airflow_ecs_executor.aws.session import run_task_parameters

SECTION = "ecs_executor"
# Fargate: "20 calls per second" for RunTask, burst and sustained (AWS_FACTS.md, AWS Fargate throttling quotas).
DEFAULT_LAUNCH_RATE = 20.0
# "spot" (Fargate Spot fallbacks) only chooses between Spot and on-demand for a strategy the administrator set.
DEFAULT_ALLOWLIST = ("cpu", "memory", "environment", "gpu", "ephemeral_storage", "tags", "spot")
# Keys that decide where and as whom a task runs: an administrator's choice, never a DAG author's
# unless the allowlist names them explicitly.
PRIVILEGED_KEYS = (
    "cluster",
    "task_definition",
    "task_role_arn",
    "execution_role_arn",
    "network",
    "capacity_provider_strategy",
)
KNOWN_EXECUTOR_CONFIG_KEYS = frozenset(DEFAULT_ALLOWLIST + PRIVILEGED_KEYS)


class ConfigError(BaseException):
    """The ``[ecs_executor]`` section cannot be used; the message lists every problem and its fix.

    A BaseException, as SystemExit is: a scheduler whose executor cannot run must stop, and no
    ``except Exception`` on the way (Airflow's scheduler logs those with a traceback) should treat
    it as an error of its own. Catch it by name.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"[{SECTION}] has {len(problems)} problem(s); the scheduler will not start:\n{lines}")


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        return json.loads(text) if text else None
    return value


def _empty_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _as_text(value: Any) -> Any:
    """A string option given back as text after Airflow's ``getsection`` turned it into a number or a bool.

    ``conf.getsection`` converts ``1`` to an int and ``t``/``true`` to True before this model sees them;
    ECS names may be digits, so a string option takes them back. ``connection.read_section`` rereads
    such values as the raw text first; this covers a section handed over as a plain dict.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def valid_endpoint_url(value: Any) -> Any:
    """``endpoint_url``: an http(s) URL with a host and a numeric port, or unset."""
    value = _empty_is_none(_as_text(value))
    if value is None or not isinstance(value, str):
        return value
    text = value.strip()
    if "#" in text or ";" in text or any(c.isspace() for c in text):
        raise ValueError(
            "not a URL: Airflow keeps everything after '=' on the line, comments included; "
            "put the comment on a line of its own (e.g. endpoint_url = http://127.0.0.1:4566)"
        )
    parsed = urllib.parse.urlsplit(text)
    try:
        parsed.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError("the port is not a number; e.g. http://127.0.0.1:4566") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("not an http(s) URL with a host; e.g. http://127.0.0.1:4566, or leave it unset for AWS")
    return text


Text = Annotated[str, BeforeValidator(_as_text)]
StrList = Annotated[list[str], BeforeValidator(_split_list), BeforeValidator(_as_text)]
OptionalStr = Annotated[str | None, BeforeValidator(_empty_is_none), BeforeValidator(_as_text)]


class CapacityProviderItem(BaseModel):
    """One entry of a capacity provider strategy, as RunTask takes it."""

    model_config = ConfigDict(extra="forbid")
    capacityProvider: str = Field(min_length=1)
    weight: int = Field(1, ge=0, le=1000)
    base: int = Field(0, ge=0, le=100000)


Strategy = Annotated[list[CapacityProviderItem] | None, BeforeValidator(_json_value)]


class QueueProfile(BaseModel):
    """Run settings for one Airflow queue; unset fields fall back to the section's."""

    model_config = ConfigDict(extra="forbid")
    task_definition: str | None = None
    container_name: str | None = None
    launch_type: Literal["FARGATE", "EC2", "EXTERNAL"] | None = None
    capacity_provider_strategy: list[CapacityProviderItem] | None = None
    cpu: int | None = Field(None, gt=0, description="task CPU units")
    memory: int | None = Field(None, gt=0, description="task memory in MiB")
    subnets: list[str] | None = None
    security_groups: list[str] | None = None


class ExecutorConfig(BaseModel):
    """Every option of ``[ecs_executor]``. The field descriptions are the documentation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conn_id: Text = Field("aws_default", description="Airflow AWS connection whose credentials the executor uses.")
    region_name: OptionalStr = Field(None, description="AWS Region; the connection's when unset.")
    endpoint_url: Annotated[str | None, BeforeValidator(valid_endpoint_url)] = Field(
        None, description="ECS endpoint, e.g. the local emulator's http://127.0.0.1:4566; the connection's when unset."
    )
    cluster: Text = Field(min_length=1, description="ECS cluster name or ARN that runs the tasks.")
    task_definition: Text = Field(min_length=1, description="Task definition family, family:revision or ARN.")
    container_name: Text = Field(min_length=1, description="Container in the task definition that runs the workload.")
    launch_type: Annotated[Literal["FARGATE", "EC2", "EXTERNAL"] | None, BeforeValidator(_empty_is_none)] = Field(
        None, description="FARGATE, EC2 or EXTERNAL; leave unset to use a capacity provider strategy."
    )
    capacity_provider_strategy: Strategy = Field(
        None, description='JSON list, e.g. [{"capacityProvider": "FARGATE_SPOT", "weight": 1}].'
    )
    platform_version: OptionalStr = Field(None, description="Fargate platform version, e.g. LATEST or 1.4.0.")
    subnets: StrList = Field(default_factory=list, description="Subnet IDs for awsvpc tasks, comma-separated.")
    security_groups: StrList = Field(default_factory=list, description="Security group IDs, comma-separated.")
    assign_public_ip: bool = Field(False, description="Give Fargate tasks a public IP (true/false).")
    run_task_kwargs: Annotated[dict[str, Any], BeforeValidator(_json_value)] = Field(
        default_factory=dict, description="JSON object merged last into every RunTask request."
    )
    launch_rate: float = Field(
        DEFAULT_LAUNCH_RATE,
        gt=0,
        description=(
            "RunTask calls per second at most. The launcher starts at this rate, cuts it when AWS throttles "
            "(other schedulers or ECS users share the account's quota) and climbs back while calls succeed."
        ),
    )
    launch_concurrency: int = Field(
        64,
        ge=1,
        le=64,
        description=(
            "RunTask calls under way at once, at most. Within it the launcher keeps about twice "
            "(rate x measured RunTask latency) calls in flight, at least 4."
        ),
    )
    max_launch_attempts: int = Field(
        5, ge=1, description="Launch attempts per workload (capacity shortfalls, tasks that fail to start)."
    )
    launch_timeout: float = Field(900.0, gt=0, description="Seconds a workload may take to reach RUNNING.")
    missing_grace: float = Field(
        60.0,
        gt=0,
        description="Seconds a task may be MISSING from DescribeTasks (eventual consistency) before it fails.",
    )
    poll_interval: float = Field(
        2.0,
        ge=0.1,
        description=(
            "Seconds from the start of one DescribeTasks round over the running tasks (100 per call) "
            "to the start of the next; a round that describe_rate stretches beyond it is followed at once."
        ),
    )
    describe_rate: float = Field(
        10.0,
        gt=0,
        le=50,
        description=(
            "DescribeTasks calls per second at most (polling and reconciliation). The account's "
            "cluster-read bucket refills about 20 a second and is shared with the console and every "
            "other tool: with more running tasks than describe_rate x 100 x poll_interval, a round "
            "takes longer than poll_interval and polling runs at describe_rate without a pause."
        ),
    )
    # -- tracking by ECS events (docs/setup.md, "Tracking by ECS events") --
    task_events_queue_url: OptionalStr = Field(
        None,
        description=(
            "SQS queue URL that receives this cluster's ECS Task State Change events from EventBridge; "
            "when set, tasks are tracked by events and DescribeTasks only reconciles. One queue per "
            "scheduler (every queue gets every event)."
        ),
    )
    task_events_reconcile_interval: float = Field(
        60.0,
        ge=1,
        description="With events: seconds between DescribeTasks of a task that events say is unchanged.",
    )
    task_events_silence: float = Field(
        30.0,
        ge=1,
        description=(
            "With events: seconds a task between two states (not RUNNING) may go without an event "
            "before DescribeTasks looks at it."
        ),
    )
    # -- Fargate Spot (see docs/setup.md, "Running on Fargate Spot")
    spot_fallback_after: float = Field(
        60.0,
        ge=0,
        description=(
            "Seconds a launch on a strategy that includes FARGATE_SPOT may meet Fargate Spot capacity "
            "shortfalls (tried again on Spot meanwhile) before the same try is launched on on-demand "
            "capacity (FARGATE). 0: fall back at the first shortfall. Per task: "
            'executor_config={"spot": {"fallback_after": 120}} where the allowlist has "spot".'
        ),
    )
    on_demand_after_interruption: bool = Field(
        True,
        description=(
            "After a Spot interruption (the try fails; Airflow's retries apply) the task instance's next "
            "try runs on on-demand capacity. Remembered by the scheduler that saw the interruption, until "
            'it restarts. Per task: executor_config={"spot": {"on_demand_after_interruption": false}}.'
        ),
    )
    check_health_on_startup: bool = Field(True, description="Check credentials, cluster and task definition at start.")
    queue_profiles: Annotated[dict[str, QueueProfile], BeforeValidator(_json_value)] = Field(
        default_factory=dict, description="JSON: Airflow queue name -> run settings for that queue."
    )
    executor_config_allowlist: StrList = Field(
        default_factory=lambda: list(DEFAULT_ALLOWLIST),
        description="executor_config keys DAG authors may set.",
    )
    # -- workload delivery (sealing); see docs/reliability.md, "Sealed workloads"
    workload_delivery: Literal["sealed", "plain"] = Field(
        "sealed",
        description=(
            "How the workload (with its Execution API token) reaches the container. sealed: encrypted per "
            "launch with workload_kms_key, opened by the task role (kms:Decrypt); nothing readable in RunTask, "
            "DescribeTasks or CloudTrail. plain: the workload JSON in clear in the command override. RISK: "
            "anyone allowed ecs:DescribeTasks on the cluster, or to read CloudTrail, can read the token and act "
            "as the task against the Execution API (connections, variables, XComs) while it runs."
        ),
    )
    workload_kms_key: OptionalStr = Field(
        None,
        description=(
            "KMS key (ID, ARN or alias/NAME) that seals workloads; required when workload_delivery = sealed. "
            "The scheduler needs kms:GenerateDataKey on it, the task role kms:Decrypt (with the cluster's "
            "encryption context)."
        ),
    )

    def profile_for(self, queue: str | None) -> QueueProfile:
        """The run settings of an Airflow queue; an empty profile (all from the section) for other queues."""
        return self.queue_profiles.get(queue or "") or QueueProfile()

    @field_validator("queue_profiles", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("executor_config_allowlist")
    @classmethod
    def _known_keys(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - KNOWN_EXECUTOR_CONFIG_KEYS)
        if unknown:
            raise ValueError(f"unknown executor_config keys {unknown}; known: {sorted(KNOWN_EXECUTOR_CONFIG_KEYS)}")
        return value

    @field_validator("run_task_kwargs")
    @classmethod
    def _run_task_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        allowed = set(run_task_parameters())
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(f"{unknown} are not RunTask parameters; valid ones: {sorted(allowed)}")
        if "clientToken" in value:
            raise ValueError("clientToken is set by the executor for every launch attempt; remove it")
        return value

    @model_validator(mode="after")
    def _sealing_key(self) -> ExecutorConfig:
        if self.workload_delivery == "sealed" and not self.workload_kms_key:
            raise ValueError(
                "workload_kms_key: required while workload_delivery = sealed (the default): set it to the KMS "
                "key of the template's WorkloadKey output, or set workload_delivery = plain, accepting that "
                "DescribeTasks and CloudTrail readers can read each task's token"
            )
        return self

    @model_validator(mode="after")
    def _launch_choice(self) -> ExecutorConfig:
        if self.launch_type and self.capacity_provider_strategy:
            raise ValueError(
                "launch_type and capacity_provider_strategy are both set; ECS accepts one or the other: remove one"
            )
        if self.launch_type == "FARGATE" and not self.subnets:
            raise ValueError("launch_type FARGATE needs subnets (awsvpc networking): set subnets = subnet-1,subnet-2")
        return self


def _problem(error: Mapping[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "section"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{where}: required; set it in [{SECTION}] or AIRFLOW__ECS_EXECUTOR__{where.upper()}"
    if error["type"] == "extra_forbidden":
        return f"{where}: not an option of [{SECTION}]; check its spelling (see docs/configuration.md)"
    if error["type"] == "json_invalid" or "JSON" in message:
        return f"{where}: not valid JSON: {message}"
    return f"{where}: {message} (got {error.get('input')!r})"


def parse_config(section: Mapping[str, Any]) -> ExecutorConfig:
    """Build the model from the section's raw strings; ConfigError lists every problem."""
    try:
        return ExecutorConfig.model_validate(dict(section))
    except ValidationError as exc:
        raise ConfigError([_problem(e) for e in exc.errors()]) from None
    except json.JSONDecodeError as exc:
        raise ConfigError([f"a JSON option is not valid JSON: {exc}"]) from None
