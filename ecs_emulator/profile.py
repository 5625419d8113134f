"""The AWS behaviour model: latency, throttling, capacity, lifecycle timing and faults.

A profile is a TOML file. Four ship with the emulator (``fast``, ``aws``, ``aws-lifecycle``,
``chaos``); any other path may be given. ``Profile.scaled(factor)`` (``Emulator(..., time_scale=)``,
``--time-scale``) multiplies every lifecycle dwell time, so AWS's timings can run in a test. Every
field is typed and unknown keys are rejected, so a typo in a profile is an error at start, not a
silently ignored setting.
"""

from __future__ import annotations

import math
import random
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError

from ecs_emulator.errors import EmulatorConfigError

RunnerKind = Literal["process", "simulated", "docker"]
_Z99 = 2.3263  # the 99th percentile of the standard normal distribution


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Spread(_Strict):
    """A duration in seconds: a log-normal distribution given by its median and 99th percentile.

    ``floor`` is the shortest a sample may be: a status that always lasts a while on AWS stays
    observable in the emulator too, however the draw falls.
    """

    median: float = Field(0.0, ge=0)
    p99: float | None = Field(None, ge=0)
    floor: float = Field(0.0, ge=0)

    def sample(self, rng: random.Random) -> float:
        if self.median <= 0:
            return self.floor
        if self.p99 is None or self.p99 <= self.median:
            return max(self.floor, self.median)
        sigma = math.log(self.p99 / self.median) / _Z99
        return max(self.floor, rng.lognormvariate(math.log(self.median), sigma))

    def scaled(self, factor: float) -> Spread:
        return Spread(
            median=self.median * factor,
            p99=None if self.p99 is None else self.p99 * factor,
            floor=self.floor * factor,
        )


class Bucket(_Strict):
    """A token bucket: ``capacity`` is the burst, ``rate`` the sustained refill per second."""

    capacity: float = Field(gt=0)
    rate: float = Field(gt=0)
    apis: list[str] = Field(default_factory=list, description="API names that share this bucket")


class Lifecycle(_Strict):
    """Time spent in each ECS task status before the next one."""

    provisioning: Spread = Spread(median=0.02)
    pending: Spread = Spread(median=0.02)
    activating: Spread = Spread(median=0.02)
    deactivating: Spread = Spread(median=0.02)
    stopping: Spread = Spread(median=0.02)
    deprovisioning: Spread = Spread(median=0.02)

    def scaled(self, factor: float) -> Lifecycle:
        return Lifecycle(**{name: getattr(self, name).scaled(factor) for name in Lifecycle.model_fields})


class Capacity(_Strict):
    """How much the cluster can run at once; RunTask beyond it returns ``failures``."""

    max_tasks: int | None = Field(None, ge=0)
    max_vcpu: float | None = Field(None, ge=0)
    providers: dict[str, NonNegativeInt] = Field(
        default_factory=dict,
        description="tasks each capacity provider (FARGATE, FARGATE_SPOT, an EC2 provider) runs at once, at most",
    )


class ContainerInstances(_Strict):
    """EC2 capacity every new cluster starts with: ``count`` container instances of this size.

    None by default, as in a new AWS cluster: RunTask on EC2 there fails until instances register
    (``RegisterContainerInstance`` or the control API's ``container-instances``).
    """

    count: int = Field(0, ge=0)
    cpu: int = Field(4096, ge=0, description="CPU units each instance registers")
    memory: int = Field(15_700, ge=0, description="MiB each instance registers")


class Simulated(_Strict):
    """What the simulated runner does with a container that has no process."""

    duration: Spread = Spread(median=1.0)
    exit_code: int = 0


class ApiFaults(_Strict):
    """Probabilities, per call of one API, of a fault instead of (or after) a normal answer."""

    server_error: float = Field(0.0, ge=0, le=1)
    connection_reset: float = Field(0.0, ge=0, le=1)
    lost_response: float = Field(0.0, ge=0, le=1)
    throttle: float = Field(0.0, ge=0, le=1)


class EventFaults(_Strict):
    """How EventBridge's at-least-once, unordered delivery of ECS events misbehaves, per event."""

    duplicate: float = Field(0.0, ge=0, le=1, description="probability an event is delivered twice")
    drop: float = Field(0.0, ge=0, le=1, description="probability an event is never delivered")
    reorder: float = Field(0.0, ge=0, le=1, description="probability an event is held back behind the next one")
    delay_probability: float = Field(0.0, ge=0, le=1, description="probability an event is delivered late")
    delay: Spread = Field(Spread(median=1.0), description="how late a delayed event is")


class Faults(_Strict):
    """Faults drawn at random (seeded) while the emulator runs."""

    api: dict[str, ApiFaults] = Field(default_factory=dict, description="per API name")
    fail_to_start: float = Field(0.0, ge=0, le=1, description="probability a task never starts")
    spot_interruption: float = Field(0.0, ge=0, le=1, description="probability a Spot task is interrupted")
    spot_interruption_after: Spread = Spread(median=2.0)
    describe_missing_for: float = Field(
        0.0, ge=0, description="seconds a new task stays invisible to DescribeTasks (eventual consistency)"
    )
    lost_response_hold: float = Field(
        5.0, ge=0, description="seconds a lost RunTask response holds the connection before closing it"
    )
    events: EventFaults = Field(EventFaults(), description="ECS Task State Change events (events.py)")


class Profile(_Strict):
    """Everything that makes the emulator behave like one kind of AWS."""

    name: str = "custom"
    description: str = ""
    runner: RunnerKind = "process"
    seed: int | None = Field(
        None,
        description=(
            "seeds every random draw; each task's lifecycle and simulated run time come from (seed, its "
            "place in launch order), the same in two runs whatever the order of calls around it; API "
            "latencies, placement, faults and event faults follow the order of the calls"
        ),
    )
    latency: dict[str, Spread] = Field(default_factory=dict, description='per API name, or "default"')
    throttling: dict[str, Bucket] = Field(default_factory=dict, description="named request buckets")
    fargate_launch: Bucket | None = Field(None, description="Fargate On-Demand task launches (tasks, not calls)")
    fargate_spot_launch: Bucket | None = Field(None, description="Fargate Spot task launches")
    lifecycle: Lifecycle = Lifecycle()
    capacity: Capacity = Capacity()
    container_instances: ContainerInstances = ContainerInstances()
    simulated: Simulated = Simulated()
    faults: Faults = Faults()
    stopped_task_retention: float = Field(3600.0, ge=0, description="seconds a STOPPED task stays describable")
    max_processes: int = Field(200, ge=1, description="containers the process runner runs at once")
    enforce_memory: bool = Field(True, description="kill a container whose memory exceeds its hard limit")

    def latency_for(self, api: str) -> Spread | None:
        return self.latency.get(api) or self.latency.get("default")

    def scaled(self, factor: float) -> Profile:
        """A copy of this profile with every lifecycle dwell time multiplied by ``factor`` (0.1: ten times faster)."""
        if not factor > 0:
            raise EmulatorConfigError(f"time scale must be a positive number, not {factor!r}")
        return self.model_copy(update={"lifecycle": self.lifecycle.scaled(factor)})


BUILTIN_PROFILES = ("fast", "aws", "aws-lifecycle", "chaos")


def load_profile(name_or_path: str) -> Profile:
    """Load a built-in profile by name, or a TOML file by path."""
    if name_or_path in BUILTIN_PROFILES:
        text = resources.files("ecs_emulator").joinpath(f"profiles/{name_or_path}.toml").read_text()
        origin = f"built-in profile {name_or_path!r}"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise EmulatorConfigError(
                f"unknown profile {name_or_path!r}: use one of {', '.join(BUILTIN_PROFILES)} or a path to a TOML file"
            )
        text = path.read_text()
        origin = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EmulatorConfigError(f"{origin}: not valid TOML: {exc}") from exc
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise EmulatorConfigError(f"{origin}: {problems}") from exc
