"""``airflow ecs-executor check`` on sealed workloads, against the emulator's KMS (moto) over HTTP."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from airflow_ecs_executor.check import Checker, Item
from airflow_ecs_executor.connection import make_client
from ecs_emulator.emulator import Emulator

# As test_check_aws_kit.py: the check imports no Airflow API that differs between versions.
pytestmark = pytest.mark.newest_only

API_URL = "http://airflow-api.internal:8080/execution/"


def _section(env: dict[str, str], **overrides: str) -> dict[str, str]:
    prefix = "AIRFLOW__ECS_EXECUTOR__"
    return {**{k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}, **overrides}


def _sealing_items(env: dict[str, str], **overrides: str) -> list[Item]:
    items = Checker(make_client, API_URL).run(_section(env, **overrides))
    return [i for i in items if i.what.startswith("sealed workloads")]


def test_check_reports_the_sealing_key_and_the_task_role(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator
) -> None:
    kms = boto3.client("kms", **emulator.client_kwargs())
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    items = _sealing_items(executor_env, workload_delivery="sealed", workload_kms_key=key)
    assert items[0].status == "ok" and "kms:GenerateDataKey" in items[0].what
    # The emulator's task definition has or lacks a task role; either way the check says what the role needs.
    assert items[1].status in ("info", "fail")
    assert "kms:Decrypt" in items[1].detail + items[1].fix

    # (moto answers GenerateDataKey on a disabled key, where KMS answers DisabledException: not tested here.)
    (missing,) = _sealing_items(executor_env, workload_delivery="sealed", workload_kms_key="alias/none")
    assert missing.status == "fail" and missing.detail.startswith("NotFoundException")


def test_check_warns_about_plain_delivery(ecs_setup: Any, executor_env: dict[str, str]) -> None:
    (warning,) = _sealing_items(executor_env)
    assert warning.status == "warn" and "ecs:DescribeTasks" in warning.detail
