"""How a call recorded by the emulator's request log becomes IAM authorisations on the deployed resources.

The end-to-end check (tests/e2e/test_policies_recorded.py) evaluates a real recording; these tests pin the
translation itself: what each recorded action is authorised as, the explicit name mapping, and the refusal of
anything the mapping does not know.
"""

from __future__ import annotations

from typing import Any

import pytest

from devstack import stack as devstack
from tests.deploy import deployment, recorded
from tests.deploy.deployment import ACCOUNT, REGION, TASK_ROLE, stack
from tests.deploy.iam import Call

EMULATOR_TASK = "arn:aws:ecs:us-east-1:123456789012:task/airflow/0123456789abcdef0123456789abcdef"
DEPLOYED_TASK = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/airflow/0123456789abcdef0123456789abcdef"
DEPLOYED_CLUSTER = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/airflow"
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/airflow/airflow-task"


def record(service: str, action: str, principal: str = "scheduler", **resources: Any) -> dict[str, Any]:
    """A line as ecs_emulator/requestlog.py writes it (the fields the translation reads)."""
    role = devstack.TASK_ROLE["taskRoleArn"] if principal == "task" else None
    return {"service": service, "action": action, "principal": principal, "role_arn": role, "resources": resources}


NAMES = recorded.devstack_names(stack())


def test_a_recorded_launch_is_run_task_tag_resource_and_pass_role_on_the_deployed_names() -> None:
    launch = record(
        "ecs",
        "RunTask",
        cluster="airflow",
        taskDefinitionArn="arn:aws:ecs:us-east-1:123456789012:task-definition/airflow-task:3",
        passedRoles=[devstack.TASK_ROLE["taskRoleArn"], devstack.EXECUTION_ROLE_ARN],
        startedTaskArns=[EMULATOR_TASK],
        tagged=True,
    )
    execution_role = stack().resolve({"Fn::GetAtt": ["ExecutionRole", "Arn"]})
    assert recorded.iam_calls(launch, NAMES) == [
        Call(
            "ecs:RunTask",
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/airflow-task:3",
            {"ecs:cluster": DEPLOYED_CLUSTER},
        ),
        Call("ecs:TagResource", DEPLOYED_TASK, {"ecs:CreateAction": "RunTask"}),
        Call("iam:PassRole", TASK_ROLE, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
        Call("iam:PassRole", execution_role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
    ]
    assert all(v.allowed for v in recorded.evaluated([launch], stack(), NAMES))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            record("ecs", "DescribeTasks", cluster="airflow", tasks=["0123456789abcdef0123456789abcdef"]),
            [Call("ecs:DescribeTasks", DEPLOYED_TASK, {"ecs:cluster": DEPLOYED_CLUSTER})],
            id="describe-by-task-id",
        ),
        pytest.param(
            record("ecs", "StopTask", cluster="airflow", task=EMULATOR_TASK),
            [Call("ecs:StopTask", DEPLOYED_TASK, {"ecs:cluster": DEPLOYED_CLUSTER})],
            id="stop",
        ),
        pytest.param(
            record("ecs", "DescribeTaskDefinition", taskDefinition="airflow-task-big"),
            [Call("ecs:DescribeTaskDefinition", "*")],
            id="describe-task-definition-has-no-resource",
        ),
        pytest.param(
            record("logs", "GetLogEvents", "api-server", logGroupName="/ecs/airflow", logStreamName="airflow/base/x"),
            [Call("logs:GetLogEvents", f"{LOG_GROUP_ARN}:log-stream:airflow/base/x")],
            id="log-stream-in-the-deployed-group",
        ),
        pytest.param(
            record("kms", "Decrypt", "task", EncryptionContext={"ecs-executor:cluster": "airflow"}),
            [
                Call(
                    "kms:Decrypt",
                    f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                    {"kms:EncryptionContext:ecs-executor:cluster": "airflow"},
                )
            ],
            id="decrypt-names-the-only-key",
        ),
        pytest.param(
            record("sqs", "DeleteMessageBatch", QueueUrl=f"http://127.0.0.1:1/123456789012/{devstack.EVENTS_QUEUE}"),
            [Call("sqs:DeleteMessage", stack().resolve({"Fn::GetAtt": ["TaskEventsQueue", "Arn"]}))],
            id="delete-batch-is-delete-message",
        ),
        pytest.param(record("sts", "GetCallerIdentity"), [], id="caller-identity-needs-nothing"),
    ],
)
def test_recorded_calls_translate_to_their_iam_authorisations(line: dict[str, Any], expected: list[Call]) -> None:
    assert recorded.iam_calls(line, NAMES) == expected
    assert all(v.allowed for v in recorded.evaluated([line], stack(), NAMES))


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(record("ecs", "RegisterTaskDefinition"), id="unknown-action"),
        pytest.param(record("s3", "PUT /bucket/key"), id="unknown-service-action"),
        pytest.param(record("ecs", "StopTask", cluster="other", task="x"), id="unmapped-cluster"),
        pytest.param(
            record(
                "ecs",
                "RunTask",
                cluster="airflow",
                taskDefinitionArn="arn:aws:ecs:us-east-1:123456789012:task-definition/someone-elses-family:1",
            ),
            id="unmapped-family",
        ),
        pytest.param(record("logs", "GetLogEvents", logGroupName="/other", logStreamName="s"), id="unmapped-group"),
        pytest.param(record("sts", "GetCallerIdentity", "triggerer"), id="principal-without-a-role"),
    ],
)
def test_what_the_mapping_does_not_know_fails_rather_than_passing_unevaluated(line: dict[str, Any]) -> None:
    with pytest.raises(recorded.Unmapped):
        recorded.evaluated([line], stack(), NAMES)


def test_the_administrators_calls_and_refused_requests_are_not_evaluated() -> None:
    lines = [record("ecs", "RegisterTaskDefinition", "emulator"), {**record("ecs", "ListClusters"), "principal": None}]
    assert recorded.evaluated(lines, stack(), NAMES) == []


def test_each_principal_holds_the_policies_the_template_attaches_to_its_role() -> None:
    s = stack()
    held = {
        name: [d["Statement"][0]["Sid"] for d in deployment.policies_attached_to(s, role)]
        for name, role in {**recorded.ROLE_OF_PRINCIPAL, "task": TASK_ROLE.rsplit("/", 1)[-1]}.items()
    }
    assert held == {
        "scheduler": ["RunTheTaskDefinitionOnTheCluster", "ReadTheTaskEventQueues"],
        "api-server": ["FindTheTasksLogStream"],
        "task": ["OpenThisClustersSealedWorkloads"],
    }


def test_a_denied_recorded_call_is_reported_as_denied() -> None:
    # The API server reads; a launch signed with its key would be denied, not waved through.
    launch = record(
        "ecs",
        "RunTask",
        "api-server",
        cluster="airflow",
        taskDefinitionArn="arn:aws:ecs:us-east-1:123456789012:task-definition/airflow-task:1",
    )
    (verdict,) = recorded.evaluated([launch], stack(), NAMES)
    assert not verdict.allowed
