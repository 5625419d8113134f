"""docs/setup.md and docs/logging.md agree with deploy/cloudformation.yaml and docker/."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.deploy.render import Stack, load_template

DOCS = Path(__file__).resolve().parents[2] / "docs"
SETUP = (DOCS / "setup.md").read_text()
LOGGING = (DOCS / "logging.md").read_text()


def _deploy_parameters() -> dict[str, str]:
    block = SETUP.split("aws cloudformation deploy", 1)[1].split("```", 1)[0]
    return dict(re.findall(r"^\s+([A-Za-z]+)=(\S+?)\s*\\?$", block, re.MULTILINE))


def test_setup_deploys_with_parameters_the_template_has() -> None:
    given = _deploy_parameters()
    assert {"VpcId", "SubnetIds", "Image", "ExecutionApiServerUrl", "AssignPublicIp", "ApiServerPort"} <= set(given)
    assert set(given) <= set(load_template()["Parameters"])
    assert given["ExecutionApiServerUrl"].startswith("https://") and given["ApiServerPort"] == "443"


def test_setup_configuration_matches_the_stack_outputs() -> None:
    given = _deploy_parameters()
    stack = Stack({k: v.replace("$ECR", "123456789012.dkr.ecr.eu-west-1.amazonaws.com") for k, v in given.items()})
    section = SETUP.split("[ecs_executor]", 1)[1].split("\n\n", 1)[0]
    config = dict(re.findall(r"^(\w+) = (.+)$", section, re.MULTILINE))
    assert config["assign_public_ip"] == stack.output("AssignPublicIp")
    assert json.loads(config["capacity_provider_strategy"]) == json.loads(stack.output("CapacityProviderStrategy"))
    assert config["cluster"] == stack.output("Cluster")
    assert config["task_definition"] == stack.output("TaskDefinition")
    assert config["container_name"] == stack.output("ContainerName")


def test_setup_build_and_login_commands() -> None:
    assert re.search(r"aws ecr get-login-password --region \S+ \| docker login", SETUP)
    assert "docker build --platform linux/amd64 -f docker/Dockerfile" in SETUP
    assert "DAGS_FROM_BUNDLE=true" in SETUP
    assert "jwt_secret" in SETUP and "403" in SETUP
    assert "AIRFLOW__API__SSL_CA_FILE" in SETUP
    for heading in ("## 8. Costs", "## 9. Quotas", "## 10. Upgrading", "## 11. Alarms worth setting"):
        assert heading in SETUP


def test_logging_names_the_log_group_the_template_creates() -> None:
    group = Stack(
        {"VpcId": "vpc-1", "SubnetIds": "subnet-1", "Image": "i", "ExecutionApiServerUrl": "https://a/execution/"}
    ).output("LogGroupName")
    assert f'"awslogs-group": "{group}"' in LOGGING
    named = set(re.findall(r"/ecs/[\w/-]+", LOGGING + SETUP))
    assert named <= {group, "/ecs/<cluster>/<family>"} | {f"{group}:log-stream"}, named
