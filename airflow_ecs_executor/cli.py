"""Airflow CLI commands contributed by this provider (``get_provider_info()["cli"]``).

The ``airflow ecs-executor check`` command of the deployment issue will live here; until then the
provider contributes no command, and says so to Airflow explicitly.
"""

from __future__ import annotations

from typing import Any


def get_cli_commands() -> list[Any]:
    """The provider's CLI command groups (none yet)."""
    return []
