"""boto3 clients built from the Airflow AWS connection named by ``[ecs_executor] conn_id``.

Credentials come through the amazon provider's ``AwsBaseHook``, so assume-role, profiles and the
other AWS conventions of a connection work; ``endpoint_url`` (the emulator's, for instance) wins
over the connection's.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from airflow.configuration import conf
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from airflow_ecs_executor.config import SECTION, ExecutorConfig


def make_client(cfg: ExecutorConfig, service: str, *, region_name: str | None = None, config: Any = None) -> Any:
    """A boto3 client for ``service`` with the connection's credentials."""
    region = region_name or cfg.region_name
    hook = AwsBaseHook(aws_conn_id=cfg.conn_id, client_type=service, region_name=region)
    session = hook.get_session(region_name=region)
    return session.client(
        service,
        region_name=region or session.region_name or hook.conn_region_name,
        endpoint_url=cfg.endpoint_url or hook.conn_config.endpoint_url,
        config=config,
    )


def read_section(team: str | None = None) -> dict[str, Any]:
    """The raw ``[ecs_executor]`` section: global values, overlaid for a team by its own section and variables."""
    raw: dict[str, Any] = dict(conf.getsection(SECTION) or {})
    if team:
        # conf.getsection(section, team_name=...) answers None when no team section exists in a
        # config file, even if AIRFLOW__<TEAM>___ECS_EXECUTOR__* variables are set; read both.
        with contextlib.suppress(TypeError):  # Airflow 3.1 has no team sections; variables still work
            raw.update(conf.getsection(SECTION, team_name=team) or {})
        prefix = f"AIRFLOW__{team.upper()}___{SECTION.upper()}__"
        raw.update({k[len(prefix) :].lower(): v for k, v in os.environ.items() if k.startswith(prefix)})
    return {k: _as_written(k, v, team) for k, v in raw.items() if v is not None}


def _as_written(key: str, value: Any, team: str | None) -> Any:
    """The option's text as written, where ``conf.getsection`` turned it into a number or a bool.

    ``cluster = 1`` would reach the model as the int 1 and ``task_definition = t`` as True; ECS names
    may be digits or such words, so the text is read again with ``conf.get``, which converts nothing.
    """
    if not isinstance(value, bool | int | float):
        return value
    with contextlib.suppress(Exception):  # a team-only key, or Airflow 3.1 without team_name: keep the value
        if team:
            return conf.get(SECTION, key, team_name=team)
        return conf.get(SECTION, key)
    return value
