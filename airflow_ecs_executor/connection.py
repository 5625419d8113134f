"""boto3 clients built from the Airflow AWS connection named by ``[ecs_executor] conn_id``.

Credentials come through the amazon provider's ``AwsBaseHook``, so assume-role, profiles and the
other AWS conventions of a connection work; ``endpoint_url`` (the emulator's, for instance) wins
over the connection's.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.config import Config

from airflow_ecs_executor.config import ExecutorConfig


def make_client(
    cfg: ExecutorConfig, service: str, *, region_name: str | None = None, config: Config | None = None
) -> Any:
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
