"""EC2 capacity is container instances; Fargate capacity is the account's (ecs_emulator.placement)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecs_emulator import Emulator, Profile
from ecs_emulator.profile import ContainerInstances
from tests.helpers import aws_client, python_container, register_instance, wait_stopped

SLEEP = "import time; time.sleep(30)"


def definition(ecs: Any, *, memory: int = 256, cpu: int = 0, code: str = SLEEP) -> None:
    ecs.register_task_definition(
        family="fam", containerDefinitions=[python_container(code=code, memory=memory, cpu=cpu)]
    )


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return str(exc.value.response["Error"]["Code"]), str(exc.value.response["Error"]["Message"])


@pytest.mark.parametrize(
    ("cluster", "kwargs"),
    [
        pytest.param({}, {"launchType": "EC2"}, id="launch-type-EC2"),
        pytest.param({}, {}, id="no-launch-type"),
        pytest.param({"capacityProviders": ["FARGATE"]}, {}, id="providers-without-default-strategy"),
    ],
)
def test_ec2_without_container_instances_is_refused(ecs: Any, cluster: dict[str, Any], kwargs: dict[str, Any]) -> None:
    """API_RunTask.html (InvalidParameterException) and ECS API model, RunTask.launchType: with no launch
    type, no strategy and no default strategy the task goes to EC2; with no container instance that is an
    exception, not a failures[] entry."""
    ecs.create_cluster(clusterName="c", **cluster)
    definition(ecs)
    with pytest.raises(ClientError) as exc:
        ecs.run_task(cluster="c", taskDefinition="fam", **kwargs)
    assert error(exc) == ("InvalidParameterException", "No Container Instances were found in your cluster.")


def test_ec2_task_is_placed_on_a_registered_instance(ecs: Any) -> None:
    """ECS API model, Task.containerInstanceArn and ContainerInstance.remainingResources/runningTasksCount."""
    ecs.create_cluster(clusterName="c")
    instance = register_instance(ecs, "c", cpu=2048, memory=4096)
    definition(ecs, memory=1024, cpu=512)
    task = ecs.run_task(cluster="c", taskDefinition="fam")["tasks"][0]
    assert task["containerInstanceArn"] == instance
    assert ecs.list_container_instances(cluster="c")["containerInstanceArns"] == [instance]
    assert ecs.list_tasks(cluster="c", containerInstance=instance)["taskArns"] == [task["taskArn"]]
    described = ecs.describe_container_instances(cluster="c", containerInstances=[instance])["containerInstances"][0]
    remaining = {r["name"]: r["integerValue"] for r in described["remainingResources"]}
    assert remaining == {"CPU": 2048 - 512, "MEMORY": 4096 - 1024}
    assert described["runningTasksCount"] + described["pendingTasksCount"] == 1
    assert ecs.describe_clusters(clusters=["c"])["clusters"][0]["registeredContainerInstancesCount"] == 1
    ecs.stop_task(cluster="c", task=task["taskArn"])
    wait_stopped(ecs, "c", task["taskArn"])
    described = ecs.describe_container_instances(cluster="c", containerInstances=[instance])["containerInstances"][0]
    remaining = {r["name"]: r["integerValue"] for r in described["remainingResources"]}
    assert remaining == {"CPU": 2048, "MEMORY": 4096}  # a STOPPED task holds nothing


def test_full_instances_answer_resource_memory_naming_each_instance(ecs: Any) -> None:
    """API_RunTask.html, failures: "RESOURCE:MEMORY" with failures[].arn the container instance ARN
    (ECS API model, Failure.arn: the ARN of the failed resource)."""
    ecs.create_cluster(clusterName="c")
    first = register_instance(ecs, "c", cpu=4096, memory=512)
    second = register_instance(ecs, "c", cpu=4096, memory=256)
    definition(ecs, memory=256)
    response = ecs.run_task(cluster="c", taskDefinition="fam", count=4)
    assert len(response["tasks"]) == 3
    assert sorted(response["failures"], key=lambda f: f["arn"]) == sorted(
        [{"arn": first, "reason": "RESOURCE:MEMORY"}, {"arn": second, "reason": "RESOURCE:MEMORY"}],
        key=lambda f: f["arn"],
    )


def test_cpu_shortfall_answers_resource_cpu(ecs: Any) -> None:
    """API_RunTask.html, failures: "RESOURCE:CPU" naming the container instance."""
    ecs.create_cluster(clusterName="c")
    instance = register_instance(ecs, "c", cpu=1024, memory=8192)
    definition(ecs, cpu=768)
    assert ecs.run_task(cluster="c", taskDefinition="fam")["tasks"]
    response = ecs.run_task(cluster="c", taskDefinition="fam")
    assert response["tasks"] == []
    assert response["failures"] == [{"arn": instance, "reason": "RESOURCE:CPU"}]


def test_task_level_size_is_what_an_ec2_task_reserves(ecs: Any) -> None:
    """ECS API model, RegisterTaskDefinition.cpu/memory: task-level sizes, when given, are what the task uses."""
    ecs.create_cluster(clusterName="c")
    instance = register_instance(ecs, "c", cpu=4096, memory=3000)
    ecs.register_task_definition(
        family="big", cpu="1024", memory="2048", containerDefinitions=[python_container(code=SLEEP, memory=128)]
    )
    assert ecs.run_task(cluster="c", taskDefinition="big")["tasks"]
    assert ecs.run_task(cluster="c", taskDefinition="big")["failures"] == [
        {"arn": instance, "reason": "RESOURCE:MEMORY"}
    ]


def test_deregistered_instance_takes_no_task_and_cluster_then_deletes(ecs: Any) -> None:
    """ECS API model, DeleteCluster: every container instance must be deregistered first
    (ClusterContainsContainerInstancesException)."""
    ecs.create_cluster(clusterName="c")
    instance = register_instance(ecs, "c")
    with pytest.raises(ClientError) as exc:
        ecs.delete_cluster(cluster="c")
    assert error(exc)[0] == "ClusterContainsContainerInstancesException"
    ecs.deregister_container_instance(cluster="c", containerInstance=instance)
    definition(ecs)
    with pytest.raises(ClientError) as exc:
        ecs.run_task(cluster="c", taskDefinition="fam")
    assert error(exc)[1] == "No Container Instances were found in your cluster."
    assert ecs.delete_cluster(cluster="c")["cluster"]["status"] == "INACTIVE"


def test_capacity_cap_on_ec2_names_the_instances(emulator: Emulator, ecs: Any) -> None:
    """The control API's cap (a shortfall without sizing instances) answers as ECS would: RESOURCE per instance."""
    ecs.create_cluster(clusterName="c")
    instance = register_instance(ecs, "c")
    definition(ecs)
    emulator.set_capacity(0)
    assert ecs.run_task(cluster="c", taskDefinition="fam")["failures"] == [
        {"arn": instance, "reason": "RESOURCE:MEMORY"}
    ]


def test_fargate_needs_no_container_instance(ecs: Any) -> None:
    """ECS API model, RunTask.launchType: FARGATE runs on AWS's capacity, not on registered instances."""
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(
        family="fg",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[python_container(code=SLEEP)],
    )
    network = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    task = ecs.run_task(cluster="c", taskDefinition="fg", launchType="FARGATE", networkConfiguration=network)
    assert "containerInstanceArn" not in task["tasks"][0]


def test_control_api_and_profile_register_instances() -> None:
    """The emulator's ways to add EC2 capacity: the control API, and a profile's per-cluster fleet."""
    profile = Profile(name="ec2", container_instances=ContainerInstances(count=2, cpu=1024, memory=2048))
    with Emulator(profile, runner="simulated", validate_responses=True) as em:
        ecs = aws_client("ecs", em)
        ecs.create_cluster(clusterName="c")
        assert len(ecs.list_container_instances(cluster="c")["containerInstanceArns"]) == 2
        added = em.register_container_instances("c", count=3, cpu=512, memory=1024)
        assert len(added) == 3
        described = ecs.describe_container_instances(cluster="c", containerInstances=added)["containerInstances"]
        assert {r["integerValue"] for d in described for r in d["registeredResources"]} == {512, 1024}
        assert em.shape_problems == []


# ------------------------------------------------------------------------------------------ capacity per provider
FARGATE_CAPACITY_TEXT = (
    "Capacity is unavailable at this time. Please try again later or in a different availability zone"
)


def _fargate(ecs: Any) -> dict[str, Any]:
    ecs.create_cluster(clusterName="c", capacityProviders=["FARGATE", "FARGATE_SPOT"])
    ecs.register_task_definition(
        family="fg",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[python_container(code=SLEEP)],
    )
    return {"cluster": "c", "taskDefinition": "fg", "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s"]}}}


def _on(provider: str) -> list[dict[str, Any]]:
    return [{"capacityProvider": provider, "weight": 1}]


def test_spot_and_on_demand_are_separate_pools() -> None:
    """AWS docs, "AWS Fargate capacity providers" (fargate-capacity-providers.html): Fargate Spot runs on spare
    capacity of its own. A Fargate shortfall is a failures[] entry "Capacity is unavailable at this time..."
    (AWS knowledge center, ecs-fargate-runtask-capacity). Caps come from the profile and the control API."""
    profile = Profile(name="spot", capacity={"providers": {"FARGATE_SPOT": 1}})  # type: ignore[arg-type]
    with Emulator(profile, runner="simulated", validate_responses=True) as em:
        ecs = aws_client("ecs", em)
        run = _fargate(ecs)
        first = ecs.run_task(**run, capacityProviderStrategy=_on("FARGATE_SPOT"))
        assert first["tasks"][0]["capacityProviderName"] == "FARGATE_SPOT"
        full = ecs.run_task(**run, capacityProviderStrategy=_on("FARGATE_SPOT"))
        assert full["tasks"] == []
        assert full["failures"] == [
            {"arn": ecs.describe_clusters(clusters=["c"])["clusters"][0]["clusterArn"], "reason": FARGATE_CAPACITY_TEXT}
        ]
        # On-demand Fargate still has room: ECS never moves a task between providers by itself.
        on_demand = ecs.run_task(**run, capacityProviderStrategy=_on("FARGATE"))
        assert on_demand["tasks"][0]["capacityProviderName"] == "FARGATE"
        em.control_client().set_provider_capacity("FARGATE", 1)
        assert ecs.run_task(**run, capacityProviderStrategy=_on("FARGATE"))["tasks"] == []
        em.control_client().set_provider_capacity("FARGATE_SPOT", None)
        assert ecs.run_task(**run, capacityProviderStrategy=_on("FARGATE_SPOT"))["tasks"]
        assert em.provider_capacity() == {"FARGATE": 1}
        # A stopped task gives its place back.
        ecs.stop_task(cluster="c", task=on_demand["tasks"][0]["taskArn"])
        wait_stopped(ecs, "c", on_demand["tasks"][0]["taskArn"])
        assert ecs.run_task(**run, capacityProviderStrategy=_on("FARGATE"))["tasks"]
        assert em.shape_problems == []


def test_provider_capacity_route_refuses_bad_input(emulator: Emulator) -> None:
    control = emulator.control_client()
    with pytest.raises(RuntimeError, match="400"):
        control.set_provider_capacity("", 1)
    with pytest.raises(RuntimeError, match="integer >= 0"):
        control.set_provider_capacity("FARGATE_SPOT", -1)
