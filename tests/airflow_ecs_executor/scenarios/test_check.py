"""``airflow ecs-executor check`` against the emulator, healthy and deliberately broken."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from airflow_ecs_executor.check import Checker, Item, render
from airflow_ecs_executor.connection import make_client
from ecs_emulator import Emulator
from tests.helpers import aws_client

API_URL = "http://airflow-api.internal:8080/execution/"


def section(env: dict[str, str], **overrides: str) -> dict[str, str]:
    prefix = "AIRFLOW__ECS_EXECUTOR__"
    out = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    return {**out, **overrides}


def check(env: dict[str, str], api_url: str | None = API_URL, **overrides: str) -> list[Item]:
    return Checker(make_client, api_url).run(section(env, **overrides))


def by_status(items: list[Item], status: str) -> list[str]:
    return [f"{i.what}: {i.detail} / {i.fix}" for i in items if i.status == status]


def test_healthy_setup_passes(ecs_setup: Any, executor_env: dict[str, str]) -> None:
    items = check(executor_env)
    assert by_status(items, "fail") == []
    whats = [i.what for i in items if i.status == "ok"]
    for expected in (
        "configuration [ecs_executor]",
        "credentials (connection 'aws_default')",
        "cluster airflow",
        "task definition airflow-task",
        "awslogs for container 'base'",
        "network settings",
        "permission ecs:DescribeTasks",
        "permission ecs:StopTask",
    ):
        assert expected in whats
    assert render(items).endswith("all checks passed")


def test_api_server_url_on_loopback_is_a_warning(ecs_setup: Any, executor_env: dict[str, str]) -> None:
    items = check(executor_env, api_url="http://127.0.0.1:8080/execution/")
    (warning,) = [i for i in items if i.what.startswith("API server URL")]
    assert warning.status == "warn"
    assert "loopback" in warning.detail


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ({"cluster": "nope"}, "cluster nope: does not exist or is not ACTIVE"),
        ({"task_definition": "nope"}, "task definition nope: ClientException"),
        ({"container_name": "web"}, "has no container 'web'"),
        ({"launch_rate": "fast"}, "launch_rate"),
        # Nothing answers there: named as the endpoint, not as the connection's credentials.
        ({"conn_id": "missing_conn", "endpoint_url": "http://127.0.0.1:9"}, "endpoint: nothing answers at"),
        (
            {"capacity_provider_strategy": '[{"capacityProvider": "FARGATE_SPOT"}]'},
            "capacity providers ['FARGATE_SPOT'] are not attached",
        ),
        ({"queue_profiles": '{"gpu": {"task_definition": "gpu-task"}}'}, "task definition gpu-task (queue 'gpu')"),
    ],
)
def test_broken_setups_fail_with_a_fix(
    ecs_setup: Any, executor_env: dict[str, str], broken: dict[str, str], expected: str
) -> None:
    items = check(executor_env, **broken)
    failures = [i for i in items if i.status == "fail"]
    assert failures, render(items)
    assert any(expected in f"{i.what}: {i.detail}" for i in failures), render(items)
    assert all(i.fix for i in failures)


def test_missing_log_group_and_awsvpc_without_subnets(ecs_setup: Any, executor_env: dict[str, str]) -> None:
    ecs_setup.register_task_definition(
        family="vpc-task",
        networkMode="awsvpc",
        containerDefinitions=[
            {
                "name": "base",
                "image": "apache/airflow:3",
                "memory": 512,
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/ecs/none", "awslogs-stream-prefix": "airflow"},
                },
            }
        ],
    )
    failures = by_status(check(executor_env, task_definition="vpc-task"), "fail")
    assert any("log group /ecs/none does not exist" in f for f in failures), failures
    assert any("awsvpc but no subnets" in f for f in failures), failures


def test_no_api_server_url_fails(ecs_setup: Any, executor_env: dict[str, str]) -> None:
    assert any("API server URL" in f for f in by_status(check(executor_env, api_url=None), "fail"))


def airflow_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", "ecs-executor", "check"],
        # Airflow 3.1 lists the commands of configured executors only (3.2+ also the provider's).
        env={
            **os.environ,
            **env,
            "PYTHONWARNINGS": "ignore",
            "AIRFLOW__CORE__EXECUTOR": "airflow_ecs_executor.EcsExecutor",
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_airflow_cli_command(ecs_setup: Any, executor_env: dict[str, str]) -> None:
    healthy = airflow_check({**executor_env, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": API_URL})
    assert "[ok]   cluster airflow" in healthy.stdout, healthy.stdout + healthy.stderr[-2000:]
    assert healthy.returncode == 0, healthy.stdout
    broken = airflow_check(
        {**executor_env, "AIRFLOW__ECS_EXECUTOR__CLUSTER": "nope", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": API_URL}
    )
    assert broken.returncode == 1
    assert "[FAIL] cluster nope" in broken.stdout
    assert "fix: create it" in broken.stdout
    # Unset, the URL is Airflow's default, http://localhost:8080/execution/: a task cannot reach that.
    default = airflow_check(executor_env)
    assert "[warn] API server URL for tasks ([core] execution_api_server_url): http://localhost:8080/execution/" in (
        default.stdout
    )


def test_task_events_queue_rule_and_delete_permission_are_checked(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator
) -> None:
    from tests.ecs_emulator.test_events import events_to_queue

    endpoint = executor_env["AIRFLOW__ECS_EXECUTOR__ENDPOINT_URL"]
    cluster_arn = ecs_setup.describe_clusters(clusters=["airflow"])["clusters"][0]["clusterArn"]
    url = events_to_queue(emulator, "scheduler-a", cluster_arn)
    items = check(executor_env, task_events_queue_url=url)
    ok = [i.what for i in items if i.status == "ok"]
    assert {"task events queue", "task events rule", "permission sqs:DeleteMessage"} <= set(ok), items
    # A queue no rule targets: the check says which rule to add.
    lonely = aws_client("sqs", emulator).create_queue(QueueName="lonely")["QueueUrl"]
    failed = by_status(check(executor_env, task_events_queue_url=lonely), "fail")
    assert any("no ENABLED EventBridge rule" in f for f in failed), failed
    missing = by_status(check(executor_env, task_events_queue_url=f"{endpoint}/123456789012/nope"), "fail")
    assert any(f.startswith("task events queue") for f in missing), missing
