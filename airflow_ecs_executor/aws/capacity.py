"""Fargate Spot in RunTask requests: which strategy a workload launches with, its on-demand twin, the capacity tag.

``build_run_task`` builds the request as configured; ``place`` turns it into the request that is
sent: FARGATE_SPOT taken out of the strategy when the core decided on on-demand capacity, and a
capacity tag when the strategy names one provider only (the provider is then known before launch).
A strategy of several providers is not tagged: ECS picks the provider per task, and tagging after
the launch would need TagResource calls and the ``ecs:TagResource`` permission for the scheduler.
The capacity every task ran on reaches metrics and the UI from DescribeTasks' capacityProviderName.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from airflow_ecs_executor.aws.requests import RequestError, Sealer, WorkloadSpec, build_run_task, sanitise_tag
from airflow_ecs_executor.core.classify import ON_DEMAND_PROVIDER, SPOT_PROVIDER
from airflow_ecs_executor.core.lifecycle import SpotPlan

if TYPE_CHECKING:  # the configuration model depends on aws.session; no import cycle at run time
    from airflow_ecs_executor.config import ExecutorConfig

CAPACITY_TAG: Final = "ecs_executor_capacity"
SPOT_KEYS: Final = frozenset({"fallback_after", "on_demand_after_interruption"})


def _items(strategy: Sequence[Any] | None) -> list[dict[str, Any]]:
    return [dict(s) if isinstance(s, Mapping) else s.model_dump() for s in strategy or ()]


def strategy_of(cfg: ExecutorConfig, spec: WorkloadSpec) -> list[dict[str, Any]]:
    """The capacity provider strategy the workload's RunTask names (as ``build_run_task`` picks it); [] for none.

    A cluster's default strategy (RunTask without strategy or launch type) is not known here: such
    launches are not treated as Spot, though an interruption seen on FARGATE_SPOT still counts.
    """
    ec = spec.executor_config if isinstance(spec.executor_config, Mapping) else {}
    if "capacityProviderStrategy" in cfg.run_task_kwargs:
        return _items(cfg.run_task_kwargs["capacityProviderStrategy"])
    profile = cfg.profile_for(spec.queue)
    chosen = (
        ec.get("capacity_provider_strategy") or profile.capacity_provider_strategy or cfg.capacity_provider_strategy
    )
    return _items(chosen if isinstance(chosen, list) else None)


def includes_spot(strategy: Sequence[Mapping[str, Any]]) -> bool:
    """The strategy may place tasks on Fargate Spot."""
    return any(item.get("capacityProvider") == SPOT_PROVIDER for item in strategy)


def spot_plan(cfg: ExecutorConfig, executor_config: Mapping[str, Any] | None) -> SpotPlan:
    """The section's Spot options, overridden by the task's ``executor_config["spot"]``; RequestError when bad."""
    given = (executor_config or {}).get("spot") if isinstance(executor_config, Mapping) else None
    fallback_after, after_interruption = cfg.spot_fallback_after, cfg.on_demand_after_interruption
    if given is None:
        return SpotPlan(fallback_after, after_interruption)
    if not isinstance(given, Mapping) or set(given) - SPOT_KEYS:
        raise RequestError(
            f'executor_config["spot"] must be a dict with keys {sorted(SPOT_KEYS)}, e.g. '
            f'{{"fallback_after": 120, "on_demand_after_interruption": false}}; got {given!r}'
        )
    if "fallback_after" in given:
        value = given["fallback_after"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise RequestError(f'executor_config["spot"]["fallback_after"] must be seconds >= 0; got {value!r}')
        fallback_after = float(value)
    if "on_demand_after_interruption" in given:
        value = given["on_demand_after_interruption"]
        if not isinstance(value, bool):
            raise RequestError(
                f'executor_config["spot"]["on_demand_after_interruption"] must be true or false; got {value!r}'
            )
        after_interruption = value
    return SpotPlan(fallback_after, after_interruption)


def on_demand_strategy(strategy: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The strategy without FARGATE_SPOT; FARGATE alone when nothing else is left."""
    rest = [dict(item) for item in strategy if item.get("capacityProvider") != SPOT_PROVIDER]
    if not any(item.get("weight", 1) for item in rest):  # RunTask needs a provider with a weight above 0
        rest = [{**item, "weight": 1} for item in rest]
    return rest or [{"capacityProvider": ON_DEMAND_PROVIDER, "weight": 1, "base": 0}]


def place(request: Mapping[str, Any], *, on_demand: bool) -> dict[str, Any]:
    """The request as sent: on on-demand capacity if asked, tagged with its capacity when there is one choice."""
    out = dict(request)
    strategy = list(out.get("capacityProviderStrategy") or [])
    if on_demand:
        strategy = on_demand_strategy(strategy)
        out.pop("launchType", None)
        out["capacityProviderStrategy"] = strategy
    providers = {str(item.get("capacityProvider")) for item in strategy}
    single = next(iter(providers)) if len(providers) == 1 else out.get("launchType")
    if single:
        tags = [t for t in out.get("tags") or [] if t.get("key") != CAPACITY_TAG]
        out["tags"] = [*tags, {"key": CAPACITY_TAG, "value": sanitise_tag(str(single), 256)}]
    return out


def build_launch(
    cfg: ExecutorConfig, spec: WorkloadSpec, *, attempt: int, on_demand: bool, sealer: Sealer | None = None
) -> dict[str, Any]:
    """``build_run_task`` and ``place``: the RunTask request of one launch attempt as it is sent."""
    request = build_run_task(cfg, spec, attempt=attempt, sealer=sealer)
    spot_plan(cfg, spec.executor_config)  # a bad executor_config["spot"] fails the task with its message
    return place(request, on_demand=on_demand)
