"""The request log: one JSON line per AWS request the emulator receives, with who signed it.

Turned on with ``python -m ecs_emulator --request-log PATH`` or ``Emulator(request_log=PATH)``;
the devstack keeps one in every stack's ``logs/``. Each line names the service and action, the
access key that signed the request and the principal that key belongs to (the emulator's own key,
a named key such as the devstack's ``scheduler`` and ``api-server``, or a task's role
credentials), the request's IAM-relevant resources (cluster, task definition with the roles it
passes, task ARNs, log group and stream, KMS key and encryption context, queue, rule, bucket) and
the **whole request body as received**. Tests read it to evaluate every recorded call against the
IAM policies of the principal that made it, and to prove the workload token never left the
scheduler. It is a local developer log: it holds what the clients sent, signatures included (never
a secret key), and the emulator's credentials are thrown away when it stops.

Control API requests and the container credentials endpoint are not AWS requests and are not
recorded.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from ecs_emulator.sigv4 import Principal, Verified

# X-Amz-Target prefixes, and the service each names (the signing name, as IAM's action prefix).
TARGET_SERVICES: Final = {
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "Logs_20140328": "logs",
    "TrentService": "kms",
    "AmazonSQS": "sqs",
    "AWSEvents": "events",
}
# Request parameters that name what IAM evaluates a call on (a resource, or a condition key).
RESOURCE_KEYS: Final = (
    "cluster",
    "clusters",
    "taskDefinition",
    "task",
    "tasks",
    "containerInstance",
    "resourceArn",
    "logGroupName",
    "logGroupIdentifier",
    "logGroupNamePrefix",
    "logStreamName",
    "logStreamNamePrefix",
    "KeyId",
    "EncryptionContext",
    "QueueUrl",
    "QueueName",
    "Name",
    "NamePrefix",
    "Rule",
    "TargetArn",
    "RoleArn",
)
# Not recorded: the control API and the container credentials endpoint (server.py's prefixes).
SKIPPED_PREFIXES: Final = ("/_emulator/", "/_task-credentials/")
_local = threading.local()

# What the log asks of the emulator: the name of a key's principal, and the roles a RunTask passes
# (its overrides' roles, else its task definition's) with the task definition's full ARN.
PrincipalNames = Callable[[Principal], str]
RunTaskRoles = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def note_verified(verified: Verified) -> None:
    """Remember who signed the request this thread is serving (called by the verifier)."""
    _local.verified = verified


class NotingVerifier:
    """Wraps ``sigv4.Verifier``: each request that verifies is noted for the request log."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def verify(self, *args: Any, **kwargs: Any) -> Verified:
        verified: Verified = self._inner.verify(*args, **kwargs)
        note_verified(verified)
        return verified

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class RequestLog:
    """Appends one JSON line per AWS request to ``path`` (created 0600: it holds request bodies)."""

    def __init__(
        self, path: Path, *, principal_name: PrincipalNames, run_task_roles: RunTaskRoles | None = None
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._principal_name = principal_name
        self._run_task_roles = run_task_roles
        self._lock = threading.Lock()
        fd = _open_private(self.path)
        self._out: IO[str] | None = open(fd, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def begin(self) -> None:
        """A new request on this thread: forget the previous request's signer."""
        _local.verified = None

    def record(
        self,
        *,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        status: int | None,
        reply_body: bytes | None,
    ) -> None:
        """Write the line of one request the emulator answered (``status`` None: no answer was sent)."""
        if path.startswith(SKIPPED_PREFIXES):
            return
        verified: Verified | None = getattr(_local, "verified", None)
        _local.verified = None
        line = describe(method, path, headers, body, verified)
        line["status"] = status
        if verified is not None:
            line["principal"] = self._principal_name(verified.principal)
        if line["service"] == "ecs" and line["action"] == "RunTask":
            self._run_task_details(line, reply_body)
        text = json.dumps(line, separators=(",", ":"), default=str)
        with self._lock:
            if self._out is not None:
                self._out.write(text + "\n")
                self._out.flush()

    def _run_task_details(self, line: dict[str, Any], reply_body: bytes | None) -> None:
        params = line.get("params") or {}
        if self._run_task_roles is not None:
            try:
                line["resources"].update(self._run_task_roles(params))
            except Exception as exc:  # an unknown task definition: RunTask itself refused it
                line["resources"]["taskDefinitionUnresolved"] = str(exc)
        if reply_body:
            try:
                answer = json.loads(reply_body)
            except ValueError:
                return
            if isinstance(answer, dict):
                line["resources"]["startedTaskArns"] = [t.get("taskArn") for t in answer.get("tasks") or []]
        line["resources"]["tagged"] = bool(params.get("tags"))

    def close(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None


def _open_private(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def describe(
    method: str, path: str, headers: Mapping[str, str], body: bytes, verified: Verified | None
) -> dict[str, Any]:
    """What the log says of one request: service, action, signer, resources and the body."""
    lower = {k.lower(): v for k, v in headers.items()}
    target = lower.get("x-amz-target")
    raw_path, _, query = path.partition("?")
    params: dict[str, Any] = {}
    if target:
        prefix, _, action = target.partition(".")
        service = TARGET_SERVICES.get(prefix, verified.service if verified else prefix)
        params = _json_params(body)
    else:
        service = verified.service if verified else _scope_service(lower.get("authorization", ""), query)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        if lower.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form |= {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        if "Action" in form and service != "s3":
            action = form["Action"]
            params = form
        else:  # S3: the method and the path name the operation
            action = f"{method} {raw_path}"
    resources: dict[str, Any] = {k: params[k] for k in RESOURCE_KEYS if k in params}
    if service == "s3":
        bucket, _, key = urllib.parse.unquote(raw_path).lstrip("/").partition("/")
        resources = {"bucket": bucket, **({"key": key} if key else {})}
    overrides = params.get("overrides")
    if isinstance(overrides, dict):
        resources |= {k: overrides[k] for k in ("taskRoleArn", "executionRoleArn") if k in overrides}
    line: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "service": service,
        "action": action,
        "method": method,
        "path": path,
        "access_key_id": _access_key_id(lower, query),
        "principal": None,  # filled in when the signature verified
        "role_arn": verified.principal.role_arn if verified else None,
        "task_arn": verified.principal.task_arn if verified else None,
        "resources": resources,
        "params": params,
    }
    line |= _body_field(body)  # as received (an aws-chunked upload keeps its chunk framing)
    return line


def _json_params(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _body_field(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body).decode()}


def _access_key_id(lower: Mapping[str, str], query: str) -> str | None:
    credential = lower.get("authorization", "").partition("Credential=")[2]
    if not credential:
        credential = urllib.parse.parse_qs(query).get("X-Amz-Credential", [""])[0]
    return credential.split("/", 1)[0] or None


def _scope_service(authorization: str, query: str) -> str:
    credential = (
        authorization.partition("Credential=")[2] or urllib.parse.parse_qs(query).get("X-Amz-Credential", [""])[0]
    )
    parts = credential.split(",", 1)[0].split("/")
    return parts[3] if len(parts) > 3 else "unknown"
