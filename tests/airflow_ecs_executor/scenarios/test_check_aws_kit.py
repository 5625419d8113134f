"""``airflow ecs-executor check`` on what a first deployment gets wrong (issue 18, item 8), healthy and broken.

Each item runs against the emulator over HTTP with boto3: ECS and CloudWatch Logs are the emulator's own; EC2,
IAM and STS are moto's behind the same endpoint, with IAM's policy simulator served by
``ecs_emulator.iam_simulation``. The AWS behaviour each item relies on is named with its source beside it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_ecs_executor.check import Checker, Item, startup_problems
from airflow_ecs_executor.config import parse_config
from airflow_ecs_executor.connection import make_client
from ecs_emulator import Emulator
from ecs_emulator.iam_simulation import act_as_role, forget_role_sessions
from tests.helpers import aws_client

pytestmark = pytest.mark.newest_only  # the check imports no Airflow API that differs between versions

API_URL = "http://airflow-api.internal:8080/execution/"
ACCOUNT = "123456789012"
LOGS = {
    "logDriver": "awslogs",
    "options": {"awslogs-group": "/ecs/airflow", "awslogs-stream-prefix": "airflow", "awslogs-region": "us-east-1"},
}


def _section(env: dict[str, str], **overrides: str) -> dict[str, str]:
    prefix = "AIRFLOW__ECS_EXECUTOR__"
    return {**{k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}, **overrides}


def _check(env: dict[str, str], api_url: str | None = API_URL, **overrides: str) -> list[Item]:
    return Checker(make_client, api_url).run(_section(env, **overrides))


def _items(items: list[Item], starts: str) -> list[Item]:
    return [i for i in items if i.what.startswith(starts)]


def _register(ecs: Any, family: str, **extra: Any) -> dict[str, Any]:
    container = {"name": "base", "image": "apache/airflow:3", "memory": 512, "logConfiguration": LOGS}
    container.update(extra.pop("container", {}))
    return dict(
        ecs.register_task_definition(family=family, containerDefinitions=[container], **extra)["taskDefinition"]
    )


def test_get_log_events_is_probed_on_the_awslogs_group(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator
) -> None:
    # GetLogEvents of a stream that does not exist answers ResourceNotFoundException to a caller that is allowed
    # (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html, Errors); a
    # caller whose policy does not allow it gets AccessDeniedException (HTTP 400) first
    # (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/CommonErrors.html).
    logs = aws_client("logs", emulator)
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_log_events(logGroupName="/ecs/airflow", logStreamName="airflow/base/" + "0" * 32)
    items = _check(executor_env)
    (probe,) = _items(items, "permission logs:GetLogEvents on /ecs/airflow")
    assert probe.status == "ok", probe
    assert not _items(items, "permission ecs:ListTasks")  # the executor never lists tasks
    assert _items(items, "permission ecs:DescribeTasks")[0].status == "ok"

    emulator.inject("access_denied", api="GetLogEvents")
    (denied,) = _items(_check(executor_env), "permission logs:GetLogEvents")
    assert denied.status == "fail", denied
    assert denied.detail.startswith("AccessDeniedException")
    assert "log-group:/ecs/airflow:log-stream:*" in denied.fix


def test_the_api_server_url_checked_is_the_one_the_task_gets(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator
) -> None:
    # The task image reads AIRFLOW__CORE__EXECUTION_API_SERVER_URL from its environment (docker/entrypoint.sh);
    # RunTask's containerOverrides.environment adds to or overrides the task definition's
    # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerOverride.html).
    env = [{"name": "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "value": "http://127.0.0.1:8080/execution/"}]
    _register(ecs_setup, "url-task", container={"environment": env})
    # The scheduler's URL (not on loopback) is not the one checked: the task's own, on loopback, is.
    (url,) = _items(_check(executor_env, task_definition="url-task"), "API server URL for tasks")
    assert url.what.startswith("API server URL for tasks (task definition url-task:1, container 'base')"), url
    assert url.status == "warn" and "http://127.0.0.1:8080/execution/ is a loopback address" in url.detail
    assert "local emulator" in url.detail  # the emulator's tasks run on this machine: a warning, not a failure

    # What the executor passes (run_task_kwargs' overrides) wins over the task definition.
    override = {"containerOverrides": [{"name": "base", "environment": [{"name": env[0]["name"], "value": "ftp://x"}]}]}
    (bad,) = _items(
        _check(executor_env, task_definition="url-task", run_task_kwargs=json.dumps({"overrides": override})),
        "API server URL for tasks",
    )
    assert bad.status == "fail" and "'ftp://x' is not an http(s) URL" in bad.detail, bad

    # Without it in the task definition, the task gets what this machine's configuration says (the emulator's
    # tasks run here): the scheduler's URL is checked, as before.
    (fallback,) = _items(_check(executor_env, api_url="http://127.0.0.1:8080/execution/"), "API server URL")
    assert fallback.what == "API server URL for tasks ([core] execution_api_server_url)"
    assert fallback.status == "warn" and "loopback" in fallback.detail


def test_inactive_revision_and_family_without_active_revision(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator
) -> None:
    # A deregistered (INACTIVE) revision can be described but starts no new task; a family names its latest
    # ACTIVE revision, and DescribeTaskDefinition of a family without one fails with ClientException
    # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html,
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTaskDefinition.html).
    _register(ecs_setup, "airflow-task")  # revision 2
    ecs_setup.deregister_task_definition(taskDefinition="airflow-task:2")
    _register(ecs_setup, "gone-task")
    ecs_setup.deregister_task_definition(taskDefinition="gone-task:1")
    assert ecs_setup.describe_task_definition(taskDefinition="airflow-task:2")["taskDefinition"]["status"] == "INACTIVE"

    profiles = {"old": {"task_definition": "airflow-task:2"}, "gone": {"task_definition": "gone-task"}}
    items = _check(executor_env, queue_profiles=json.dumps(profiles))
    (healthy,) = [i for i in items if i.what == "task definition airflow-task"]
    assert healthy.status == "ok" and "revision 1" in healthy.detail, healthy
    (inactive,) = _items(items, "task definition airflow-task:2 (queue 'old')")
    assert inactive.status == "fail" and "INACTIVE" in inactive.detail and "ACTIVE revision" in inactive.fix
    (gone,) = _items(items, "task definition gone-task (queue 'gone')")
    assert gone.status == "fail" and "has no ACTIVE revision" in gone.detail, gone
    # The scheduler refuses to start on it too.
    cfg = parse_config(_section(executor_env, task_definition="airflow-task:2"))
    assert any("INACTIVE" in p for p in startup_problems(cfg, make_client))


def test_ec2_launch_type_on_a_cluster_without_container_instances(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator
) -> None:
    # RunTask on EC2 with no container instances is an exception, not a failures[] entry: the EC2 launch type
    # places tasks on container instances registered to the cluster
    # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html, launchType), and the check
    # counts them with DescribeClusters' registeredContainerInstancesCount
    # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Cluster.html).
    ecs_setup.create_cluster(clusterName="bare")
    with pytest.raises(ecs_setup.exceptions.InvalidParameterException, match="No Container Instances"):
        ecs_setup.run_task(cluster="bare", taskDefinition="airflow-task", launchType="EC2")

    (healthy,) = _items(_check(executor_env, launch_type="EC2"), "capacity")
    assert healthy.status == "ok" and "4 container instance(s)" in healthy.detail, healthy
    # No launch type, no strategy, no cluster default strategy: RunTask uses EC2, and fails the same way.
    profiles = {"ec2": {"launch_type": "EC2"}, "fargate": {"launch_type": "FARGATE", "subnets": ["subnet-1"]}}
    bare = {i.what: i for i in _check(executor_env, cluster="bare", queue_profiles=json.dumps(profiles))}
    default, ec2, fargate = bare["capacity"], bare["capacity (queue 'ec2')"], bare["capacity (queue 'fargate')"]
    assert default.status == "fail" and "launch type EC2" in default.detail, default
    assert ec2.status == "fail" and "No Container Instances" in ec2.detail and ec2.fix, ec2
    assert fargate.status == "ok", fargate


@pytest.fixture
def vpcs(emulator: Emulator) -> dict[str, str]:
    """Two VPCs of moto's EC2: subnets with a NAT route, an internet gateway, no way out; a stray subnet and group.

    A subnet uses the route table associated with it, else its VPC's main route table
    (https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Route_Tables.html); moto's EC2 answers
    DescribeSubnets, DescribeSecurityGroups, DescribeRouteTables and DescribeVpcEndpoints as the EC2 API
    reference describes them (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeRouteTables.html).
    """
    ec2 = aws_client("ec2", emulator, read_timeout=60)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]

    def subnet(vpc_id: str, cidr: str) -> str:
        return str(ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr)["Subnet"]["SubnetId"])

    def table(subnet_id: str, **route: str) -> None:
        rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", **route)
        ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet_id)

    public, private, isolated = subnet(vpc, "10.20.1.0/24"), subnet(vpc, "10.20.2.0/24"), subnet(vpc, "10.20.3.0/24")
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table(public, GatewayId=igw)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip)["NatGateway"]["NatGatewayId"]
    table(private, NatGatewayId=nat)
    group = ec2.create_security_group(GroupName=f"tasks-{uuid.uuid4().hex[:6]}", Description="t", VpcId=vpc)
    stray_group = ec2.create_security_group(GroupName=f"x-{uuid.uuid4().hex[:6]}", Description="x", VpcId=other)
    return {
        "public": public,
        "private": private,
        "isolated": isolated,  # the VPC's main route table: only the local route
        "stray": subnet(other, "10.30.1.0/24"),
        "group": group["GroupId"],
        "stray_group": stray_group["GroupId"],
    }


def test_task_subnets_and_security_groups(ecs_setup: Any, executor_env: dict[str, str], vpcs: dict[str, str]) -> None:
    profiles = {
        "split": {"subnets": [vpcs["private"], vpcs["stray"]]},
        "stray": {"security_groups": [vpcs["stray_group"]]},
        "missing": {"subnets": ["subnet-0000000000000000f"]},
        "no_ip": {"subnets": [vpcs["public"]]},
        "isolated": {"subnets": [vpcs["isolated"]]},
    }
    items = _check(
        executor_env, subnets=vpcs["private"], security_groups=vpcs["group"], queue_profiles=json.dumps(profiles)
    )

    def subnet_items(queue: str | None) -> list[Item]:
        subnets = _items(items, "task subnets")
        return (
            [i for i in subnets if f"(queue {queue!r})" in i.what]
            if queue
            else [i for i in subnets if "(queue" not in i.what]
        )

    (healthy,) = subnet_items(None)
    assert healthy.status == "ok" and "way out: nat" in healthy.detail, healthy

    # All subnets must be in one VPC, and the security groups in that VPC (ECS API model, AwsVpcConfiguration:
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_AwsVpcConfiguration.html).
    split = subnet_items("split")
    assert [i.status for i in split] == ["fail"] and "different VPCs" in split[0].detail, split
    (stray,) = subnet_items("stray")
    assert stray.status == "fail" and "not in the subnets' VPC" in stray.detail and stray.fix, stray
    (missing,) = subnet_items("missing")
    assert missing.status == "fail" and "do not exist" in missing.detail

    # Without a public IP, a subnet whose default route is an internet gateway cannot pull the image; nor can
    # one without any route out (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html).
    (no_ip,) = subnet_items("no_ip")
    assert no_ip.status == "warn" and "no public IP" in no_ip.detail and "assign_public_ip" in no_ip.fix, no_ip
    (isolated,) = subnet_items("isolated")
    assert isolated.status == "warn" and "no route to the internet" in isolated.detail
    assert "NAT" in isolated.fix
    # With a public IP, the internet gateway is the way out.
    public = _items(_check(executor_env, subnets=vpcs["public"], assign_public_ip="true"), "task subnets")
    assert [i.status for i in public] == ["ok"], public


@pytest.fixture
def scheduler_role(emulator: Emulator) -> Iterator[tuple[str, Any]]:
    """A role in moto's IAM that the emulator's own key is a session of, as a scheduler with a role is."""
    iam = aws_client("iam", emulator, read_timeout=60)
    name = f"airflow-scheduler-{uuid.uuid4().hex[:8]}"
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    act_as_role(emulator.access_key_id, arn, "scheduler")
    try:
        yield arn, iam
    finally:
        forget_role_sessions(emulator.access_key_id)


def _scheduler_policy(log_stream_resource: str) -> dict[str, Any]:
    cluster = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/airflow"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ecs:RunTask",
                "Resource": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/roles-task:*",
                "Condition": {"ArnEquals": {"ecs:cluster": cluster}},
            },
            {
                "Effect": "Allow",
                "Action": "ecs:TagResource",
                "Resource": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/airflow/*",
                "Condition": {"StringEquals": {"ecs:CreateAction": "RunTask"}},
            },
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": f"arn:aws:iam::{ACCOUNT}:role/airflow-task-role",
                "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            },
            {"Effect": "Allow", "Action": "logs:GetLogEvents", "Resource": log_stream_resource},
        ],
    }


def test_permissions_are_simulated_for_the_schedulers_own_role(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator, scheduler_role: tuple[str, Any]
) -> None:
    # iam:SimulatePrincipalPolicy evaluates the principal's identity policies, with the request context keys
    # given, and changes nothing (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html);
    # GetCallerIdentity names a role's session as assumed-role/ROLE/SESSION, whose policies are the role's
    # (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
    role_arn, iam = scheduler_role
    assert ":assumed-role/" in aws_client("sts", emulator).get_caller_identity()["Arn"]
    _register(ecs_setup, "roles-task", taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/airflow-task-role")
    group_arn = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/ecs/airflow"
    name = role_arn.rsplit("/", 1)[1]
    iam.put_role_policy(
        RoleName=name, PolicyName="scheduler", PolicyDocument=json.dumps(_scheduler_policy(f"{group_arn}:log-stream:*"))
    )

    def simulated() -> dict[str, Item]:
        items = _check(executor_env, task_definition="roles-task")
        return {i.what.split(" ")[1]: i for i in items if i.what.endswith("(simulated)")}

    healthy = simulated()
    assert sorted(healthy) == ["ecs:RunTask", "ecs:TagResource", "iam:PassRole", "logs:GetLogEvents"], healthy
    assert {i.status for i in healthy.values()} == {"ok"}, healthy

    # Issue 18, item 1: a log-stream resource built from a log group ARN ending in ':*' matches no stream.
    iam.put_role_policy(
        RoleName=name,
        PolicyName="scheduler",
        PolicyDocument=json.dumps(_scheduler_policy(f"{group_arn}:*:log-stream:*")),
    )
    # and an execution role the scheduler may not pass.
    _register(
        ecs_setup,
        "roles-task",
        taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/airflow-task-role",
        executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/airflow-execution-role",
    )
    broken = [i for i in simulated().values() if i.status == "fail"]
    whats = sorted(f"{i.what}: {i.detail.split(' for ')[0]}" for i in broken)
    assert whats == [
        "permission iam:PassRole (simulated): implicitDeny",
        "permission logs:GetLogEvents (simulated): implicitDeny",
    ], broken
    assert all(role_arn in i.fix for i in broken)
    assert any("airflow-execution-role" in i.detail for i in broken)


def test_simulation_that_cannot_run_is_a_note(ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator) -> None:
    # A session of a role that does not exist (NoSuchEntity), and moto's default identity (not a role or user):
    # "could not simulate", never a failure.
    act_as_role(emulator.access_key_id, f"arn:aws:iam::{ACCOUNT}:role/not-there-{uuid.uuid4().hex[:6]}", "s")
    try:
        items = _check(executor_env)
    finally:
        forget_role_sessions(emulator.access_key_id)
    (note,) = _items(items, "simulated permissions")
    assert note.status == "info" and "could not simulate" in note.detail and "NoSuchEntity" in note.detail
    assert not [i for i in items if i.status == "fail"], items
    (default,) = _items(_check(executor_env), "simulated permissions")
    assert default.status == "info" and "could not simulate" in default.detail
