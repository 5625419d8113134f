"""Small helpers shared by the test suites."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import boto3
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from ecs_emulator import credentials
from ecs_emulator.emulator import Emulator

T = TypeVar("T")
PYTHON = sys.executable


def emulator_client_kwargs(emulator: Emulator | str) -> dict[str, Any]:
    """Endpoint, Region and credentials of an emulator: in this process, or the CLI one at an endpoint URL."""
    if isinstance(emulator, Emulator):
        return emulator.client_kwargs()
    return credentials.client_kwargs(
        credentials.read_env_file(credentials.default_env_file(credentials.port_of(emulator)))
    )


def aws_client(service: str, emulator: Emulator | str, *, attempts: int = 1, read_timeout: float = 60.0) -> Any:
    """A boto3 client for the emulator, with its credentials; by default no retries, so tests see raw behaviour.

    The read timeout is generous: moto's first call to a service imports its backend, which takes
    seconds on a busy machine. A test of lost responses passes a short one.
    """
    return boto3.client(
        service,
        **emulator_client_kwargs(emulator),
        config=Config(
            retries={"total_max_attempts": attempts, "mode": "standard"},
            read_timeout=read_timeout,
            connect_timeout=5,
        ),
    )


def sign(
    emulator: Emulator,
    method: str,
    path: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    service: str,
    key_id: str | None = None,
    secret: str | None = None,
    when: datetime | None = None,
) -> dict[str, str]:
    """The headers of a request signed as botocore signs it (SigV4), by default with the emulator's key now.

    ``key_id``, ``secret`` and ``when`` make wrong signatures on purpose (another key, a skewed clock).
    """
    request = AWSRequest(method=method, url=emulator.endpoint_url + path, data=body, headers=dict(headers))
    credentials = Credentials(key_id or emulator.access_key_id, secret or emulator.secret_access_key)
    signer = (S3SigV4Auth if service == "s3" else SigV4Auth)(credentials, service, "us-east-1")
    # botocore's add_auth() with a chosen clock: the same steps, the timestamp given.
    request.context["timestamp"] = (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    signer._modify_request_before_signing(request)
    declared = {k.lower(): v for k, v in headers.items()}.get("x-amz-content-sha256")
    if declared is not None:  # a payload hash chosen by the caller (an aws-chunked upload's)
        del request.headers["X-Amz-Content-SHA256"]
        request.headers["X-Amz-Content-SHA256"] = declared
    canonical = signer.canonical_request(request)
    signer._inject_signature_to_request(request, signer.signature(signer.string_to_sign(request, canonical), request))
    return dict(request.headers.items())


def presign_s3(emulator: Emulator, path: str, *, when: datetime, expires: int) -> str:
    """A SigV4 presigned S3 GET URL made at ``when``, as boto3's generate_presigned_url makes one."""
    request = AWSRequest(method="GET", url=emulator.endpoint_url + path)
    credentials = Credentials(emulator.access_key_id, emulator.secret_access_key)
    signer = S3SigV4QueryAuth(credentials, "s3", "us-east-1", expires=expires)
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    signer._inject_signature_to_request(request, signer.signature(signer.string_to_sign(request, canonical), request))
    return str(request.url)


def wait_for(check: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def python_container(name: str = "main", code: str = "print('hi')", **extra: Any) -> dict[str, Any]:
    """A container definition whose command runs Python code with this interpreter."""
    return {
        "name": name,
        "image": "python:3.11-slim",
        "memory": 256,
        "command": [PYTHON, "-c", code],
        **extra,
    }


def awslogs(group: str = "/ecs/test", prefix: str = "ecs", create: bool = True) -> dict[str, Any]:
    options = {"awslogs-group": group, "awslogs-stream-prefix": prefix, "awslogs-region": "us-east-1"}
    if create:
        options["awslogs-create-group"] = "true"
    return {"logDriver": "awslogs", "options": options}


def wait_stopped(ecs: Any, cluster: str, arn: str, timeout: float = 20.0) -> dict[str, Any]:
    def stopped() -> dict[str, Any] | None:
        tasks = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"]
        return tasks[0] if tasks and tasks[0]["lastStatus"] == "STOPPED" else None

    return wait_for(stopped, timeout)


def register_instance(ecs: Any, cluster: str, cpu: int = 8192, memory: int = 32768) -> str:
    """Register one EC2 container instance (as the ECS agent does), so EC2 tasks have room; its ARN."""
    response = ecs.register_container_instance(
        cluster=cluster,
        totalResources=[
            {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
        ],
    )
    return str(response["containerInstance"]["containerInstanceArn"])
