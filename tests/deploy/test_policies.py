"""The template's IAM policies, rendered with realistic parameters and evaluated against the calls each principal makes.

The calls here are listed by hand, with the negative cases beside them; tests/e2e/test_policies_recorded.py
evaluates the calls an end-to-end run really made, as the emulator recorded them (tests/deploy/recorded.py).
The execution role's calls (image pull, awslogs) are ECS's own and are evaluated only here. How policies are
evaluated: tests/deploy/iam.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import botocore.session
import pytest

from tests.deploy.deployment import (
    ACCOUNT,
    EXECUTION_ROLE,
    IMAGE_REPOSITORY,
    REGION,
    TASK_ROLE,
    hand_written_scheduler_policy,
    inline_policies_of,
    policy_of,
    stack,
)
from tests.deploy.iam import Call, allowed, conditions_hold

CLUSTER = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/airflow"
OTHER_CLUSTER = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/other"
TASK_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
TASK = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/airflow/{TASK_ID}"
LOG_GROUP = "/ecs/airflow/airflow-task"
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}"
STREAM = f"{LOG_GROUP_ARN}:log-stream:airflow/base/{TASK_ID}"
# What each principal calls in an end-to-end run, and where. The scheduler: EcsExecutor's launcher and
# tracker (RunTask with tags, so TagResource; PassRole of both roles), adoption and the start-up check.
# The API server: the log reader (airflow_ecs_executor/logs.py, aws/logs.py). The execution role: what ECS
# does for a task before and while its container runs (image pull, awslogs).
SCHEDULER_CALLS = [
    Call("ecs:RunTask", f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/airflow-task:7", {"ecs:cluster": CLUSTER}),
    Call("ecs:TagResource", TASK, {"ecs:CreateAction": "RunTask"}),
    Call("iam:PassRole", EXECUTION_ROLE, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
    Call("iam:PassRole", TASK_ROLE, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
    Call("ecs:DescribeTasks", TASK, {"ecs:cluster": CLUSTER}),
    Call("ecs:StopTask", TASK, {"ecs:cluster": CLUSTER}),
    Call("ecs:DescribeClusters", CLUSTER),
    Call("ecs:DescribeTaskDefinition", "*"),
    Call("logs:DescribeLogGroups", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:*"),
    Call("logs:GetLogEvents", STREAM),
]
# Sealed workloads (aws/sealing.py): the scheduler seals for this cluster, the task role opens.
WORKLOAD_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SEALING_CONTEXT = {"kms:EncryptionContext:ecs-executor:cluster": "airflow"}
SCHEDULER_CALLS.append(Call("kms:GenerateDataKey", WORKLOAD_KEY, SEALING_CONTEXT))
TASK_ROLE_CALLS = [Call("kms:Decrypt", WORKLOAD_KEY, SEALING_CONTEXT)]
# Tracking by ECS events (runtime/events.py, aws/events.py) and its check: the scheduler's own queue, and the
# rule that feeds it. Granted by SchedulerTaskEventsPolicy, a policy of its own beside SchedulerPolicy.
EVENTS_QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:airflow-ecs-TaskEventsQueue-1A2B3C4D5E6F"
EVENTS_RULE = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/airflow-ecs-TaskEventsRule-1A2B3C4D5E6F"
EVENTS_CALLS = [
    Call("sqs:ReceiveMessage", EVENTS_QUEUE),
    Call("sqs:DeleteMessage", EVENTS_QUEUE),
    Call("sqs:GetQueueAttributes", EVENTS_QUEUE),
    Call("events:ListRuleNamesByTarget", EVENTS_RULE),
    Call("events:DescribeRule", EVENTS_RULE),
]
API_SERVER_CALLS = [
    Call("ecs:DescribeTasks", TASK, {"ecs:cluster": CLUSTER}),
    Call("ecs:DescribeTaskDefinition", "*"),
    Call("logs:GetLogEvents", STREAM),
]
EXECUTION_ROLE_CALLS = [
    Call("ecr:GetAuthorizationToken", "*"),
    Call("ecr:BatchCheckLayerAvailability", IMAGE_REPOSITORY),
    Call("ecr:GetDownloadUrlForLayer", IMAGE_REPOSITORY),
    Call("ecr:BatchGetImage", IMAGE_REPOSITORY),
    Call("logs:CreateLogStream", LOG_GROUP_ARN),
    Call("logs:CreateLogStream", f"{LOG_GROUP_ARN}:log-stream:airflow/base/{TASK_ID}"),
    Call("logs:PutLogEvents", STREAM),
]


def test_log_stream_resources_are_built_from_their_parts() -> None:
    """CloudFormation's LogGroup.Arn ends in ':*'; a resource built from it never matches a stream."""
    s = stack()
    assert s.resolve({"Fn::GetAtt": ["LogGroup", "Arn"]}) == f"{LOG_GROUP_ARN}:*"  # the renderer models the trap
    expected = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/airflow/airflow-task:log-stream:*"
    for logical in ("SchedulerPolicy", "ApiServerPolicy"):
        (statement,) = [st for st in policy_of(s, logical)["Statement"] if st["Sid"] == "ReadTaskLogs"]
        assert statement["Resource"] == expected, logical
    for document in (
        policy_of(s, "SchedulerPolicy"),
        policy_of(s, "ApiServerPolicy"),
        *inline_policies_of(s, "ExecutionRole"),
    ):
        assert ":*:log-stream:" not in json.dumps(document)


@pytest.mark.parametrize("call", SCHEDULER_CALLS, ids=str)
def test_scheduler_policy_allows_what_the_executor_calls(call: Call) -> None:
    assert allowed([policy_of(stack(), "SchedulerPolicy")], call)


# What `airflow ecs-executor check` calls beyond the executor's own calls, run with the scheduler's role.
SCHEDULER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/airflow-scheduler"
CHECK_CALLS = [
    *(
        Call(f"ec2:{action}", "*")
        for action in ("DescribeSubnets", "DescribeSecurityGroups", "DescribeRouteTables", "DescribeVpcEndpoints")
    ),
    Call("iam:GetRole", SCHEDULER_ROLE),
    Call("iam:SimulatePrincipalPolicy", SCHEDULER_ROLE),
]


@pytest.mark.parametrize("call", CHECK_CALLS, ids=str)
def test_scheduler_policy_and_hand_written_policy_allow_what_the_check_calls(call: Call) -> None:
    assert allowed([policy_of(stack(), "SchedulerPolicy")], call)
    hand_written = json.loads(
        json.dumps(hand_written_scheduler_policy()).replace("SCHEDULER_ROLE", "airflow-scheduler")
    )
    assert allowed([hand_written], call)


def test_the_check_may_simulate_only_the_scheduler_s_own_role() -> None:
    other = f"arn:aws:iam::{ACCOUNT}:role/someone-else"
    assert not allowed([policy_of(stack(), "SchedulerPolicy")], Call("iam:SimulatePrincipalPolicy", other))


@pytest.mark.parametrize("call", API_SERVER_CALLS, ids=str)
def test_api_server_policy_allows_what_the_log_reader_calls(call: Call) -> None:
    assert allowed([policy_of(stack(), "ApiServerPolicy")], call)


@pytest.mark.parametrize("call", EXECUTION_ROLE_CALLS, ids=str)
def test_execution_role_allows_what_ecs_does_for_a_task(call: Call) -> None:
    assert allowed(inline_policies_of(stack(), "ExecutionRole"), call)


OTHER_TASK = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/other/{TASK_ID}"


@pytest.mark.parametrize(
    "call",
    [
        Call("ecs:RunTask", f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/other-family:1", {"ecs:cluster": CLUSTER}),
        Call(
            "ecs:RunTask",
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/airflow-task:7",
            {"ecs:cluster": OTHER_CLUSTER},
        ),
        Call(
            "ecs:RunTask", "arn:aws:ecs:us-east-1:123456789012:task-definition/airflow-task:7", {"ecs:cluster": CLUSTER}
        ),
        Call("ecs:DescribeTasks", OTHER_TASK, {"ecs:cluster": OTHER_CLUSTER}),
        Call("ecs:StopTask", OTHER_TASK, {"ecs:cluster": OTHER_CLUSTER}),
        Call("ecs:TagResource", TASK, {"ecs:CreateAction": "TagResource"}),  # retagging a running task
        Call("ecs:TagResource", OTHER_TASK, {"ecs:CreateAction": "RunTask"}),
        Call("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin", {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
        Call("iam:PassRole", TASK_ROLE, {"iam:PassedToService": "lambda.amazonaws.com"}),
        Call("iam:PassRole", TASK_ROLE),
        Call("ecs:DescribeClusters", OTHER_CLUSTER),
        Call("logs:GetLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/other:log-stream:x"),
        Call("logs:GetLogEvents", f"{LOG_GROUP_ARN}-other:log-stream:x"),
        Call("ecs:RegisterTaskDefinition", "*"),
        Call("ecs:UpdateCluster", CLUSTER),
    ],
    ids=str,
)
def test_scheduler_policy_denies_outside_its_cluster_family_and_roles(call: Call) -> None:
    assert not allowed([policy_of(stack(), "SchedulerPolicy")], call)


@pytest.mark.parametrize(
    "call",
    [
        Call("ecs:RunTask", f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/airflow-task:7", {"ecs:cluster": CLUSTER}),
        Call("ecs:StopTask", TASK, {"ecs:cluster": CLUSTER}),
        Call("ecs:TagResource", TASK, {"ecs:CreateAction": "RunTask"}),
        Call("iam:PassRole", TASK_ROLE, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
        Call("ecs:DescribeTasks", OTHER_TASK, {"ecs:cluster": OTHER_CLUSTER}),
        Call("logs:GetLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/other:log-stream:x"),
    ],
    ids=str,
)
def test_api_server_policy_only_reads(call: Call) -> None:
    assert not allowed([policy_of(stack(), "ApiServerPolicy")], call)


@pytest.mark.parametrize(
    "call",
    [
        Call("ecr:BatchGetImage", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/someone-elses"),
        Call("ecr:BatchGetImage", f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/airflow-ecs"),
        Call("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/other:log-stream:x"),
        Call("logs:PutLogEvents", f"{LOG_GROUP_ARN}-other:log-stream:x"),  # a group whose name starts like ours
        Call("logs:CreateLogStream", f"{LOG_GROUP_ARN}-other"),
        Call("logs:CreateLogGroup", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/other"),
        Call("s3:GetObject", "arn:aws:s3:::any-bucket/key"),
    ],
    ids=str,
)
def test_execution_role_denies_other_repositories_and_log_groups(call: Call) -> None:
    assert not allowed(inline_policies_of(stack(), "ExecutionRole"), call)


def test_execution_role_without_a_repository_arn_pulls_from_this_accounts_repositories_only() -> None:
    policies = inline_policies_of(stack(ImageRepositoryArn=""), "ExecutionRole")
    assert allowed(policies, Call("ecr:BatchGetImage", IMAGE_REPOSITORY))
    assert not allowed(policies, Call("ecr:BatchGetImage", "arn:aws:ecr:eu-west-1:999999999999:repository/airflow-ecs"))


def test_task_role_has_no_permission_unless_given_some() -> None:
    assert "ManagedPolicyArns" not in stack().properties("TaskRole")
    assert "Policies" not in stack().properties("TaskRole")
    # Its one permission of its own: opening this cluster's sealed workloads (a separate policy resource).
    (statement,) = policy_of(stack(), "TaskRoleOpensSealedWorkloads")["Statement"]
    assert statement["Action"] == "kms:Decrypt"
    arns = "arn:aws:iam::123456789012:policy/dags-s3,arn:aws:iam::123456789012:policy/remote-logging"
    assert stack(TaskRolePolicyArns=arns).properties("TaskRole")["ManagedPolicyArns"] == arns.split(",")


@pytest.mark.parametrize("role", ["ExecutionRole", "TaskRole"])
def test_roles_trust_only_ecs_acting_for_this_account(role: str) -> None:
    (statement,) = stack().properties(role)["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    conditions = statement["Condition"]
    ours = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/airflow/{TASK_ID}"}
    theirs = {"aws:SourceAccount": "999999999999", "aws:SourceArn": f"arn:aws:ecs:{REGION}:999999999999:task/x/y"}
    assert conditions_hold(conditions, ours)
    assert not conditions_hold(conditions, theirs)
    assert not conditions_hold(conditions, {})  # no source: no assumption


# Boto3 operations of every client the product could create, by snake-case name, and the IAM action each
# one needs. A call added to airflow_ecs_executor/ without an entry here fails the test below: add it to the
# table, to the policy of the principal that makes it, and to the call lists above.
_ACTIONS_OF_OPERATIONS = {
    "run_task": ("ecs:RunTask", "ecs:TagResource", "iam:PassRole"),
    "describe_tasks": ("ecs:DescribeTasks",),
    "stop_task": ("ecs:StopTask",),
    # airflow ecs-executor check only (check.py; aws/vpc.py, aws/simulation.py): CHECK_CALLS below.
    "describe_subnets": ("ec2:DescribeSubnets",),
    "describe_security_groups": ("ec2:DescribeSecurityGroups",),
    "describe_route_tables": ("ec2:DescribeRouteTables",),
    "describe_vpc_endpoints": ("ec2:DescribeVpcEndpoints",),
    "get_role": ("iam:GetRole",),
    "simulate_principal_policy": ("iam:SimulatePrincipalPolicy",),
    "describe_clusters": ("ecs:DescribeClusters",),
    "describe_task_definition": ("ecs:DescribeTaskDefinition",),
    "describe_log_groups": ("logs:DescribeLogGroups",),
    "get_log_events": ("logs:GetLogEvents",),
    "get_caller_identity": (),  # STS GetCallerIdentity needs no permission
    "generate_data_key": ("kms:GenerateDataKey",),  # the scheduler seals (and the check probes)
    "decrypt": ("kms:Decrypt",),  # the task role opens (aws/unseal.py)
    "encrypt": (),  # AES-GCM's encrypt in aws/sealing.py (local, cryptography); the product never calls KMS Encrypt
    "receive_message": ("sqs:ReceiveMessage",),
    "delete_message_batch": ("sqs:DeleteMessage",),  # authorised as DeleteMessage (SQS API reference)
    "delete_message": ("sqs:DeleteMessage",),
    "get_queue_attributes": ("sqs:GetQueueAttributes",),
    "list_rule_names_by_target": ("events:ListRuleNamesByTarget",),
    "describe_rule": ("events:DescribeRule",),
}
_SERVICES = ("ecs", "logs", "ec2", "iam", "sts", "sqs", "ecr", "events", "kms")


def _operations_in_product_code() -> set[str]:
    session = botocore.session.get_session()
    names: set[str] = set()
    for service in _SERVICES:
        model = session.get_service_model(service)
        names |= {botocore.xform_name(op) for op in model.operation_names}  # type: ignore[attr-defined]
    package = Path(__file__).resolve().parents[2] / "airflow_ecs_executor"
    found: set[str] = set()
    for path in package.rglob("*.py"):
        found |= {m for m in re.findall(r"\.([a-z_]+)\(", path.read_text()) if m in names}
    return found


def test_every_aws_operation_in_the_product_is_evaluated() -> None:
    found = _operations_in_product_code()
    assert "run_task" in found and "get_log_events" in found  # the scan sees the code
    missing = found - set(_ACTIONS_OF_OPERATIONS)
    assert not missing, (
        f"AWS operations called by airflow_ecs_executor but not evaluated against the policies: {missing}"
    )
    evaluated = {c.action for c in SCHEDULER_CALLS + API_SERVER_CALLS + TASK_ROLE_CALLS + EVENTS_CALLS + CHECK_CALLS}
    for operation in found:
        for action in _ACTIONS_OF_OPERATIONS[operation]:
            assert action in evaluated, (operation, action)


@pytest.mark.parametrize("call", SCHEDULER_CALLS, ids=str)
def test_hand_written_scheduler_policy_allows_what_the_executor_calls(call: Call) -> None:
    assert allowed([hand_written_scheduler_policy()], call)


def test_hand_written_scheduler_policy_denies_outside_its_cluster() -> None:
    policy = hand_written_scheduler_policy()
    assert not allowed(
        [policy],
        Call(
            "ecs:RunTask",
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/airflow-task:7",
            {"ecs:cluster": OTHER_CLUSTER},
        ),
    )
    assert not allowed([policy], Call("ecs:StopTask", OTHER_TASK, {"ecs:cluster": OTHER_CLUSTER}))


def test_the_task_role_opens_only_this_clusters_sealed_workloads() -> None:
    s = stack()
    policy = policy_of(s, "TaskRoleOpensSealedWorkloads")
    assert s.properties("TaskRoleOpensSealedWorkloads")["Roles"] == [s.resolve({"Ref": "TaskRole"})]
    for call in TASK_ROLE_CALLS:
        assert allowed([policy], call), call
    other_cluster = {"kms:EncryptionContext:ecs-executor:cluster": "other"}
    assert not allowed([policy], Call("kms:Decrypt", WORKLOAD_KEY, other_cluster))
    assert not allowed([policy], Call("kms:Decrypt", WORKLOAD_KEY))  # no context: no decrypt
    assert not allowed([policy], Call("kms:GenerateDataKey", WORKLOAD_KEY, SEALING_CONTEXT))
    assert not allowed([policy_of(s, "SchedulerPolicy")], Call("kms:Decrypt", WORKLOAD_KEY, SEALING_CONTEXT))
    assert not allowed([policy_of(s, "SchedulerPolicy")], Call("kms:GenerateDataKey", WORKLOAD_KEY, other_cluster))


def test_the_key_policy_denies_decrypt_to_everyone_but_the_task_role() -> None:
    s = stack()
    policy = s.properties("WorkloadKey")["KeyPolicy"]
    (deny,) = [st for st in policy["Statement"] if st["Effect"] == "Deny"]
    assert set(deny["Action"]) == {"kms:Decrypt", "kms:ReEncryptFrom"}
    task_role = s.resolve({"Fn::GetAtt": ["TaskRole", "Arn"]})
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": task_role}}
    assert s.output("WorkloadKmsKey") == WORKLOAD_KEY


@pytest.mark.parametrize("call", EVENTS_CALLS, ids=str)
def test_scheduler_events_policy_allows_what_the_events_feed_and_check_call(call: Call) -> None:
    assert allowed([policy_of(stack(), "SchedulerTaskEventsPolicy")], call)


def test_scheduler_events_policy_denies_other_queues() -> None:
    other = Call("sqs:ReceiveMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:someone-elses-queue")
    assert not allowed([policy_of(stack(), "SchedulerTaskEventsPolicy")], other)


def test_only_the_rule_may_send_to_the_events_queues() -> None:
    s = stack(TaskEventQueues="2")
    (statement,) = s.properties("TaskEventsQueuePolicy")["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": EVENTS_RULE}}
    assert len(statement["Resource"]) == 2
