"""botocore's configuration, errors and service model, for the modules outside ``aws/``.

Only ``aws/`` imports botocore (an import-linter contract); the check command, the configuration
model and the log reader reach it through these few names.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

AWS_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError)


def client_config(*, attempts: int, read_timeout: float, pool: int | None = None) -> Config:
    """A botocore client configuration: ``attempts`` in all per call, short timeouts."""
    extra: dict[str, Any] = {"max_pool_connections": pool} if pool else {}
    return Config(retries={"total_max_attempts": attempts}, connect_timeout=5, read_timeout=read_timeout, **extra)


def ecs_client_config(launch_concurrency: int) -> Config:
    """The executor's ECS client: one attempt per call (retries are ours, with the same clientToken)."""
    return client_config(attempts=1, read_timeout=20, pool=launch_concurrency + 8)


def is_service_error(exc: Exception) -> bool:
    """AWS answered with an error (as opposed to: AWS could not be reached, or botocore refused)."""
    return isinstance(exc, ClientError)


def error_code(exc: Exception) -> str:
    """AWS's error code, or the exception's type name when AWS gave none."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


def error_message(exc: Exception) -> str:
    """AWS's error message, or the exception's text."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message", ""))
    return str(exc)


@functools.cache
def run_task_parameters() -> frozenset[str]:
    """The parameter names of RunTask in botocore's ECS service model."""
    model = botocore.session.get_session().get_service_model("ecs")
    return frozenset(model.shape_for("RunTaskRequest").members)
