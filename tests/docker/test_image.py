"""The task image: Dockerfile lint, the entrypoint's logic outside Docker, and a real build where an engine answers."""

from __future__ import annotations

import os
import re
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


def test_scripts_pass_shellcheck() -> None:
    scripts = [ENTRYPOINT, ROOT / "docker" / "check-dags.sh", ROOT / "docker" / "check-base-image.sh"]
    done = subprocess.run([BIN / "shellcheck", *scripts], capture_output=True, text=True, check=False)
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


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://localhost:8080/execution/", id="localhost"),
        pytest.param("http://LOCALHOST:8080/execution/", id="upper-case"),
        pytest.param("http://localhost./execution/", id="trailing-dot"),
        pytest.param("http://api.localhost/execution/", id="localhost-subdomain"),
        pytest.param("http://user@localhost:8080/execution/", id="user-info"),
        pytest.param("http://user:secret@127.0.0.1/execution/", id="user-password"),
        pytest.param("http://127.0.0.1:8080/execution/", id="ipv4-loopback"),
        pytest.param("http://127.1.2.3/execution/", id="ipv4-loopback-range"),
        pytest.param("http://0.0.0.0:8080/execution/", id="unspecified-ipv4"),
        pytest.param("http://[::1]:8080/execution/", id="ipv6-loopback-port"),
        pytest.param("http://[::1]/execution/", id="ipv6-loopback"),
        pytest.param("http://[::]:8080/execution/", id="unspecified-ipv6"),
        pytest.param("http://[::ffff:127.0.0.1]:8080/execution/", id="ipv4-mapped"),
        pytest.param("http://127.0.0.1?x=1", id="query-without-path"),
    ],
)
def test_loopback_urls_are_refused(image_root: dict[str, str], url: str) -> None:
    done = entrypoint({**image_root, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": url}, *COMMAND)
    assert done.returncode == 64, done.stdout
    assert "points at the task itself" in done.stderr


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://airflow.internal/execution/", id="name"),
        pytest.param("http://10.0.0.12:8080/execution/", id="private-ipv4"),
        pytest.param("http://[fd00::12]:8080/execution/", id="private-ipv6"),
        pytest.param("https://user@airflow.internal/execution/", id="user-info"),
        pytest.param("https://localhost.example.com/execution/", id="localhost-prefix"),
        pytest.param("https://airflow.internal/execution/#@localhost", id="fragment-after-host"),
    ],
)
def test_non_loopback_urls_are_accepted(image_root: dict[str, str], url: str) -> None:
    done = entrypoint({**image_root, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": url}, *COMMAND)
    assert done.returncode == 0, done.stderr


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


def check_dags(folder: Path, from_bundle: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", ROOT / "docker" / "check-dags.sh", folder, from_bundle], capture_output=True, text=True, check=False
    )


def test_build_refuses_an_image_whose_every_task_would_exit_64(tmp_path: Path) -> None:
    default_dags = ROOT / "docker" / "dags"  # the Dockerfile's default DAGS_DIR: no DAG file
    done = check_dags(default_dags, "false")
    assert done.returncode == 1
    assert "DAGS_FROM_BUNDLE=true" in done.stderr
    assert "DAGS_DIR" in done.stderr
    assert check_dags(default_dags, "true").returncode == 0
    assert check_dags(default_dags, "maybe").returncode == 2
    (tmp_path / "etl.py").write_text("# a DAG file\n")
    assert check_dags(tmp_path, "false").returncode == 0


def dockerfile() -> str:
    return (ROOT / "docker" / "Dockerfile").read_text()


def test_dockerfile_checks_dags_at_build_and_skips_the_database_check() -> None:
    text = dockerfile()
    assert 'RUN /tmp/check-dags.sh /opt/airflow/dags "${DAGS_FROM_BUNDLE}"' in text
    assert "ARG DAGS_FROM_BUNDLE=false" in text
    # The official entry point runs `airflow db check` before every command unless this is 0.
    assert "CONNECTION_CHECK_MAX_COUNT=0" in text
    assert "--platform linux/amd64" in text  # the task definition pins X86_64


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: '**' spans directories, '*' and '?' stay within one, [...] is a class."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            close = pattern.index("]", i)
            out, i = out + pattern[i : close + 1], close + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _ignored(patterns: list[str], path: str) -> bool:
    """Docker's rule for a path: the last matching pattern wins; '!' re-includes; a match on a parent counts."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for line in patterns:
        negate = line.startswith("!")
        regex = _pattern(line.removeprefix("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            result = not negate
    return result


def test_build_context_leaves_out_venv_git_tests_and_caches() -> None:
    lines = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for path in (
        ".venv/lib/python3.11/site-packages/airflow/__init__.py",
        ".venv-airflow-3.1/bin/python",
        ".git/HEAD",
        "tests/docker/test_image.py",
        "airflow_ecs_executor/__pycache__/config.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/x",
        ".pytest_cache/v/x",
        "airflow_ecs_executor.egg-info/PKG-INFO",
        # What a task needs not, and the image must not hold: the emulator, the devstack (its demo
        # login), the benchmarks and the packaging of the emulator's distribution.
        "ecs_emulator/server.py",
        "devstack/stack.py",
        "benchmarks/compare.py",
        "distributions/emulator/pyproject.toml",
    ):
        assert _ignored(patterns, path), path
    # What the Dockerfile copies stays in the context.
    for path in (
        "pyproject.toml",
        "README.md",
        "airflow_ecs_executor/config.py",
        "docker/entrypoint.sh",
        "docker/check-dags.sh",
        "docker/check-base-image.sh",
        "docker/dags/README.md",
        "dags/etl.py",
    ):
        assert not _ignored(patterns, path), path


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    logical = re.sub(r"\\\n", " ", "\n".join(line for line in dockerfile().splitlines() if not line.startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical.splitlines() if line.strip()]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in _instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args))
    return stages


def test_the_image_gets_the_product_wheel_and_nothing_else_from_the_repository() -> None:
    """The task image holds the product alone: no emulator, devstack, tests or benchmarks."""
    allowed_sources = {
        "pyproject.toml",
        "README.md",
        "airflow_ecs_executor/",
        "docker/entrypoint.sh",
        "docker/check-dags.sh",
        "docker/check-base-image.sh",
        "${DAGS_DIR}/",
    }
    lines = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    copies = [args.split() for keyword, args in _instructions() if keyword == "COPY"]
    sources = [
        src for words in copies if not any(w.startswith("--from=") for w in words) for src in _copy_sources(words)
    ]
    assert sources and set(sources) <= allowed_sources, sources
    for src in sources:  # each is in the build context, or the build would fail
        if not src.startswith("${"):
            assert not _ignored(patterns, src.rstrip("/")), src
    # The final stage installs the wheel of the product, by its name, built from those sources.
    installs = [args for keyword, args in _stages()[-1] if keyword == "RUN" and "pip install" in args]
    assert installs == [
        'pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /tmp/dist/airflow_ecs_executor-*.whl'
    ]
    # The product's pyproject.toml builds the package airflow_ecs_executor alone (tests/test_distribution.py
    # builds it and looks inside).
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == [
        "airflow_ecs_executor",
        "airflow_ecs_executor.*",
    ]


def _copy_sources(words: list[str]) -> list[str]:
    """The source paths of one COPY instruction's words (flags dropped, the destination last)."""
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1]


def test_base_image_is_pinned_by_digest_or_the_build_refuses() -> None:
    stages = _stages()
    names = {args.split()[-1] for stage in stages for keyword, args in stage[:1] if " AS " in args.upper()}
    external = [stage[0][1].split()[0] for stage in stages if stage[0][1].split()[0] not in names]
    # Every image from a registry is named by tag and, when the digest is given, by digest.
    assert external == [
        "apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}${AIRFLOW_IMAGE_DIGEST:+@}${AIRFLOW_IMAGE_DIGEST}"
    ]
    text = dockerfile()
    assert 'ARG AIRFLOW_IMAGE_DIGEST=""' in text
    assert "ARG ALLOW_UNPINNED_BASE_IMAGE=false" in text
    # The check runs in the stage the final stage copies the wheel from, so BuildKit cannot skip it.
    build = next(stage for stage in stages if stage[0][1].endswith(" AS build"))
    check = '/tmp/check-base-image.sh "${AIRFLOW_IMAGE_DIGEST}" "${ALLOW_UNPINNED_BASE_IMAGE}" "${AIRFLOW_VERSION}"'
    assert ("RUN", check) in build
    assert ("COPY", "--from=build /tmp/dist/ /tmp/dist/") in stages[-1]


DIGEST = "sha256:" + "0123456789abcdef" * 4


def check_base_image(*args: str) -> subprocess.CompletedProcess[str]:
    """docker/check-base-image.sh with this venv's Python standing in for the base image's."""
    env = {"PATH": os.environ["PATH"], "CHECK_BASE_IMAGE_PYTHON": sys.executable}
    script = ROOT / "docker" / "check-base-image.sh"
    return subprocess.run(["bash", script, *args], env=env, capture_output=True, text=True, check=False)


def test_build_refuses_an_unpinned_or_mismatched_base_image() -> None:
    from importlib.metadata import version

    airflow = version("apache-airflow")  # what this venv's "base image" holds
    unpinned = check_base_image("", "false", airflow)
    assert unpinned.returncode == 1
    assert "AIRFLOW_IMAGE_DIGEST=sha256:" in unpinned.stderr and "ALLOW_UNPINNED_BASE_IMAGE=true" in unpinned.stderr
    allowed = check_base_image("", "true", airflow)
    assert allowed.returncode == 0
    assert "unpinned" in allowed.stderr  # said aloud in the build log
    assert check_base_image("", "maybe", airflow).returncode == 2
    for bad in ("3.3.2", "sha256:abc", DIGEST.upper(), "@" + DIGEST, DIGEST + "0"):
        done = check_base_image(bad, "false", airflow)
        assert done.returncode == 1, bad
        assert "is not a digest" in done.stderr
    assert check_base_image(DIGEST, "false", airflow).returncode == 0
    # A digest of another Airflow's image: Docker would pull it and ignore the tag.
    other = check_base_image(DIGEST, "false", "3.0.0")
    assert other.returncode == 1
    assert f"holds Airflow {airflow}, not AIRFLOW_VERSION=3.0.0" in other.stderr


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
    subprocess.run(
        [
            *("docker", "build", "--platform", "linux/amd64", "-f", "docker/Dockerfile"),
            *("--build-arg", "DAGS_FROM_BUNDLE=true", "--build-arg", "ALLOW_UNPINNED_BASE_IMAGE=true", "-t", tag, "."),
        ],
        cwd=ROOT,
        check=True,
        timeout=1500,
    )
    with Emulator("fast", runner="docker") as emulator:
        ecs = boto3.client("ecs", **emulator.client_kwargs())
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
