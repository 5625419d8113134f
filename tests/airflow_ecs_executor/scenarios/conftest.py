"""Drive the real EcsExecutor against the emulator over HTTP with boto3."""

from __future__ import annotations

import json
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecs_emulator import Emulator
from tests.helpers import aws_client

FAKE_RUNTIME = str(Path(__file__).with_name("fake_runtime.py"))


@pytest.fixture(autouse=True, scope="session")
def _airflow_models() -> None:
    """Load every ORM model, as the scheduler process has: Airflow 3.1 builds a Log row per task event."""
    from airflow.models import import_all_models
    from sqlalchemy.orm import configure_mappers

    with warnings.catch_warnings():  # Airflow's models use deprecated paths and loaders; not ours to fix
        warnings.simplefilter("ignore")
        import_all_models()
        configure_mappers()


# The failure classification, the queueing rules and adoption also run on AWS's lifecycle: every
# status in ECS's order with AWS-like dwell times (scaled down to a tenth), polled often enough that
# the executor sees the intermediate states (STOPPING, DEACTIVATING, ...) a task passes through.
AWS_TIMED_MODULES = frozenset({"test_executor", "test_queueings", "test_lifecycle_duties"})
AWS_TIME_SCALE = 0.1


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "emulator_profile" in metafunc.fixturenames:
        module = metafunc.module.__name__.rsplit(".", 1)[-1]
        timed = [pytest.param("aws-lifecycle", marks=pytest.mark.newest_only)] if module in AWS_TIMED_MODULES else []
        metafunc.parametrize("emulator_profile", ["fast", *timed])


@pytest.fixture
def emulator(emulator_profile: str) -> Iterator[Emulator]:
    """The emulator on the fast profile, or on AWS's lifecycle timings for the modules above."""
    scale = AWS_TIME_SCALE if emulator_profile == "aws-lifecycle" else None
    with Emulator(emulator_profile, validate_responses=True, time_scale=scale) as em:
        yield em
        assert em.shape_problems == [], em.shape_problems


@pytest.fixture
def ecs_setup(emulator: Emulator) -> Any:
    ecs = aws_client("ecs", emulator)
    ecs.create_cluster(clusterName="airflow")
    emulator.register_container_instances("airflow", count=4, cpu=16384, memory=65536)  # EC2 capacity
    ecs.register_task_definition(
        family="airflow-task",
        containerDefinitions=[
            {
                "name": "base",
                "image": "apache/airflow:3",
                "memory": 512,
                "entryPoint": [sys.executable, FAKE_RUNTIME],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "/ecs/airflow",
                        "awslogs-stream-prefix": "airflow",
                        "awslogs-create-group": "true",
                        "awslogs-region": "us-east-1",
                    },
                },
            }
        ],
    )
    return ecs


@pytest.fixture
def executor_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "AIRFLOW__ECS_EXECUTOR__CLUSTER": "airflow",
        "AIRFLOW__ECS_EXECUTOR__TASK_DEFINITION": "airflow-task",
        "AIRFLOW__ECS_EXECUTOR__CONTAINER_NAME": "base",
        "AIRFLOW__ECS_EXECUTOR__ENDPOINT_URL": emulator.endpoint_url,
        "AIRFLOW__ECS_EXECUTOR__REGION_NAME": "us-east-1",
        "AIRFLOW__ECS_EXECUTOR__POLL_INTERVAL": "0.2",
        "AIRFLOW__ECS_EXECUTOR__WORKLOAD_DELIVERY": "plain",  # sealed delivery: tests/airflow_ecs_executor/aws/test_sealing.py
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {"conn_type": "aws", "login": emulator.access_key_id, "password": emulator.secret_access_key}
        ),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def executor(ecs_setup: Any, executor_env: dict[str, str]) -> Iterator[Any]:
    from airflow_ecs_executor import EcsExecutor

    ex = EcsExecutor()
    ex.start()
    yield ex
    ex.terminate()


def workload(
    task_id: str,
    *,
    try_number: int = 1,
    executor_config: dict[str, Any] | None = None,
    queue: str = "default",
    dag_id: str = "dag",
) -> Any:
    from airflow.executors import workloads

    dto = getattr(workloads, "TaskInstanceDTO", None) or workloads.TaskInstance  # Airflow 3.1 names it TaskInstance
    ti = dto(
        id=uuid.uuid4(),
        task_id=task_id,
        dag_id=dag_id,
        run_id="manual__2026-11-25",
        try_number=try_number,
        dag_version_id=uuid.uuid4(),
        pool_slots=1,
        priority_weight=1,
        queue=queue,
        map_index=-1,
        executor_config=executor_config,
    )
    return workloads.ExecuteTask(
        token="header.jwt-secret-token.signature",
        dag_rel_path=Path("dag.py"),
        bundle_info=workloads.BundleInfo(name="dags-folder"),
        log_path="dag/task.log",
        ti=ti,
    )


def run(executor: Any, items: list[Any], timeout: float = 60.0) -> dict[Any, tuple[Any, Any]]:
    """Queue the workloads, then heartbeat as the scheduler does until each has a final event."""
    for item in items:
        executor.queue_workload(item, session=None)
    keys = {item.ti.key for item in items}
    final: dict[Any, tuple[Any, Any]] = {}
    seen: dict[Any, list[tuple[Any, Any]]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and keys - set(final):
        executor.heartbeat()
        for key, (state, info) in executor.get_event_buffer().items():
            seen.setdefault(key, []).append((state, info))
            if str(state) in ("success", "failed"):
                final[key] = (state, info)
        time.sleep(0.05)
    executor.all_events = seen  # type: ignore[attr-defined]
    assert not keys - set(final), f"no final state for {keys - set(final)} within {timeout} s"
    return final
