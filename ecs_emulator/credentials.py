"""The emulator's credentials: an access key pair and a control token drawn at each start.

Every AWS request to the emulator must be signed (SigV4) with the emulator's access key, or with
temporary credentials the emulator issued to one of its tasks; the control API (``/_emulator/...``)
needs the control token. A started CLI emulator writes them, with its endpoint, to an env file only
its owner can read (``~/.cache/ecs-emulator/127.0.0.1-<port>.env``, mode 0600), which
``python -m ecs_emulator env`` prints as ``export`` lines and ``ControlClient`` reads.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import shlex
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from ecs_emulator.sigv4 import Principal, SigningKey

# Environment names: the AWS SDKs' own, and the emulator's control token.
ENDPOINT_ENV: Final = "AWS_ENDPOINT_URL"
ACCESS_KEY_ENV: Final = "AWS_ACCESS_KEY_ID"
SECRET_KEY_ENV: Final = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - a variable's name, not a secret
REGION_ENV: Final = "AWS_DEFAULT_REGION"
CONTROL_TOKEN_ENV: Final = "ECS_EMULATOR_CONTROL_TOKEN"  # noqa: S105 - a variable's name
# Fixed credentials for the CLI emulator (the devstack draws them before it starts the emulator).
FIXED_ACCESS_KEY_ENV: Final = "ECS_EMULATOR_FIXED_ACCESS_KEY_ID"
FIXED_SECRET_KEY_ENV: Final = "ECS_EMULATOR_FIXED_SECRET_ACCESS_KEY"  # noqa: S105 - a variable's name
FIXED_CONTROL_TOKEN_ENV: Final = "ECS_EMULATOR_FIXED_CONTROL_TOKEN"  # noqa: S105 - a variable's name
# The header the control API reads its token from.
CONTROL_TOKEN_HEADER: Final = "X-Ecs-Emulator-Token"  # noqa: S105 - a header's name

ENV_FILE_NAMES: Final = (ENDPOINT_ENV, ACCESS_KEY_ENV, SECRET_KEY_ENV, REGION_ENV, CONTROL_TOKEN_ENV)

_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True)
class Credentials:
    """An AWS access key pair, with a session token when it is temporary."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never print a secret by accident
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


def new_access_key_id(prefix: str = "AKIA") -> str:
    """An access key ID shaped as AWS's: a 4-letter prefix and 16 uppercase letters or digits.

    ``AKIA`` marks a long-term key, ``ASIA`` a temporary one (IAM User Guide, "Unique identifiers").
    """
    return prefix + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    """A 40-character secret access key, from the alphabet AWS's use."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def new_credentials() -> Credentials:
    """A fresh long-term key pair."""
    return Credentials(new_access_key_id(), new_secret_access_key())


def new_control_token() -> str:
    """A fresh control token (256 random bits)."""
    return secrets.token_urlsafe(32)


# Named access keys besides the emulator's own, each for one principal: a JSON object of
# {"name": ["access key ID", "secret access key"]} (the devstack's scheduler and API server).
PRINCIPALS_ENV: Final = "ECS_EMULATOR_PRINCIPALS"
OWN_PRINCIPAL: Final = "emulator"  # the name the request log gives the emulator's own key
TASK_PRINCIPAL: Final = "task"  # ... and a task's role credentials


def principals_from_environ(environ: Mapping[str, str]) -> dict[str, Credentials]:
    """The named keys of ``ECS_EMULATOR_PRINCIPALS``; ``ValueError`` names what is wrong."""
    raw = environ.get(PRINCIPALS_ENV)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise ValueError(f"{PRINCIPALS_ENV} is not JSON") from None
    if not isinstance(value, dict) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) and p for p in pair)
        for pair in value.values()
    ):
        raise ValueError(f'{PRINCIPALS_ENV} must be {{"name": ["access key ID", "secret access key"], ...}}')
    return {str(name): Credentials(pair[0], pair[1]) for name, pair in value.items()}


def fixed_from_environ(environ: Mapping[str, str]) -> tuple[Credentials | None, str | None]:
    """Credentials and control token fixed through ``ECS_EMULATOR_FIXED_*``, where both halves are set."""
    key_id, secret = environ.get(FIXED_ACCESS_KEY_ENV), environ.get(FIXED_SECRET_KEY_ENV)
    credentials = Credentials(key_id, secret) if key_id and secret else None
    return credentials, environ.get(FIXED_CONTROL_TOKEN_ENV) or None


# -- the env file ---------------------------------------------------------------------------------
def default_env_file(port: int, host: str = "127.0.0.1") -> Path:
    """Where a CLI emulator on ``host:port`` writes its env file."""
    return Path.home() / ".cache" / "ecs-emulator" / f"{host}-{port}.env"


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Write ``NAME=value`` lines, readable by the owner only (0600; its directory 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    # Created 0600 from the start: the secret never sits in a file others can read, even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def read_env_file(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of an env file (``FileNotFoundError`` when there is none)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, raw = line.partition("=")
        if sep and name.strip() and not name.startswith("#"):
            parts = shlex.split(raw)
            values[name.strip()] = parts[0] if parts else ""
    return values


def export_lines(values: Mapping[str, str]) -> str:
    """``export NAME=value`` lines for a POSIX shell's ``eval``."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())


def client_kwargs(values: Mapping[str, str]) -> dict[str, Any]:
    """boto3 client keyword arguments from env-file values (``boto3.client("ecs", **kwargs)``)."""
    return {
        "endpoint_url": values[ENDPOINT_ENV],
        "region_name": values.get(REGION_ENV, "us-east-1"),
        "aws_access_key_id": values[ACCESS_KEY_ENV],
        "aws_secret_access_key": values[SECRET_KEY_ENV],
    }


def port_of(endpoint_url: str) -> int:
    """The port of an ``http://127.0.0.1:PORT`` endpoint (80 when none is given)."""
    return urlsplit(endpoint_url).port or 80


# -- keys the emulator accepts: its own, and those it issued to tasks -------------------------------
# The container credentials endpoint (as the ECS agent's at 169.254.170.2): a task's SDK fetches
# temporary credentials for its task role from AWS_CONTAINER_CREDENTIALS_FULL_URI, sending
# AWS_CONTAINER_AUTHORIZATION_TOKEN as its Authorization header. botocore accepts a full URI on a
# loopback address over http and reads AccessKeyId, SecretAccessKey, Token and Expiration
# (botocore.credentials.ContainerProvider; ECS Developer Guide, "Amazon ECS task IAM role").
TASK_CREDENTIALS_SECONDS: Final = 3600.0
# botocore refreshes temporary credentials 15 minutes before they expire (advisory refresh);
# the endpoint hands out new ones once less than this is left.
_REISSUE_BEFORE_SECONDS: Final = 20 * 60.0


@dataclass
class _TaskSlot:
    task_arn: str
    role_arn: str
    auth_token: str
    key_id: str | None = None


class KeyRing:
    """The keys the emulator accepts: its own long-term key, and task role credentials it issued."""

    def __init__(self, own: Credentials, *, clock: Callable[[], float] = time.time) -> None:
        self.own = own
        self._clock = clock
        self._lock = threading.Lock()
        self._issued: dict[str, SigningKey] = {}
        self._named: dict[str, tuple[str, Credentials]] = {}  # access key ID -> (principal, key)
        self._slots: dict[str, _TaskSlot] = {}

    def lookup(self, access_key_id: str) -> SigningKey | None:
        """The key with this ID: the emulator's own, a named one, or one issued to a task."""
        if hmac.compare_digest(access_key_id.encode(), self.own.access_key_id.encode()):
            return SigningKey(self.own.secret_access_key, Principal(self.own.access_key_id))
        with self._lock:
            named = self._named.get(access_key_id)
            if named is not None:
                return SigningKey(named[1].secret_access_key, Principal(access_key_id))
            return self._issued.get(access_key_id)

    def add_principal(self, name: str, credentials: Credentials) -> None:
        """Accept another long-term key, for the principal ``name`` (the request log says who called)."""
        if name in (OWN_PRINCIPAL, TASK_PRINCIPAL):
            raise ValueError(f"{name!r} is the name of the emulator's own key or of task credentials")
        with self._lock:
            self._named[credentials.access_key_id] = (name, credentials)

    def principal_name(self, principal: Principal) -> str:
        """Who a verified signer is: ``task`` (role credentials), a named key's name, or ``emulator``."""
        if principal.role_arn is not None:
            return TASK_PRINCIPAL
        with self._lock:
            named = self._named.get(principal.access_key_id)
        return named[0] if named is not None else OWN_PRINCIPAL

    def task_slot(self, task_arn: str, role_arn: str) -> tuple[str, str]:
        """A credentials endpoint for one task's role: (credential ID for the URL, authorization token)."""
        credential_id, token = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
        with self._lock:
            self._slots[credential_id] = _TaskSlot(task_arn, role_arn, token)
        return credential_id, token

    def fetch(self, credential_id: str, auth_token: str) -> dict[str, str] | None:
        """The task's temporary credentials, as the container endpoint answers; None for a bad ID or token."""
        with self._lock:
            slot = self._slots.get(credential_id)
            if slot is None or not hmac.compare_digest(auth_token.encode(), slot.auth_token.encode()):
                return None
            now = self._clock()
            current = self._issued.get(slot.key_id) if slot.key_id else None
            if current is None or (current.expires_at or 0) - now < _REISSUE_BEFORE_SECONDS:
                key_id = new_access_key_id("ASIA")  # "ASIA": temporary credentials from STS
                current = SigningKey(
                    secret_access_key=new_secret_access_key(),
                    principal=Principal(key_id, role_arn=slot.role_arn, task_arn=slot.task_arn),
                    session_token=secrets.token_urlsafe(96),
                    expires_at=now + TASK_CREDENTIALS_SECONDS,
                )
                self._issued[key_id] = current
                slot.key_id = key_id
                self._forget_expired(now)
            expiration = datetime.fromtimestamp(current.expires_at or now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return {
                "RoleArn": slot.role_arn,
                "AccessKeyId": current.principal.access_key_id,
                "SecretAccessKey": current.secret_access_key,
                "Token": current.session_token or "",
                "Expiration": expiration,
            }

    def _forget_expired(self, now: float) -> None:
        for key_id in [k for k, v in self._issued.items() if (v.expires_at or now) < now]:
            del self._issued[key_id]
