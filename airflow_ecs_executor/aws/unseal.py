"""The container's first step for a sealed workload: open it with the task role, then run it.

    python -m airflow_ecs_executor.aws.unseal v1 <context JSON> <encrypted data key> <ciphertext>

KMS is called with boto3's default credential chain (inside ECS: the task role, from the container
credentials endpoint) and honours ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_KMS`` (boto3's own
configuration). The opened workload is handed to Airflow's ``execute_workload`` in this process:
the plaintext never appears in a command line (``ps``), a file or a log line.

When the workload cannot be opened the step prints one line saying why and how to fix it and exits
with ``UNSEAL_EXIT_CODE`` before Airflow's task began, so the executor launches it again without
spending the try (and fails it with this reason once the launch attempts are used up).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from airflow_ecs_executor.aws.sealing import UNSEAL_EXIT_CODE, Sealed, SealError, open_sealed

_PREFIX = "ecs-executor unseal:"


def _fail(message: str) -> int:
    sys.stderr.write(f"{_PREFIX} cannot open the sealed workload: {message}\n")
    sys.stderr.flush()
    return UNSEAL_EXIT_CODE


def open_workload(args: Sequence[str]) -> bytes | int:
    """The workload JSON of the sealed arguments, or the exit code after saying why it cannot be opened."""
    try:
        sealed = Sealed.from_args(args)
    except SealError as exc:
        return _fail(str(exc))
    try:
        kms = boto3.client("kms", config=Config(retries={"mode": "standard", "max_attempts": 5}))
        return open_sealed(kms, sealed)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, text = error.get("Code", "Unknown"), error.get("Message", "")
        return _fail(
            f"KMS Decrypt: {code}: {text}; fix: allow kms:Decrypt on the workload key for the task role "
            f"with the encryption context {sealed.context.get('ecs-executor:cluster')!r} "
            "(deploy/cloudformation.yaml's key policy)"
        )
    except BotoCoreError as exc:
        return _fail(f"KMS could not be reached or no credentials: {type(exc).__name__}: {exc}")
    except SealError as exc:
        return _fail(str(exc))


def _run(workload_json: bytes) -> int:
    # Airflow is imported only once the workload is open: a step that cannot open it says so at once.
    from airflow.executors import workloads  # noqa: PLC0415
    from airflow.sdk.execution_time.execute_workload import execute_workload  # noqa: PLC0415
    from pydantic import TypeAdapter  # noqa: PLC0415

    try:
        workload: Any = TypeAdapter(workloads.All).validate_json(workload_json)
    except Exception as exc:  # the message of a validation error could quote the token
        return _fail(f"the opened workload is not an Airflow workload ({type(exc).__name__})")
    hide_token_in_repr(type(workload))
    execute_workload(workload)
    return 0


def hide_token_in_repr(model: Any) -> None:
    """Leave the token out of the workload's repr, as Airflow 3.3 does (``Field(repr=False)``).

    Airflow 3.1's ``execute_workload`` logs the workload to the container's output (CloudWatch Logs)
    by its repr, token included. Pydantic reads a field's ``repr`` flag each time it builds a repr.
    """
    field = getattr(model, "model_fields", {}).get("token")
    if field is not None:
        field.repr = False


def main(argv: Sequence[str] | None = None) -> int:
    """Open the sealed workload given as arguments and run it; the exit code of the step."""
    opened = open_workload(list(sys.argv[1:] if argv is None else argv))
    if isinstance(opened, int):
        return opened
    return _run(opened)


if __name__ == "__main__":
    sys.exit(main())
