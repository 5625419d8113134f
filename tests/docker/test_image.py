"""The task image: Dockerfile lint, the entrypoint's logic outside Docker, and a real build where an engine answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
BIN = Path(sys.executable).parent


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [BIN / "hadolint", ROOT / "docker" / "Dockerfile"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_entrypoint_passes_shellcheck() -> None:
    done = subprocess.run([BIN / "shellcheck", ENTRYPOINT], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def image_root(tmp_path: Path) -> dict[str, str]:
    """A stand-in for the official entry point that prints what it was handed, and a DAGs folder."""
    stub = tmp_path / "official-entrypoint"
    stub.write_text('#!/usr/bin/env bash\necho "URL=${AIRFLOW__CORE__EXECUTION_API_SERVER_URL}"\necho "ARGS=$*"\n')
    stub.chmod(0o755)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "etl.py").write_text("# a DAG file\n")
    return {
        "PATH": os.environ["PATH"],
        "ECS_EXECUTOR_NEXT_ENTRYPOINT": str(stub),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
    }


def entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", ENTRYPOINT, *args], env=env, capture_output=True, text=True, check=False)


COMMAND = ("python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", "{}")


def test_hands_the_workload_command_to_the_official_entrypoint(image_root: dict[str, str]) -> None:
    env = {**image_root, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "https://airflow.internal/execution/"}
    done = entrypoint(env, *COMMAND)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["URL=https://airflow.internal/execution/", "ARGS=" + " ".join(COMMAND)]


def test_url_is_derived_from_the_api_base_url(image_root: dict[str, str]) -> None:
    done = entrypoint({**image_root, "AIRFLOW__API__BASE_URL": "https://airflow.internal/"}, *COMMAND)
    assert done.returncode == 0, done.stderr
    assert "URL=https://airflow.internal/execution/" in done.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL is not set"),
        ({"AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "airflow.internal"}, "is not an http(s) URL"),
        ({"AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://localhost:8080/execution/"}, "points at the task itself"),
        ({"AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:8080/execution/"}, "points at the task itself"),
    ],
)
def test_refuses_to_start_without_a_usable_api_server_url(
    image_root: dict[str, str], env: dict[str, str], message: str
) -> None:
    done = entrypoint({**image_root, **env}, *COMMAND)
    assert done.returncode == 64
    assert message in done.stderr
    assert done.stdout == ""  # the official entry point never ran


def test_loopback_allowed_for_local_runs(image_root: dict[str, str]) -> None:
    env = {
        **image_root,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:8080/execution/",
        "ECS_EXECUTOR_ALLOW_LOOPBACK": "1",
    }
    assert entrypoint(env, *COMMAND).returncode == 0


def test_needs_dags_baked_in_or_a_bundle(image_root: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {
        **image_root,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "https://airflow.internal/execution/",
        "AIRFLOW__CORE__DAGS_FOLDER": str(empty),
    }
    done = entrypoint(env, *COMMAND)
    assert done.returncode == 64
    assert "no DAG files" in done.stderr
    bundle = '[{"name": "dags", "classpath": "airflow.providers.git.bundles.git.GitDagBundle", "kwargs": {}}]'
    assert entrypoint({**env, "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": bundle}, *COMMAND).returncode == 0


def test_static_keys_next_to_a_task_role_are_flagged(image_root: dict[str, str]) -> None:
    env = {
        **image_root,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "https://airflow.internal/execution/",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x",
    }
    done = entrypoint(env, *COMMAND)
    assert done.returncode == 0
    assert "overrides the task role's credentials" in done.stderr


def docker_engine() -> str | None:
    """Why the Docker test cannot run here, or None when an engine answers."""
    if shutil.which("docker") is None:
        return "no docker client"
    done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30, check=False)
    return None if done.returncode == 0 else f"no Docker engine answers: {done.stderr.strip()[:200]}"


@pytest.mark.timeout(1800)
@pytest.mark.skipif(docker_engine() is not None, reason=str(docker_engine()))
def test_image_builds_and_runs_a_task_through_the_emulator() -> None:
    import boto3

    from ecs_emulator import Emulator

    tag = "airflow-ecs-executor-test:latest"
    subprocess.run(["docker", "build", "-f", "docker/Dockerfile", "-t", tag, "."], cwd=ROOT, check=True, timeout=1500)
    with Emulator("fast", runner="docker") as emulator:
        ecs = boto3.client(
            "ecs",
            endpoint_url=emulator.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        ecs.create_cluster(clusterName="c")
        emulator.register_container_instances("c")  # EC2 capacity
        ecs.register_task_definition(
            family="img",
            containerDefinitions=[
                {
                    "name": "base",
                    "image": tag,
                    "memory": 1024,
                    "environment": [
                        {
                            "name": "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                            "value": "https://airflow.internal/execution/",
                        },
                        {"name": "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", "value": "[]"},
                    ],
                }
            ],
        )
        command = ["python", "-c", "import airflow_ecs_executor, airflow; print('image ok', airflow.__version__)"]
        arn = ecs.run_task(
            cluster="c", taskDefinition="img", overrides={"containerOverrides": [{"name": "base", "command": command}]}
        )["tasks"][0]["taskArn"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            task = ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
            if task["lastStatus"] == "STOPPED":
                break
            time.sleep(2)
        assert task["containers"][0].get("exitCode") == 0, task
