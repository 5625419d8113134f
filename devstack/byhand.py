"""The demo's ECS set-up and settings, for an Airflow of your own (README, "Try it by hand").

``python -m devstack setup-ecs`` creates the demo's cluster, EC2 capacity and task definitions in
the emulator the environment names (``eval "$(python -m ecs_emulator env)"`` first), as an
administrator would create them on AWS (``deploy/cloudformation.yaml``). ``python -m devstack
config`` prints the ``[ecs_executor]`` section that uses them: as ``airflow.cfg`` lines, or with
``--export`` as the ``AIRFLOW__ECS_EXECUTOR__*`` variables Airflow reads as well.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shlex
import sys
from collections.abc import Mapping
from typing import Any

import boto3

from devstack.stack import (
    BIG_TASK_DEFINITION,
    CLUSTER,
    LOCAL_TASK_ENV,
    LOG_GROUP,
    TASK_DEFINITION,
    TASK_ROLE,
    WORKLOAD_KEY_ALIAS,
)
from ecs_emulator.emulator import ControlClient

CONTAINER = "base"
REGION = "us-east-1"


def section(endpoint_url: str, region: str = REGION) -> dict[str, str]:
    """The demo's ``[ecs_executor]`` options, pointed at the emulator at ``endpoint_url``."""
    return {
        "cluster": CLUSTER,
        "task_definition": TASK_DEFINITION,
        "container_name": CONTAINER,
        "region_name": region,
        "endpoint_url": endpoint_url,
        "queue_profiles": json.dumps({"big": {"task_definition": BIG_TASK_DEFINITION, "memory": 2048}}),
        # Workloads are sealed with this KMS key (setup-ecs creates it); the task role opens them.
        "workload_kms_key": WORKLOAD_KEY_ALIAS,
    }


def as_ini(options: Mapping[str, str]) -> str:
    """The options as an ``airflow.cfg`` section (comments on lines of their own: Airflow keeps the rest)."""
    lines = ["[core]", "executor = airflow_ecs_executor.EcsExecutor", "", "[ecs_executor]"]
    lines += [f"{key} = {value}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def as_exports(options: Mapping[str, str]) -> str:
    """The same settings as environment variables, for ``eval``."""
    values = {"AIRFLOW__CORE__EXECUTOR": "airflow_ecs_executor.EcsExecutor"}
    values.update({f"AIRFLOW__ECS_EXECUTOR__{key.upper()}": value for key, value in options.items()})
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())


def setup_ecs(endpoint_url: str, region: str, airflow_home: str | None) -> list[str]:
    """Create the demo's cluster, capacity and task definitions; what was created, one line each."""
    ecs: Any = boto3.client("ecs", endpoint_url=endpoint_url, region_name=region)
    done = []
    if not any(c["status"] == "ACTIVE" for c in ecs.describe_clusters(clusters=[CLUSTER])["clusters"]):
        ecs.create_cluster(clusterName=CLUSTER, capacityProviders=["FARGATE", "FARGATE_SPOT"])
        # EC2 capacity for the EC2 (bridge) task definitions: 4 instances of 16 vCPU and 64 GiB.
        ControlClient(endpoint_url).register_container_instances(CLUSTER, count=4, cpu=16384, memory=65536)
        done.append(f"cluster {CLUSTER} with 4 container instances (16 vCPU, 64 GiB each)")
    kms: Any = boto3.client("kms", endpoint_url=endpoint_url, region_name=region)
    if not any(a["AliasName"] == WORKLOAD_KEY_ALIAS for a in kms.list_aliases()["Aliases"]):
        key = kms.create_key(Description="airflow-ecs-executor workloads (by hand)")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=WORKLOAD_KEY_ALIAS, TargetKeyId=key)
        done.append(f"KMS key {WORKLOAD_KEY_ALIAS} (seals the workloads)")
    # The container is a local process that inherits the emulator's environment; AIRFLOW_HOME tells
    # it which airflow.cfg to read, as an image carries its configuration on AWS.
    environment = [{"name": "AIRFLOW_HOME", "value": airflow_home}] if airflow_home else []
    environment += LOCAL_TASK_ENV
    for family, memory in ((TASK_DEFINITION, 1536), (BIG_TASK_DEFINITION, 3072)):
        revision = ecs.register_task_definition(
            family=family,
            **TASK_ROLE,  # the task role's credentials open the sealed workload
            containerDefinitions=[
                {
                    "name": CONTAINER,
                    "image": f"apache/airflow:{importlib.metadata.version('apache-airflow')}",
                    "memory": memory,
                    "environment": environment,
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": LOG_GROUP,
                            "awslogs-stream-prefix": "airflow",
                            "awslogs-create-group": "true",
                            "awslogs-region": region,
                        },
                    },
                }
            ],
        )["taskDefinition"]["revision"]
        done.append(f"task definition {family}:{revision} (container {CONTAINER}, {memory} MiB)")
    return done


def _environment() -> tuple[str, str]:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise SystemExit(
            "no emulator in the environment: start one (python -m ecs_emulator) and run "
            'eval "$(python -m ecs_emulator env)" first'
        )
    return endpoint, os.environ.get("AWS_DEFAULT_REGION") or REGION


def main(argv: list[str]) -> int:
    """``python -m devstack setup-ecs | config [--export]``."""
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup-ecs", help="create the demo's cluster and task definitions in the emulator")
    config = sub.add_parser("config", help="print the [core] executor and [ecs_executor] settings for it")
    config.add_argument("--export", action="store_true", help="as export lines of AIRFLOW__* variables")
    args = parser.parse_args(argv)
    endpoint, region = _environment()
    if args.command == "setup-ecs":
        for line in setup_ecs(endpoint, region, os.environ.get("AIRFLOW_HOME")):
            print(f"created {line}")
        return 0
    options = section(endpoint, region)
    sys.stdout.write(as_exports(options) if args.export else as_ini(options))
    return 0
