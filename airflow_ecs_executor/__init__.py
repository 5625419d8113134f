"""An Apache Airflow 3 executor that runs every workload as one Amazon ECS task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_ecs_executor.executor import EcsExecutor

__all__ = ["EcsExecutor"]


def __getattr__(name: str) -> Any:
    # Lazy, so that the provider entry point (provider.py) does not import Airflow's executor machinery.
    if name == "EcsExecutor":
        from airflow_ecs_executor.executor import EcsExecutor

        return EcsExecutor
    raise AttributeError(name)
