"""deploy/cloudformation.yaml: valid by cfn-lint, outputs one to one with [ecs_executor] keys, safe defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_ecs_executor.config import ExecutorConfig
from tests.deploy.render import TEMPLATE, Stack, load_template

REQUIRED = {
    "VpcId": "vpc-0a1b2c3d",
    "SubnetIds": "subnet-0a1b2c3d,subnet-4e5f6a7b",
    "Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/airflow-ecs:3.3.2",
    "ExecutionApiServerUrl": "https://airflow.internal/execution/",
}


def stack(**parameters: str) -> Stack:
    return Stack({**REQUIRED, **parameters})


def template() -> dict[str, Any]:
    return load_template()


def test_cfn_lint_passes() -> None:
    done = subprocess.run(
        [Path(sys.executable).parent / "cfn-lint", str(TEMPLATE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_outputs_map_to_executor_keys() -> None:
    keys = {}
    for name, output in template()["Outputs"].items():
        description = output["Description"]
        if description.startswith("[ecs_executor] "):
            keys[name] = description.split()[1]
    assert set(keys.values()) <= set(ExecutorConfig.model_fields)
    assert len(set(keys.values())) == len(keys)  # one to one
    assert {"cluster", "task_definition", "container_name", "subnets", "security_groups"} <= set(keys.values())


def test_outputs_parse_as_executor_config() -> None:
    s = stack()
    section = {
        key: str(s.output(name))
        for name, output in template()["Outputs"].items()
        if (key := output["Description"].split()[1] if output["Description"].startswith("[ecs_executor] ") else "")
    }
    cfg = ExecutorConfig.model_validate(section)
    assert cfg.assign_public_ip is True
    assert cfg.subnets == ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]


def test_on_demand_by_default_spot_is_opt_in() -> None:
    cluster = stack().properties("Cluster")
    assert cluster["CapacityProviders"] == ["FARGATE", "FARGATE_SPOT"]  # Spot stays available per queue
    assert cluster["DefaultCapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE", "Weight": 1, "Base": 0}]
    assert json.loads(stack().output("CapacityProviderStrategy")) == [{"capacityProvider": "FARGATE", "weight": 1}]
    spot = stack(SpotWeight="3")
    assert spot.properties("Cluster")["DefaultCapacityProviderStrategy"][1] == {
        "CapacityProvider": "FARGATE_SPOT",
        "Weight": "3",
    }
    assert json.loads(spot.output("CapacityProviderStrategy"))[1] == {"capacityProvider": "FARGATE_SPOT", "weight": 3}
    assert "interrupt" in template()["Parameters"]["SpotWeight"]["Description"]  # the trade-off is stated


def test_api_server_port_matches_an_https_url_by_default() -> None:
    spec = template()["Parameters"]["ApiServerPort"]
    assert spec["Default"] == 443
    assert "443" in spec["Description"] and "https://" in spec["Description"]
    ingress = stack(ApiServerSecurityGroupId="sg-0api").properties("ApiServerFromTasks")
    assert (ingress["FromPort"], ingress["ToPort"]) == ("443", "443")


@pytest.mark.parametrize(("value", "expected"), [("true", "true"), ("false", "false")])
def test_public_ip_is_a_parameter_on_by_default(value: str, expected: str) -> None:
    assert template()["Parameters"]["AssignPublicIp"]["Default"] == "true"  # a default VPC: public subnets, no NAT
    assert stack(AssignPublicIp=value).output("AssignPublicIp") == expected


def test_egress_is_https_unless_opened() -> None:
    (rule,) = stack().properties("TaskSecurityGroup")["SecurityGroupEgress"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
    (rule,) = stack(TaskEgress="all").properties("TaskSecurityGroup")["SecurityGroupEgress"]
    assert rule["IpProtocol"] == "-1" and rule["CidrIp"] == "0.0.0.0/0"


def environment(s: Stack) -> dict[str, str]:
    (container,) = s.properties("TaskDefinition")["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def test_dag_bundle_reaches_the_tasks() -> None:
    assert "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST" not in environment(stack())
    bundle = '[{"name": "dags", "classpath": "airflow.providers.git.bundles.git.GitDagBundle", "kwargs": {}}]'
    env = environment(stack(DagBundleConfigList=bundle))
    assert env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] == bundle
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == REQUIRED["ExecutionApiServerUrl"]


def test_log_group_is_retained_and_optionally_encrypted() -> None:
    resource = template()["Resources"]["LogGroup"]
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"
    assert "KmsKeyId" not in stack().properties("LogGroup")
    key = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-0000-1111-2222-333344445555"
    assert stack(LogKmsKeyArn=key).properties("LogGroup")["KmsKeyId"] == key
    assert "RetentionInDays" in stack().properties("LogGroup")


def test_container_insights_is_a_parameter_off_by_default() -> None:
    settings = stack().properties("Cluster")["ClusterSettings"]
    assert settings == [{"Name": "containerInsights", "Value": "disabled"}]
    settings = stack(ContainerInsights="enhanced").properties("Cluster")["ClusterSettings"]
    assert settings == [{"Name": "containerInsights", "Value": "enhanced"}]


def test_execution_role_has_no_aws_managed_policy() -> None:
    role = stack().properties("ExecutionRole")
    assert "ManagedPolicyArns" not in role
    assert role["Policies"]


def test_subnets_must_belong_to_the_vpc() -> None:
    (assertion,) = template()["Rules"]["SubnetsInTheVpc"]["Assertions"]
    assert assertion["Assert"] == {
        "Fn::EachMemberEquals": [{"Fn::ValueOfAll": ["AWS::EC2::Subnet::Id", "VpcId"]}, {"Ref": "VpcId"}]
    }


def test_awslogs_matches_the_log_group() -> None:
    s = stack()
    (container,) = s.properties("TaskDefinition")["ContainerDefinitions"]
    options = container["LogConfiguration"]
    assert options["LogDriver"] == "awslogs"
    assert options["Options"]["awslogs-group"] == "/ecs/airflow/airflow-task" == s.output("LogGroupName")
    assert options["Options"]["awslogs-stream-prefix"] == "airflow"


def test_policies_have_no_wildcard_actions_and_star_only_where_iam_needs_it() -> None:
    s = stack()
    documents = {
        "SchedulerPolicy": s.properties("SchedulerPolicy")["PolicyDocument"],
        "ApiServerPolicy": s.properties("ApiServerPolicy")["PolicyDocument"],
        "ExecutionRole": s.properties("ExecutionRole")["Policies"][0]["PolicyDocument"],
    }
    # No resource-level permissions for these (Service Authorization Reference), hence Resource "*".
    star_allowed = {
        "ecs:DescribeTaskDefinition",
        "ecr:GetAuthorizationToken",
        *(
            f"ec2:{a}"
            for a in ("DescribeSubnets", "DescribeSecurityGroups", "DescribeRouteTables", "DescribeVpcEndpoints")
        ),
    }
    for name, document in documents.items():
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any("*" in a for a in actions), name
            if statement["Resource"] == "*":
                assert set(actions) <= star_allowed, (name, actions)


def test_task_events_rule_sends_this_clusters_task_changes_to_a_queue_per_scheduler() -> None:
    """One rule, one target per scheduler's queue (SQS consumers compete: schedulers never share a queue)."""
    s = stack(TaskEventQueues="2")
    rule = s.properties("TaskEventsRule")
    assert rule["EventPattern"] == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {"clusterArn": [s.output("Cluster") and s.resolve({"Fn::GetAtt": ["Cluster", "Arn"]})]},
    }
    queues = {s.resolve({"Fn::GetAtt": [q, "Arn"]}) for q in ("TaskEventsQueue", "TaskEventsQueue2")}
    assert {t["Arn"] for t in rule["Targets"]} == queues and len(rule["Targets"]) == 2
    dlq = s.resolve({"Fn::GetAtt": ["TaskEventsDeadLetterQueue", "Arn"]})
    for queue in ("TaskEventsQueue", "TaskEventsQueue2"):
        assert s.properties(queue)["RedrivePolicy"]["deadLetterTargetArn"] == dlq
    assert len(stack().properties("TaskEventsRule")["Targets"]) == 1  # one scheduler by default


def test_task_events_can_be_left_out() -> None:
    s = stack(TaskEventQueues="0")
    with pytest.raises(LookupError):
        s.properties("TaskEventsRule")
