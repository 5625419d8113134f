from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_ecs_executor.aws.requests import (
    RequestError,
    WorkloadSpec,
    build_run_task,
    client_token,
    launch_attempt_of,
    redact,
    sanitise_tag,
)
from airflow_ecs_executor.config import parse_config

JWT = "eyJhbGciOiJIUzI1NiJ9.secret-payload.signature"
COMMAND = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", json.dumps({"token": JWT})]


def config(**raw: str) -> Any:
    return parse_config(
        {"cluster": "c", "task_definition": "td", "container_name": "base", "workload_delivery": "plain", **raw}
    )


def spec(**kwargs: Any) -> WorkloadSpec:
    base: dict[str, Any] = {
        "workload_id": "dag/task/run/-1/1",
        "queueing": "q1",
        "command": COMMAND,
        "queue": None,
        "executor_config": {},
        "tags": {"dag_id": "dag", "run_id": "manual__2026-11-25T02:54:08+00:00"},
    }
    return WorkloadSpec(**{**base, **kwargs})


def test_basic_request() -> None:
    req = build_run_task(config(subnets="s-1,s-2", security_groups="sg-1", launch_type="FARGATE"), spec(), attempt=1)
    assert req["cluster"] == "c"
    assert req["taskDefinition"] == "td"
    assert req["count"] == 1
    assert req["launchType"] == "FARGATE"
    assert req["startedBy"] == "airflow-ecs-executor/1"
    assert req["overrides"]["containerOverrides"] == [{"name": "base", "command": COMMAND}]
    assert req["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": ["s-1", "s-2"],
        "assignPublicIp": "DISABLED",
        "securityGroups": ["sg-1"],
    }
    assert {"key": "run_id", "value": "manual__2026-11-25T02:54:08+00:00"} in req["tags"]


def test_token_is_stable_per_attempt_and_valid() -> None:
    first = build_run_task(config(), spec(), attempt=1)["clientToken"]
    assert first == build_run_task(config(), spec(), attempt=1)["clientToken"]
    assert first != build_run_task(config(), spec(), attempt=2)["clientToken"]
    assert len(first) == 64
    assert all(33 <= ord(c) <= 126 for c in first)
    assert first == client_token("q1", 1)


def test_token_belongs_to_the_queueing_not_the_try() -> None:
    """A reschedule-mode sensor's second poke: same dag/task/run/map index/try, another queueing."""
    poke_1 = build_run_task(config(), spec(queueing="first-poke"), attempt=1)
    poke_2 = build_run_task(config(), spec(queueing="second-poke"), attempt=1)
    assert poke_1["clientToken"] != poke_2["clientToken"]


def test_launch_attempt_survives_in_started_by() -> None:
    """StopTask deletes tags (ECS API model, StopTask): the attempt rides in startedBy instead."""
    req = build_run_task(config(), spec(), attempt=3)
    assert launch_attempt_of(req["startedBy"]) == 3
    assert launch_attempt_of("someone-else") is None
    assert launch_attempt_of(None) is None


def test_executor_config_resources() -> None:
    ec = {
        "cpu": 1024,
        "memory": 2048,
        "environment": {"MODE": "fast"},
        "gpu": 1,
        "ephemeral_storage": 50,
        "tags": {"team": "data"},
    }
    req = build_run_task(config(), spec(executor_config=ec), attempt=1)
    overrides = req["overrides"]
    assert (overrides["cpu"], overrides["memory"]) == ("1024", "2048")
    assert overrides["ephemeralStorage"] == {"sizeInGiB": 50}
    container = overrides["containerOverrides"][0]
    assert container["environment"] == [{"name": "MODE", "value": "fast"}]
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert {"key": "team", "value": "data"} in req["tags"]


def test_queue_profile_applies() -> None:
    cfg = config(
        queue_profiles='{"big": {"task_definition": "big-td", "container_name": "worker", "memory": 8192,'
        ' "capacity_provider_strategy": [{"capacityProvider": "FARGATE_SPOT"}]}}'
    )
    req = build_run_task(cfg, spec(queue="big"), attempt=1)
    assert req["taskDefinition"] == "big-td"
    assert req["overrides"]["containerOverrides"][0]["name"] == "worker"
    assert req["overrides"]["memory"] == "8192"
    assert req["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]


def test_run_task_kwargs_merged_last() -> None:
    cfg = config(run_task_kwargs='{"propagateTags": "TASK_DEFINITION", "overrides": {"taskRoleArn": "arn:r"}}')
    req = build_run_task(cfg, spec(), attempt=1)
    assert req["propagateTags"] == "TASK_DEFINITION"
    assert req["overrides"]["taskRoleArn"] == "arn:r"
    assert req["overrides"]["containerOverrides"][0]["command"] == COMMAND


@pytest.mark.parametrize(
    ("ec", "needle"),
    [
        pytest.param({"cluster": "prod"}, "not allowed here", id="privileged-cluster"),
        pytest.param({"task_definition": "other"}, "not allowed here", id="privileged-task-definition"),
        pytest.param({"task_role_arn": "arn:aws:iam::1:role/admin"}, "not allowed here", id="privileged-role"),
        pytest.param({"network": {"subnets": ["x"]}}, "not allowed here", id="privileged-network"),
        pytest.param({"colour": "blue"}, "not allowed here", id="unknown-key"),
        pytest.param({"cpu": True}, "CPU units", id="cpu-bool"),
        pytest.param({"memory": [1]}, "memory in MiB", id="memory-list"),
        pytest.param({"environment": "A=1"}, "a dict of names", id="environment-string"),
        pytest.param({"environment": {"BIG": "x" * 9000}}, "at most 8192", id="overrides-too-large"),
    ],
)
def test_bad_executor_config_fails_with_a_clear_message(ec: dict[str, Any], needle: str) -> None:
    with pytest.raises(RequestError) as exc:
        build_run_task(config(), spec(executor_config=ec), attempt=1)
    assert needle in str(exc.value)


def test_administrator_can_allow_privileged_keys() -> None:
    cfg = config(executor_config_allowlist="cpu, cluster, task_definition")
    req = build_run_task(cfg, spec(executor_config={"cluster": "other", "task_definition": "td2"}), attempt=1)
    assert (req["cluster"], req["taskDefinition"]) == ("other", "td2")


def test_redact_hides_the_command_and_environment() -> None:
    req = build_run_task(config(), spec(executor_config={"environment": {"SECRET": "s3cr3t"}}), attempt=1)
    text = json.dumps(redact(req))
    assert JWT not in text
    assert "s3cr3t" not in text
    assert JWT in json.dumps(req)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("manual__2026-11-25T02:54:08+00:00", "manual__2026-11-25T02:54:08+00:00"),
        ("a,b;c", "a_b_c"),
        ("aws:thing", "_ws:thing"),
        ("x" * 300, "x" * 256),
    ],
)
def test_sanitise_tag(raw: str, expected: str) -> None:
    assert sanitise_tag(raw, 256) == expected


def _tags(req: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in req["tags"]}


def test_executor_tags_win_over_dag_authors_and_administrators_come_next() -> None:
    admin = {"tags": [{"key": "team", "value": "platform"}, {"key": "dag_id", "value": "admin-says"}]}
    ec = {"tags": {"dag_id": "spoofed", "run_id": "spoofed", "try_number": "9", "team": "mine", "owner": "ann"}}
    req = build_run_task(config(run_task_kwargs=json.dumps(admin)), spec(executor_config=ec), attempt=1)
    tags = _tags(req)
    assert tags["dag_id"] == "dag" and tags["run_id"] == "manual__2026-11-25T02:54:08+00:00"
    assert "try_number" not in tags  # the spec here has none; a DAG author cannot add the executor's
    assert tags["ecs_executor_queueing"] == "q1"
    assert tags["team"] == "platform"  # administrator > DAG author
    assert tags["owner"] == "ann"  # a DAG author's own tag is kept


def test_administrator_overrides_are_merged_never_replaced() -> None:
    admin = {
        "overrides": {
            "cpu": "2048",
            "containerOverrides": [
                {
                    "name": "base",
                    "command": ["evil"],
                    "memoryReservation": 512,
                    "environment": [{"name": "STAGE", "value": "prod"}, {"name": "MODE", "value": "admin"}],
                },
                {"name": "sidecar", "environment": [{"name": "X", "value": "1"}]},
            ],
        },
        "startedBy": "someone-else",
        "count": 5,
    }
    ec = {"environment": {"MODE": "author", "OWN": "yes"}, "cpu": 512}
    req = build_run_task(config(run_task_kwargs=json.dumps(admin)), spec(executor_config=ec), attempt=2)
    base, sidecar = req["overrides"]["containerOverrides"]
    assert base["command"] == COMMAND  # what the executor must set
    env = {e["name"]: e["value"] for e in base["environment"]}
    assert env == {"STAGE": "prod", "MODE": "admin", "OWN": "yes"}  # administrator > DAG author
    assert base["memoryReservation"] == 512
    assert sidecar == {"name": "sidecar", "environment": [{"name": "X", "value": "1"}]}
    assert req["overrides"]["cpu"] == "2048"  # administrator > DAG author
    assert req["startedBy"] == "airflow-ecs-executor/2" and req["count"] == 1
