"""One realistic deployment of deploy/cloudformation.yaml, and the policies each of its principals holds.

Shared by the policy tests here and the end-to-end test that evaluates a recorded run
(tests/e2e/test_policies_recorded.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.deploy.render import Stack

REGION, ACCOUNT = "eu-west-1", "123456789012"
IMAGE_REPOSITORY = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/airflow-ecs"
PARAMETERS: Mapping[str, str] = {
    "VpcId": "vpc-0a1b2c3d",
    "SubnetIds": "subnet-0a1b2c3d,subnet-4e5f6a7b",
    "Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/airflow-ecs:3.3.2",
    "ImageRepositoryArn": IMAGE_REPOSITORY,
    "ExecutionApiServerUrl": "https://airflow.internal/execution/",
    "ApiServerSecurityGroupId": "sg-0apiserver",
    "SchedulerRoleName": "airflow-scheduler",
    "ApiServerRoleName": "airflow-api-server",
}
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/airflow-ecs-ExecutionRole-1A2B3C4D5E6F"
TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/airflow-ecs-TaskRole-1A2B3C4D5E6F"


def stack(**overrides: str) -> Stack:
    return Stack({**PARAMETERS, **overrides}, region=REGION, account=ACCOUNT)


def policy_of(s: Stack, logical: str) -> dict[str, Any]:
    return dict(s.properties(logical)["PolicyDocument"])


def inline_policies_of(s: Stack, logical: str) -> list[dict[str, Any]]:
    return [dict(p["PolicyDocument"]) for p in s.properties(logical).get("Policies", [])]


def hand_written_scheduler_policy() -> dict[str, Any]:
    """The scheduler policy docs/reliability.md gives for a set-up without the template, with its placeholders filled."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    blocks = [b for b in re.findall(r"```json\n(.*?)```", text, re.DOTALL) if "RunTheTaskDefinitionOnTheCluster" in b]
    assert len(blocks) == 1, "docs/reliability.md no longer has one hand-written scheduler policy"
    filled = (
        blocks[0]
        .replace("REGION", REGION)
        .replace("ACCOUNT", ACCOUNT)
        .replace("role/EXECUTION_ROLE", EXECUTION_ROLE.split(":", 5)[5])
        .replace("role/TASK_ROLE", TASK_ROLE.split(":", 5)[5])
    )
    return dict(json.loads(filled))


def policies_attached_to(s: Stack, role_name: str) -> list[dict[str, Any]]:
    """Every policy document the rendered template gives the role named ``role_name``.

    Inline policies of the role itself, and each ``AWS::IAM::Policy`` or ``AWS::IAM::ManagedPolicy`` created
    with these parameters whose ``Roles`` name it. Managed policies passed in by ARN (``TaskRolePolicyArns``)
    are the operator's own and not part of the template.
    """
    documents: list[dict[str, Any]] = []
    for logical, resource in s.template["Resources"].items():
        kind = resource["Type"]
        if "Condition" in resource and not s.conditions[resource["Condition"]]:
            continue
        if kind == "AWS::IAM::Role" and s.resolve({"Ref": logical}) == role_name:
            documents += inline_policies_of(s, logical)
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and role_name in s.properties(logical).get(
            "Roles", []
        ):
            documents.append(policy_of(s, logical))
    return documents
