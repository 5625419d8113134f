"""Fargate Spot with the real executor and the emulator: shortfall -> on-demand, interruption -> next try on-demand.

The emulator keeps FARGATE and FARGATE_SPOT capacity apart (its provider-capacity control), and a Fargate
shortfall reads as on AWS: a RunTask failures[] entry "Capacity is unavailable at this time. Please try
again later or in a different availability zone" (AWS knowledge center, ecs-fargate-runtask-capacity).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from ecs_emulator import Emulator
from tests.airflow_ecs_executor.scenarios.conftest import FAKE_RUNTIME, run, workload
from tests.helpers import aws_client, wait_for


@pytest.fixture
def spot_executor(emulator: Emulator, executor_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    ecs = aws_client("ecs", emulator)
    ecs.create_cluster(clusterName="spot", capacityProviders=["FARGATE", "FARGATE_SPOT"])
    ecs.register_task_definition(
        family="airflow-fargate",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "base", "image": "apache/airflow:3", "entryPoint": [sys.executable, FAKE_RUNTIME]}
        ],
    )
    settings = {
        "CLUSTER": "spot",
        "TASK_DEFINITION": "airflow-fargate",
        "SUBNETS": "subnet-1",
        "CAPACITY_PROVIDER_STRATEGY": '[{"capacityProvider": "FARGATE_SPOT", "weight": 1}]',
        "SPOT_FALLBACK_AFTER": "1",
    }
    for key, value in settings.items():
        monkeypatch.setenv(f"AIRFLOW__ECS_EXECUTOR__{key}", value)
    from airflow_ecs_executor import EcsExecutor

    ex = EcsExecutor()
    ex.start()
    yield ex
    ex.terminate()


def _tags(emulator: Emulator, arn: str) -> dict[str, str]:
    ecs = aws_client("ecs", emulator)
    return {t["key"]: t["value"] for t in ecs.list_tags_for_resource(resourceArn=arn)["tags"]}


def _events(executor: Any) -> list[str]:
    return [log.extra or "" for log in executor._task_event_logs]


def test_a_spot_shortfall_launches_the_same_try_on_demand(spot_executor: Any, emulator: Emulator) -> None:
    emulator.set_provider_capacity("FARGATE_SPOT", 0)
    item = workload("ok")
    final = run(spot_executor, [item], timeout=60)
    assert str(final[item.ti.key][0]) == "success"  # one try: the fallback spent none
    rows = emulator.tasks()
    assert [r["capacityProviderName"] for r in rows] == ["FARGATE"]
    assert emulator.counters()["ecs"]["RunTask.capacity_failures"] >= 1
    assert _tags(emulator, rows[0]["taskArn"])["ecs_executor_capacity"] == "FARGATE"
    assert any("Fargate Spot had no capacity" in text and "on-demand" in text for text in _events(spot_executor))


def test_with_spot_capacity_the_task_runs_and_is_tagged_on_spot(spot_executor: Any, emulator: Emulator) -> None:
    item = workload("ok")
    final = run(spot_executor, [item], timeout=60)
    assert str(final[item.ti.key][0]) == "success"
    (row,) = emulator.tasks()
    assert row["capacityProviderName"] == "FARGATE_SPOT"
    assert _tags(emulator, row["taskArn"])["ecs_executor_capacity"] == "FARGATE_SPOT"
    assert any("runs on FARGATE_SPOT" in text for text in _events(spot_executor))


def test_after_a_spot_interruption_the_next_try_runs_on_demand(spot_executor: Any, emulator: Emulator) -> None:
    first = workload("sleep")
    spot_executor.queue_workload(first, session=None)
    arn = wait_for(
        lambda: (
            spot_executor.heartbeat(),
            next((t["taskArn"] for t in emulator.tasks() if t["lastStatus"] == "RUNNING"), None),
        )[1]
    )
    emulator.inject("spot_interruption", task_arn=arn)
    failed: dict[Any, Any] = {}

    def done() -> bool:
        spot_executor.heartbeat()
        failed.update({k: v for k, v in spot_executor.get_event_buffer().items() if str(v[0]) == "failed"})
        return bool(failed)

    wait_for(done, timeout=30)
    reason = failed[first.ti.key][1]
    assert "Spot interruption" in reason and "next try runs on on-demand capacity" in reason
    # Airflow retries: the next try of the same task instance goes to FARGATE, then Spot again after it.
    second = workload("sleep", try_number=2, executor_config={})
    second.ti.id = first.ti.id
    spot_executor.queue_workload(second, session=None)
    row = wait_for(
        lambda: (
            spot_executor.heartbeat(),
            next((t for t in emulator.tasks() if t["taskArn"] != arn and t["lastStatus"] == "RUNNING"), None),
        )[1]
    )
    assert row["capacityProviderName"] == "FARGATE"
    assert any("interrupted on Fargate Spot" in text for text in _events(spot_executor))
