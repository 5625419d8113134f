"""Requests ECS refuses, refused with ECS's error codes (ecs_emulator.validation and the service)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import python_container, register_instance

SLEEP = "import time; time.sleep(30)"
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}


def ec2_setup(ecs: Any) -> None:
    ecs.create_cluster(clusterName="c")
    register_instance(ecs, "c", cpu=16384, memory=65536)
    ecs.register_task_definition(family="fam", containerDefinitions=[python_container(code=SLEEP)])


def refused(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call()
    return str(exc.value.response["Error"]["Code"]), str(exc.value.response["Error"]["Message"])


def test_inactive_task_definition_cannot_start_tasks(ecs: Any) -> None:
    """ECS API model, DeregisterTaskDefinition: "You can't use an INACTIVE task definition to run new tasks"."""
    ec2_setup(ecs)
    ecs.register_task_definition(family="fam", containerDefinitions=[python_container(code=SLEEP)])
    ecs.deregister_task_definition(taskDefinition="fam:2")
    code, message = refused(lambda: ecs.run_task(cluster="c", taskDefinition="fam:2"))
    assert code == "ClientException" and "inactive" in message
    # The family alone still resolves to its latest ACTIVE revision.
    task = ecs.run_task(cluster="c", taskDefinition="fam")["tasks"][0]
    assert task["taskDefinitionArn"].endswith("task-definition/fam:1")
    ecs.deregister_task_definition(taskDefinition="fam:1")
    assert refused(lambda: ecs.run_task(cluster="c", taskDefinition="fam"))[0] == "ClientException"


def test_delete_cluster_with_active_tasks(ecs: Any) -> None:
    """ECS API model, DeleteCluster errors: ClusterContainsTasksException, "You can't delete a cluster that
    has active tasks"."""
    ec2_setup(ecs)
    ecs.run_task(cluster="c", taskDefinition="fam")
    assert refused(lambda: ecs.delete_cluster(cluster="c"))[0] == "ClusterContainsTasksException"


def test_stop_reason_over_255_characters_is_refused(ecs: Any) -> None:
    """API_StopTask.html, reason: up to 255 characters."""
    ec2_setup(ecs)
    arn = ecs.run_task(cluster="c", taskDefinition="fam")["tasks"][0]["taskArn"]
    assert refused(lambda: ecs.stop_task(cluster="c", task=arn, reason="x" * 256))[0] == "InvalidParameterException"
    assert ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]["desiredStatus"] == "RUNNING"
    stopped = ecs.stop_task(cluster="c", task=arn, reason="y" * 255)["task"]
    assert stopped["stoppedReason"] == "y" * 255


@pytest.mark.parametrize("cpu", ["64", "196609"])
def test_ec2_task_cpu_out_of_range_is_refused_at_registration(ecs: Any, cpu: str) -> None:
    """ECS API model, RegisterTaskDefinition.cpu: on EC2 "between 128 CPU units (0.125 vCPUs) and 196608 CPU
    units (192 vCPUs)"."""
    code, message = refused(
        lambda: ecs.register_task_definition(family="f", cpu=cpu, containerDefinitions=[python_container()])
    )
    assert code == "ClientException" and "between 128 and 196608" in message


def test_ec2_task_cpu_override_out_of_range_is_refused(ecs: Any) -> None:
    """ECS API model, RegisterTaskDefinition.cpu (EC2 range), applied to RunTask's task-level cpu override."""
    ec2_setup(ecs)
    code, _ = refused(lambda: ecs.run_task(cluster="c", taskDefinition="fam", overrides={"cpu": "100"}))
    assert code == "ClientException"
    assert ecs.run_task(cluster="c", taskDefinition="fam", overrides={"cpu": "128"})["tasks"]


@pytest.mark.parametrize(("cpu", "memory"), [("8192", "16384"), ("16384", "32768")])
def test_8_and_16_vcpu_fargate_need_platform_1_4_0(ecs: Any, cpu: str, memory: str) -> None:
    """Developer Guide, Fargate task size: 8 and 16 vCPU need Linux platform version 1.4.0 or later."""
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(
        family="big",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu=cpu,
        memory=memory,
        containerDefinitions=[python_container(code=SLEEP)],
    )
    run = {"cluster": "c", "taskDefinition": "big", "launchType": "FARGATE", "networkConfiguration": NETWORK}
    assert refused(lambda: ecs.run_task(**run, platformVersion="1.3.0"))[0] == "InvalidParameterException"
    assert ecs.run_task(**run, platformVersion="1.4.0")["tasks"][0]["platformVersion"] == "1.4.0"
    assert ecs.run_task(**run)["tasks"][0]["platformVersion"] == "1.4.0"  # LATEST


def test_describe_tasks_over_100_ids(ecs: Any) -> None:
    """ECS API model, DescribeTasks.tasks: "A list of up to 100 task IDs or full ARN entries"."""
    ecs.create_cluster(clusterName="c")
    code, message = refused(lambda: ecs.describe_tasks(cluster="c", tasks=[f"{i:032x}" for i in range(101)]))
    assert (code, message) == ("InvalidParameterException", "taskIds can have at most 100 items.")
    assert ecs.describe_tasks(cluster="c", tasks=[f"{i:032x}" for i in range(100)])["tasks"] == []


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({"family": "fam"}, id="family"),
        pytest.param({"desiredStatus": "STOPPED"}, id="desiredStatus"),
        pytest.param({"launchType": "EC2"}, id="launchType"),
    ],
)
def test_list_tasks_started_by_must_be_the_only_filter(ecs: Any, other: dict[str, str]) -> None:
    """ECS API model, ListTasks.startedBy: "When you specify startedBy as the filter, it must be the only
    filter that you use"."""
    ec2_setup(ecs)
    arn = ecs.run_task(cluster="c", taskDefinition="fam", startedBy="me")["tasks"][0]["taskArn"]
    assert ecs.list_tasks(cluster="c", startedBy="me")["taskArns"] == [arn]
    assert ecs.list_tasks(cluster="c", **other)["taskArns"] in ([arn], [])
    assert refused(lambda: ecs.list_tasks(cluster="c", startedBy="me", **other))[0] == "InvalidParameterException"
