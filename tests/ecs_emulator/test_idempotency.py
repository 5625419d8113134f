"""RunTask's clientToken: per cluster, remembered 24 hours (ecs_emulator.idempotency)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecs_emulator import Emulator
from ecs_emulator.idempotency import TOKEN_LIFETIME, ClientTokens
from tests.helpers import aws_client, python_container, register_instance, wait_for


def setup(ecs: Any, *clusters: str, code: str = "import time; time.sleep(30)") -> None:
    for name in clusters:
        ecs.create_cluster(clusterName=name)
        register_instance(ecs, name)
    ecs.register_task_definition(family="fam", containerDefinitions=[python_container(code=code)])


def test_same_token_in_another_cluster_is_a_new_request(ecs: Any) -> None:
    """AWS "Ensuring idempotency" (ECS): a clientToken is scoped to one cluster."""
    setup(ecs, "a", "b")
    first = ecs.run_task(cluster="a", taskDefinition="fam", clientToken="tok")["tasks"][0]["taskArn"]
    second = ecs.run_task(cluster="b", taskDefinition="fam", clientToken="tok")["tasks"][0]["taskArn"]
    assert first != second
    assert ":task/a/" in first and ":task/b/" in second
    again = ecs.run_task(cluster="a", taskDefinition="fam", clientToken="tok")["tasks"][0]["taskArn"]
    assert again == first


def test_token_outlives_the_stopped_task_and_its_retention() -> None:
    """AWS "Ensuring idempotency" (ECS): a token is remembered for 24 hours, not until its task is gone."""
    with Emulator("fast", stopped_task_retention=0.2, validate_responses=True) as em:
        ecs = aws_client("ecs", em)
        setup(ecs, "c", code="pass")
        arn = ecs.run_task(cluster="c", taskDefinition="fam", clientToken="tok")["tasks"][0]["taskArn"]
        # Gone from DescribeTasks 0.2 s after it stopped (a wait for STOPPED could miss so short a window).
        wait_for(lambda: ecs.describe_tasks(cluster="c", tasks=[arn])["failures"])
        replay = ecs.run_task(cluster="c", taskDefinition="fam", clientToken="tok")
        assert [t["taskArn"] for t in replay["tasks"]] == [arn]
        assert em.counters()["ecs"]["tasks_launched"] == 1
        with pytest.raises(ClientError) as exc:
            ecs.run_task(cluster="c", taskDefinition="fam", clientToken="tok", startedBy="other")
        assert exc.value.response["Error"]["Code"] == "ConflictException"
        assert em.shape_problems == []


def test_token_is_forgotten_after_24_hours() -> None:
    """AWS "Ensuring idempotency" (ECS): 24 hours after the first request the token is new again."""
    now = [0.0]
    tokens = ClientTokens(clock=lambda: now[0])
    request = {"cluster": "c", "taskDefinition": "fam", "clientToken": "tok"}
    tokens.remember("arn:c", "tok", request, ["arn:task/c/1"])
    now[0] = TOKEN_LIFETIME - 1
    assert tokens.replay("arn:c", "tok", request) == ("arn:task/c/1",)
    assert tokens.replay("arn:other", "tok", request) is None
    now[0] = TOKEN_LIFETIME + 1
    assert tokens.replay("arn:c", "tok", request) is None
