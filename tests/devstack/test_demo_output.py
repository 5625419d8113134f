"""What the demo prints: its settings are a valid section, and each try's row says what ECS did, in words."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from airflow_ecs_executor.config import parse_config
from devstack.byhand import as_exports, as_ini, section, setup_ecs
from devstack.demo import _definition, _resources, _stop, _summary
from ecs_emulator import Emulator
from tests.helpers import aws_client, python_container, wait_for

pytestmark = pytest.mark.newest_only  # the demo runs on the newest Airflow only


def test_printed_settings_are_a_valid_section(ecs_emulator_server: Emulator, monkeypatch: Any) -> None:
    options = section(ecs_emulator_server.endpoint_url)
    cfg = parse_config(options)
    assert cfg.endpoint_url == ecs_emulator_server.endpoint_url
    assert cfg.queue_profiles["big"].task_definition == "airflow-task-big"
    assert f"endpoint_url = {ecs_emulator_server.endpoint_url}\n" in as_ini(options)
    # The export lines survive a shell: what `eval "$(python -m devstack config --export)"` sets.
    shell = subprocess.run(
        ["bash", "-c", as_exports(options) + "echo $AIRFLOW__ECS_EXECUTOR__QUEUE_PROFILES"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout.strip() == options["queue_profiles"]


def test_setup_ecs_creates_what_the_section_names(ecs_emulator_server: Emulator, monkeypatch: Any) -> None:
    for name, value in ecs_emulator_server.env().items():
        monkeypatch.setenv(name, value)
    created = setup_ecs(ecs_emulator_server.endpoint_url, "us-east-1", "/somewhere/airflow")
    assert created[0].startswith("cluster airflow")
    assert "task definition airflow-task:1 (container base, 1536 MiB)" in created
    again = setup_ecs(ecs_emulator_server.endpoint_url, "us-east-1", None)  # a second run: new revisions only
    assert [line for line in again if line.startswith("cluster")] == []
    ecs = aws_client("ecs", ecs_emulator_server)
    definition = ecs.describe_task_definition(taskDefinition="airflow-task:1")["taskDefinition"]
    assert {"name": "AIRFLOW_HOME", "value": "/somewhere/airflow"} in definition["containerDefinitions"][0][
        "environment"
    ]


def test_a_stopped_try_reads_in_words(ecs_emulator_server: Emulator) -> None:
    ecs = aws_client("ecs", ecs_emulator_server)
    ecs.create_cluster(clusterName="demo")
    ecs.register_task_definition(
        family="work",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[python_container(code="import sys; sys.exit(3)")],
    )
    arn = ecs.run_task(
        cluster="demo",
        taskDefinition="work",
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
        overrides={"cpu": "512", "memory": "1024"},
    )["tasks"][0]["taskArn"]

    def stopped() -> dict[str, Any] | None:
        task: dict[str, Any] = ecs.describe_tasks(cluster="demo", tasks=[arn])["tasks"][0]
        return task if task["lastStatus"] == "STOPPED" else None

    task = wait_for(stopped)
    assert _definition(task) == "work:1"
    assert _resources(task) == "512/1024"  # the overrides, as executor_config sets them
    assert _stop(task) == "Essential container in task exited (exit code 3)"


def test_summary_says_waiting_not_none() -> None:
    tis = [{"state": None}, {"state": None}, {"state": "running"}]
    line = _summary(tis, {})
    assert "task instances: 1 running, 2 waiting | ECS tasks: none yet" in line
