"""IAM's policy simulator at the emulator's endpoint, on moto's IAM, with IAM's evaluation rules.

Sources: "SimulatePrincipalPolicy" (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html):
one result per action with EvalDecision allowed, explicitDeny or implicitDeny, and the context keys a condition
needed but the request lacked in MissingContextValues; "Policy evaluation logic"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html): an explicit Deny
wins over any Allow, and without an Allow the decision is an implicit deny.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecs_emulator import Emulator
from ecs_emulator.iam_simulation import act_as_role, forget_role_sessions
from tests.helpers import aws_client

ACCOUNT = "123456789012"
TASK_DEF = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/airflow-task:3"
CLUSTER = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/airflow"


def _role(iam: Any, *statements: dict[str, Any]) -> str:
    name = f"sim-{uuid.uuid4().hex[:8]}"
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"])
    iam.put_role_policy(
        RoleName=name,
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
    )
    return arn


def _decision(iam: Any, role: str, action: str, resource: str, **context: str) -> tuple[str, list[str]]:
    entries = [
        {"ContextKeyName": k.replace("__", ":"), "ContextKeyValues": [v], "ContextKeyType": "string"}
        for k, v in context.items()
    ]
    (result,) = iam.simulate_principal_policy(
        PolicySourceArn=role, ActionNames=[action], ResourceArns=[resource], ContextEntries=entries
    )["EvaluationResults"]
    return result["EvalDecision"], list(result.get("MissingContextValues") or [])


def test_allow_deny_and_conditions(emulator: Emulator) -> None:
    iam = aws_client("iam", emulator, read_timeout=60)
    role = _role(
        iam,
        {
            "Effect": "Allow",
            "Action": "ecs:RunTask",
            "Resource": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/airflow-task:*",
            "Condition": {"ArnEquals": {"ecs:cluster": CLUSTER}},
        },
        {"Effect": "Allow", "Action": "ecs:StopTask", "Resource": "*"},
        {"Effect": "Deny", "Action": "ecs:StopTask", "Resource": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/prod/*"},
    )
    assert _decision(iam, role, "ecs:RunTask", TASK_DEF, ecs__cluster=CLUSTER) == ("allowed", [])
    assert _decision(iam, role, "ecs:RunTask", TASK_DEF, ecs__cluster=CLUSTER.replace("airflow", "other"))[0] == (
        "implicitDeny"
    )
    # A condition key the request does not give matches nothing, and is named.
    assert _decision(iam, role, "ecs:RunTask", TASK_DEF) == ("implicitDeny", ["ecs:cluster"])
    assert _decision(iam, role, "ecs:StopTask", f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/airflow/1")[0] == "allowed"
    assert _decision(iam, role, "ecs:StopTask", f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/prod/1")[0] == "explicitDeny"
    assert _decision(iam, role, "ecs:DescribeTasks", "*")[0] == "implicitDeny"


def test_what_cannot_be_judged_faithfully_is_refused(emulator: Emulator) -> None:
    iam = aws_client("iam", emulator, read_timeout=60)
    role = _role(
        iam,
        {
            "Effect": "Allow",
            "Action": "ecs:RunTask",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        },
    )
    with pytest.raises(ClientError, match="condition operator Bool"):
        _decision(iam, role, "ecs:RunTask", TASK_DEF)
    with pytest.raises(ClientError, match="one resource per call"):
        iam.simulate_principal_policy(PolicySourceArn=role, ActionNames=["ecs:RunTask"], ResourceArns=["a", "b"])
    with pytest.raises(ClientError) as missing:
        _decision(iam, f"arn:aws:iam::{ACCOUNT}:role/nobody", "ecs:RunTask", TASK_DEF)
    assert missing.value.response["Error"]["Code"] == "NoSuchEntity"


def test_the_emulators_key_as_a_role_session(emulator: Emulator) -> None:
    # GetCallerIdentity of role credentials: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
    # (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
    sts = aws_client("sts", emulator)
    act_as_role(emulator.access_key_id, f"arn:aws:iam::{ACCOUNT}:role/airflow-scheduler", "scheduler")
    try:
        assert sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/airflow-scheduler/scheduler"
    finally:
        forget_role_sessions(emulator.access_key_id)
    assert ":assumed-role/" not in sts.get_caller_identity()["Arn"]


def test_access_denied_fault(emulator: Emulator) -> None:
    # ECS and CloudWatch Logs answer a caller whose policies do not allow the action with AccessDeniedException
    # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/CommonErrors.html,
    # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/CommonErrors.html).
    logs = aws_client("logs", emulator)
    emulator.inject("access_denied", api="GetLogEvents")
    with pytest.raises(ClientError) as denied:
        logs.get_log_events(logGroupName="/g", logStreamName="s")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "logs:GetLogEvents" in denied.value.response["Error"]["Message"]
    with pytest.raises(logs.exceptions.ResourceNotFoundException):  # one-shot: the next call is judged as usual
        logs.get_log_events(logGroupName="/g", logStreamName="s")
