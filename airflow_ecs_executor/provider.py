"""Provider metadata for Airflow: registers the ``[ecs_executor]`` section and the executor.

The options, their descriptions and defaults come from ``ExecutorConfig``, so
``airflow config list --section ecs_executor`` cannot drift from what the executor parses.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import PydanticUndefined

from airflow_ecs_executor.config import SECTION, ExecutorConfig


def _default(field: Any) -> str | None:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined or field.default is None:
        return None
    else:
        value = field.default
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value) if value else None
    return str(value)


def _type(annotation: Any) -> str:
    text = str(annotation)
    for name, kind in (("bool", "boolean"), ("float", "float"), ("int", "integer")):
        if text == f"<class '{name}'>":
            return kind
    return "string"


def config_options() -> dict[str, dict[str, Any]]:
    """The section's options in Airflow's provider config format."""
    return {
        name: {
            "description": field.description,
            "version_added": None,
            "type": _type(field.annotation),
            "example": None,
            "default": _default(field),
        }
        for name, field in ExecutorConfig.model_fields.items()
    }


def get_provider_info() -> dict[str, Any]:
    """What Airflow's ProvidersManager reads through the ``apache_airflow_provider`` entry point."""
    return {
        "package-name": "airflow-ecs-executor",
        "name": "Amazon ECS executor (airflow-ecs-executor)",
        "description": "Runs every Airflow task as an Amazon ECS task.",
        "versions": ["0.1.0"],
        "executors": ["airflow_ecs_executor.EcsExecutor"],
        "cli": ["airflow_ecs_executor.cli.get_cli_commands"],
        "config": {
            SECTION: {
                "description": "Settings of airflow_ecs_executor.EcsExecutor.",
                "options": config_options(),
            }
        },
    }
