"""deploy/cloudformation.yaml: valid by cfn-lint, outputs one to one with [ecs_executor] keys, least privilege."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from airflow_ecs_executor.config import ExecutorConfig

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "cloudformation.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags kept as {tag: value}."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tagged)


def template() -> dict[str, Any]:
    return dict(yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader))


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


def test_cluster_has_fargate_and_spot_and_logs_have_retention() -> None:
    resources = template()["Resources"]
    assert resources["Cluster"]["Properties"]["CapacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert "RetentionInDays" in resources["LogGroup"]["Properties"]
    options = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]["LogConfiguration"]
    assert options["LogDriver"] == "awslogs"
    assert "awslogs-stream-prefix" in options["Options"]


def test_scheduler_policy_is_least_privilege() -> None:
    statements = template()["Resources"]["SchedulerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    by_action: dict[str, dict[str, Any]] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            by_action[action] = statement
    assert all(s["Effect"] == "Allow" for s in statements)
    assert not any(a.endswith("*") for a in by_action)  # no wildcard actions
    assert "task-definition/${TaskFamily}:*" in by_action["ecs:RunTask"]["Resource"]["Sub"]
    assert "ecs:cluster" in by_action["ecs:RunTask"]["Condition"]["ArnEquals"]
    assert by_action["iam:PassRole"]["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"
    assert len(by_action["iam:PassRole"]["Resource"]) == 2  # the execution and task roles only
    for action in ("ecs:DescribeTasks", "ecs:StopTask", "ecs:ListTasks"):
        assert "ecs:cluster" in by_action[action]["Condition"]["ArnEquals"]
    assert "${LogGroup.Arn}" in by_action["logs:GetLogEvents"]["Resource"]["Sub"]
    # Only DescribeTaskDefinition (no resource-level permissions in ECS) has Resource "*".
    assert [a for a, s in by_action.items() if s["Resource"] == "*"] == ["ecs:DescribeTaskDefinition"]
