"""Sealed workloads: the workload JSON (and its JWT) encrypted for the task role, never sent in clear.

Envelope encryption with AWS KMS, one data key per launch attempt:

* the scheduler asks KMS for a fresh AES-256 data key (``GenerateDataKey``) under an *encryption
  context* that names the launch (cluster, queueing, launch attempt), encrypts the workload JSON
  with it locally (AES-256-GCM, the context as associated data) and forgets the plaintext key;
* the RunTask command carries only the context, the KMS-encrypted data key and the ciphertext;
* the container's first step (``python -m airflow_ecs_executor.aws.unseal``) asks KMS to decrypt
  the data key with *its task role's* credentials, decrypts the workload and runs it.

KMS ``Encrypt`` alone would do without the local cipher, but it takes at most 4,096 bytes of
plaintext (KMS API reference, Encrypt), and a workload JSON with a long DAG id, run id and JWT
can come close; the envelope has no such limit, and the ciphertext is only 28 bytes longer than
the workload. KMS refuses ``Decrypt`` unless the same encryption context is given (KMS developer
guide, "Encryption context"), and the key policy lets the task role decrypt only with a context
naming the cluster, so the sealed command opens nowhere else.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# The unseal step's exit code when the workload cannot be opened: a start failure (core.classify).
from airflow_ecs_executor.core.classify import UNSEAL_EXIT_CODE

__all__ = [
    "UNSEAL_EXIT_CODE",
    "KmsSealer",
    "PrefetchingSealer",
    "SealError",
    "Sealed",
    "launch_context",
    "open_sealed",
    "seal",
]

UNSEAL_MODULE: Final = "airflow_ecs_executor.aws.unseal"
FORMAT: Final = "v1"
CONTEXT_PREFIX: Final = "ecs-executor:"
_NONCE_BYTES: Final = 12  # AES-GCM's standard 96-bit nonce (NIST SP 800-38D)


class SealError(Exception):
    """The workload could not be sealed or opened; the message says why (never the workload)."""


def launch_context(cluster: str, queueing: str, attempt: int) -> dict[str, str]:
    """The KMS encryption context of one launch attempt: names it, holds no secret.

    The cluster is the cluster's name (not an ARN), so the key policy can name it; the queueing and
    attempt bind the ciphertext to this one launch (a sealed command copied into another launch's
    context does not open).
    """
    name = cluster.rsplit("/", 1)[-1]
    return {
        f"{CONTEXT_PREFIX}cluster": name,
        f"{CONTEXT_PREFIX}queueing": queueing,
        f"{CONTEXT_PREFIX}attempt": str(attempt),
    }


def _aad(context: Mapping[str, str]) -> bytes:
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Sealed:
    """A sealed workload: what travels in the RunTask command. Nothing in it is secret."""

    context: Mapping[str, str]
    encrypted_key: bytes
    nonce: bytes
    ciphertext: bytes

    def command(self, python: str = "python") -> list[str]:
        """The container command that opens and runs this workload."""
        return [
            python,
            "-m",
            UNSEAL_MODULE,
            FORMAT,
            json.dumps(dict(self.context), sort_keys=True, separators=(",", ":")),
            _b64(self.encrypted_key),
            _b64(self.nonce + self.ciphertext),
        ]

    @classmethod
    def from_args(cls, args: Sequence[str]) -> Sealed:
        """The sealed workload in an unseal command's arguments (after the module name)."""
        if len(args) != 4 or args[0] != FORMAT:
            raise SealError(f"expected arguments '{FORMAT} <context> <encrypted key> <ciphertext>', got {len(args)}")
        try:
            context = json.loads(args[1])
            if not isinstance(context, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in context.items()
            ):
                raise ValueError("not a JSON object of strings")
            blob = _unb64(args[3])
            return cls(context, _unb64(args[2]), blob[:_NONCE_BYTES], blob[_NONCE_BYTES:])
        except ValueError as exc:
            raise SealError(f"the sealed workload is malformed: {exc}") from None


def seal(kms: Any, key_id: str, plaintext: bytes, context: Mapping[str, str]) -> Sealed:
    """Encrypt ``plaintext`` under a fresh data key of ``key_id``: one GenerateDataKey call."""
    answer = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=dict(context))
    key = answer["Plaintext"]
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _aad(context))
    return Sealed(dict(context), answer["CiphertextBlob"], nonce, ciphertext)


def open_sealed(kms: Any, sealed: Sealed) -> bytes:
    """The plaintext of a sealed workload: one Decrypt call with the caller's (task role's) credentials."""
    answer = kms.decrypt(CiphertextBlob=sealed.encrypted_key, EncryptionContext=dict(sealed.context))
    try:
        return AESGCM(answer["Plaintext"]).decrypt(sealed.nonce, sealed.ciphertext, _aad(sealed.context))
    except Exception as exc:  # cryptography's InvalidTag: tampered, truncated or another context
        raise SealError(f"the sealed workload does not decrypt ({type(exc).__name__}): tampered or truncated") from None


class KmsSealer:
    """Seals workloads with one KMS key: a ``requests.Sealer`` for the launcher thread."""

    def __init__(self, kms: Any, key_id: str) -> None:
        self._kms = kms
        self.key_id = key_id

    def __call__(self, plaintext: bytes, context: Mapping[str, str]) -> list[str]:
        """The container command of the sealed workload; SealError (AWS's reason and the fix) when KMS refuses."""
        try:
            return seal(self._kms, self.key_id, plaintext, context).command()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise SealError(
                f"the workload could not be sealed with KMS key {self.key_id}: {error.get('Code')}: "
                f"{error.get('Message')}; fix: allow kms:GenerateDataKey on the key for the scheduler "
                "([ecs_executor] workload_kms_key, deploy/cloudformation.yaml's WorkloadKey)"
            ) from None
        except BotoCoreError as exc:
            raise SealError(
                f"the workload could not be sealed: KMS was not reachable ({type(exc).__name__}: {exc})"
            ) from None


class PrefetchingSealer:
    """Seals ahead on a small pool, so the launcher thread (one request at a time) never waits on KMS.

    The data key of a launch is asked for when the launch is decided, not when its request is built.

    ``prefetch`` starts sealing one launch and returns a ``requests.Sealer`` that hands over the
    result (or seals inline if the request ends up with another context). Nothing is kept here:
    a launch that is withdrawn drops its sealer with its request.
    """

    def __init__(self, sealer: KmsSealer, workers: int) -> None:
        self._sealer = sealer
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ecs-executor-seal")

    @property
    def key_id(self) -> str:
        """The KMS key that seals."""
        return self._sealer.key_id

    def prefetch(self, payload: Callable[[], str], context: Mapping[str, str]) -> Callable[..., list[str]]:
        """Start sealing ``payload()`` for ``context``; the returned sealer waits for it when asked."""
        future = self._pool.submit(lambda: self._sealer(payload().encode(), context))

        def sealed(plaintext: bytes, wanted: Mapping[str, str]) -> list[str]:
            if dict(wanted) != dict(context):
                future.cancel()
                return self._sealer(plaintext, wanted)
            return future.result()

        return sealed

    def __call__(self, plaintext: bytes, context: Mapping[str, str]) -> list[str]:
        """Seal inline (a launch that was not prefetched)."""
        return self._sealer(plaintext, context)

    def close(self) -> None:
        """Stop the pool; sealing under way finishes."""
        self._pool.shutdown(wait=False, cancel_futures=True)
