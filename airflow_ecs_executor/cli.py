"""Airflow CLI commands of this package: ``airflow ecs-executor check``.

Registered twice over, as Airflow expects of an executor package: through the provider's ``cli``
entry (Airflow 3.2+) and through ``EcsExecutor.get_cli_commands`` (Airflow 3.1).
"""

from __future__ import annotations

import sys
from typing import Any

SECTION_HELP = "Check a live set-up: configuration, credentials, cluster, task definition, logs, network, IAM"


def get_cli_commands() -> list[Any]:
    """The ``ecs-executor`` command group."""
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand, lazy_load_command

    team = Arg(  # type: ignore[no-untyped-call]
        ("--team",), help="Check the configuration of this team's executor (multi-team set-ups)"
    )
    return [
        GroupCommand(
            name="ecs-executor",
            help="Commands of airflow-ecs-executor",
            subcommands=(
                ActionCommand(
                    name="check",
                    help=SECTION_HELP,
                    description=(
                        "Prints a checklist with the fix for each failure; exits non-zero when a check fails. "
                        "Read-only: nothing is started, stopped or changed."
                    ),
                    func=lazy_load_command("airflow_ecs_executor.cli.check_command"),
                    args=(team,),
                ),
            ),
        )
    ]


def check_command(args: Any) -> None:
    """``airflow ecs-executor check``."""
    from airflow.configuration import conf

    from airflow_ecs_executor.check import Checker, render
    from airflow_ecs_executor.connection import make_client, read_section

    # Airflow's own default when unset: {[api] base_url}/execution/, base_url defaulting to localhost:8080.
    base_url = (conf.get("api", "base_url", fallback=None) or "http://localhost:8080").rstrip("/")
    api_url = conf.get("core", "execution_api_server_url", fallback=None) or f"{base_url}/execution/"
    items = Checker(make_client, api_url).run(read_section(getattr(args, "team", None)))
    print(render(items))
    if any(item.status == "fail" for item in items):
        sys.exit(1)
