"""Sealed workloads against KMS as the emulator serves it (moto behind the same endpoint), over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_ecs_executor.aws.requests import MAX_OVERRIDES_CHARS, WorkloadSpec, build_run_task, overrides_length
from airflow_ecs_executor.aws.sealing import (
    UNSEAL_EXIT_CODE,
    UNSEAL_MODULE,
    KmsSealer,
    PrefetchingSealer,
    Sealed,
    SealError,
    launch_context,
    open_sealed,
    seal,
)
from airflow_ecs_executor.config import parse_config
from ecs_emulator.emulator import Emulator
from tests.helpers import aws_client

# KMS, AES-GCM and the unseal step's refusals do not depend on Airflow's version (the e2e runs both).
pytestmark = pytest.mark.newest_only
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0aSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


def _kms(em: Emulator) -> Any:
    return aws_client("kms", em, read_timeout=60)  # moto loads its KMS backend on the first call


@pytest.fixture
def kms(ecs_emulator_server: Emulator) -> tuple[Any, str]:
    client = _kms(ecs_emulator_server)
    key = client.create_key(Description="workloads")["KeyMetadata"]["KeyId"]
    return client, key


def _large_workload() -> str:
    """A workload JSON as large as Airflow's get: long ids (250 characters each) and a long JWT."""
    long = "x" * 250
    return json.dumps(
        {
            "token": JWT + "A" * 700,
            "ti": {
                "id": "0195b7a4-1c7e-7c1d-9d57-3c8a1b2c3d4e",
                "task_id": long,
                "dag_id": long,
                "run_id": "manual__" + long,
                "try_number": 1,
                "map_index": 12345,
                "pool_slots": 1,
                "queue": "default",
                "priority_weight": 1,
                "dag_version_id": "0195b7a4-1c7e-7c1d-9d57-3c8a1b2c3d4f",
                "parent_context_carrier": {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
                "context_carrier": {"traceparent": "00-" + "c" * 32 + "-" + "d" * 16 + "-01"},
            },
            "dag_rel_path": long + ".py",
            "bundle_info": {"name": "dags-folder", "version": None},
            "log_path": f"dag_id={long}/run_id=manual__{long}/task_id={long}/attempt=1.log",
            "type": "ExecuteTask",
        }
    )


def test_a_sealed_workload_opens_only_with_its_own_context(kms: tuple[Any, str]) -> None:
    client, key = kms
    context = launch_context("arn:aws:ecs:us-east-1:123456789012:cluster/airflow", "q1", 1)
    assert context == {"ecs-executor:cluster": "airflow", "ecs-executor:queueing": "q1", "ecs-executor:attempt": "1"}
    sealed = seal(client, key, b'{"token": "secret"}', context)
    assert b"secret" not in sealed.ciphertext
    assert open_sealed(client, Sealed.from_args(sealed.command()[3:])) == b'{"token": "secret"}'
    # KMS refuses the data key under another launch's context (the KMS developer guide, "Encryption
    # context": https://docs.aws.amazon.com/kms/latest/developerguide/encrypt_context.html).
    other = Sealed({**context, "ecs-executor:attempt": "2"}, sealed.encrypted_key, sealed.nonce, sealed.ciphertext)
    with pytest.raises(ClientError) as denied:
        open_sealed(client, other)
    assert denied.value.response["Error"]["Code"] == "InvalidCiphertextException"
    # A tampered ciphertext never decrypts.
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(SealError, match="tampered"):
        open_sealed(client, Sealed(context, sealed.encrypted_key, sealed.nonce, flipped))


def test_a_sealed_request_holds_no_token_and_fits_the_overrides_limit(kms: tuple[Any, str]) -> None:
    client, key = kms
    payload = _large_workload()
    cfg = parse_config(
        {"cluster": "airflow", "task_definition": "td", "container_name": "base", "workload_kms_key": key}
    )
    spec = WorkloadSpec(
        workload_id="w",
        queueing="q1",
        command=["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", payload],
        queue=None,
        executor_config={"environment": {"MODE": "fast"}},
        tags={"dag_id": "d"},
        payload=lambda: payload,
    )
    request = build_run_task(cfg, spec, attempt=3, sealer=KmsSealer(client, key))
    text = json.dumps(request)
    assert JWT not in text and "secret" not in text
    command = request["overrides"]["containerOverrides"][0]["command"]
    assert command[:3] == ["python", "-m", UNSEAL_MODULE]
    assert json.loads(command[4])["ecs-executor:attempt"] == "3"
    # The largest workload we can think of, sealed, stays well inside the 8,192-character limit.
    assert overrides_length(request) < MAX_OVERRIDES_CHARS - 1500, overrides_length(request)
    assert open_sealed(client, Sealed.from_args(command[3:])).decode() == payload


def test_sealing_fails_the_launch_with_the_fix_when_kms_refuses(kms: tuple[Any, str]) -> None:
    client, _ = kms
    sealer = KmsSealer(client, "alias/does-not-exist")
    with pytest.raises(SealError, match="kms:GenerateDataKey"):
        sealer(b"{}", launch_context("airflow", "q1", 1))


def _unseal(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", UNSEAL_MODULE, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_container_step_exits_77_with_the_reason_when_it_cannot_open(
    kms: tuple[Any, str], ecs_emulator_server: Emulator
) -> None:
    client, key = kms
    sealed = seal(client, key, b'{"token": "secret"}', launch_context("airflow", "q1", 1))
    env = ecs_emulator_server.env()  # signed as the emulator requires; KMS refuses the context
    wrong_context = sealed.command()[3:]
    wrong_context[1] = json.dumps({**sealed.context, "ecs-executor:queueing": "q2"})
    done = _unseal(wrong_context, env)
    assert done.returncode == UNSEAL_EXIT_CODE, done.stderr
    assert "cannot open the sealed workload: KMS Decrypt: InvalidCiphertextException" in done.stderr
    assert "kms:Decrypt" in done.stderr and "secret" not in done.stderr + done.stdout
    done = _unseal(["v0", "x"], env)
    assert done.returncode == UNSEAL_EXIT_CODE and "expected arguments" in done.stderr


def test_prefetched_sealing_hands_over_its_result_or_seals_again_for_another_context(kms: tuple[Any, str]) -> None:
    client, key = kms
    sealer = PrefetchingSealer(KmsSealer(client, key), workers=2)
    try:
        context = launch_context("airflow", "q1", 1)
        prefetched = sealer.prefetch(lambda: '{"token": "secret"}', context)
        command = prefetched(b'{"token": "secret"}', context)
        assert Sealed.from_args(command[3:]).context == context
        other = launch_context("other", "q1", 1)  # the request named another cluster after all
        command = prefetched(b'{"token": "secret"}', other)
        assert open_sealed(client, Sealed.from_args(command[3:])) == b'{"token": "secret"}'
        assert Sealed.from_args(command[3:]).context == other
        failing = PrefetchingSealer(KmsSealer(client, "alias/none"), workers=1)
        with pytest.raises(SealError, match="kms:GenerateDataKey"):
            failing.prefetch(lambda: "{}", context)(b"{}", context)
        failing.close()
    finally:
        sealer.close()
