"""Profiles, token buckets, the control API over HTTP and the command line."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from ecs_emulator import Emulator, load_profile
from ecs_emulator.emulator import ControlClient
from ecs_emulator.errors import EmulatorConfigError
from ecs_emulator.profile import BUILTIN_PROFILES, Spread
from ecs_emulator.runners import DockerRunner, docker_engine_problem
from ecs_emulator.throttle import TokenBucket
from tests.helpers import aws_client, python_container, wait_stopped


@pytest.mark.parametrize("name", BUILTIN_PROFILES)
def test_builtin_profiles_load(name: str) -> None:
    assert load_profile(name).name == name


def test_aws_profile_has_the_documented_quotas() -> None:
    aws = load_profile("aws")
    assert aws.throttling["run_task"].capacity == 20 and aws.throttling["run_task"].rate == 20
    assert aws.fargate_launch is not None and (aws.fargate_launch.capacity, aws.fargate_launch.rate) == (
        100,
        20,
    )


def test_profile_typo_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nrunnr = "process"\n[lifecycle]\nprovisioning = { median = -1 }\n')
    with pytest.raises(EmulatorConfigError) as exc:
        load_profile(str(bad))
    assert "runnr" in str(exc.value) and "lifecycle.provisioning.median" in str(exc.value)


def test_unknown_profile_name() -> None:
    with pytest.raises(EmulatorConfigError, match="unknown profile"):
        load_profile("nope")


def test_spread_median_and_tail() -> None:
    rng = random.Random(1)
    spread = Spread(median=1.0, p99=4.0)
    samples = sorted(spread.sample(rng) for _ in range(20_000))
    assert 0.9 < samples[10_000] < 1.1
    assert 3.2 < samples[19_800] < 4.8


def test_token_bucket_with_manual_clock() -> None:
    now = [0.0]
    bucket = TokenBucket(capacity=2, rate=1, clock=lambda: now[0])
    assert bucket.try_take() and bucket.try_take()
    assert not bucket.try_take()
    now[0] = 1.0
    assert bucket.try_take()
    assert not bucket.try_take()
    now[0] = 100.0
    assert bucket.try_take(2) and not bucket.try_take()


def test_control_api_over_http() -> None:
    with Emulator("fast", runner="simulated") as em:
        control = ControlClient(em.endpoint_url, token=em.control_token)
        control.wait_ready()
        assert control.health()["runner"] == "simulated"
        ecs = aws_client("ecs", em)
        ecs.create_cluster(clusterName="c")
        assert len(control.register_container_instances("c")) == 1
        ecs.register_task_definition(family="f", containerDefinitions=[python_container()])
        control.inject("fail_to_start", reason="CannotPullContainerError")
        arn = ecs.run_task(cluster="c", taskDefinition="f")["tasks"][0]["taskArn"]
        assert wait_stopped(ecs, "c", arn)["stopCode"] == "TaskFailedToStart"
        assert control.counters()["faults"] == {"fail_to_start": 1}
        assert [t["taskArn"] for t in control.tasks()] == [arn]
        control.set_capacity(0)
        assert ecs.run_task(cluster="c", taskDefinition="f")["failures"]
        with pytest.raises(RuntimeError, match="unknown fault kind"):
            control.inject("meteor_strike")
        control.reset_counters()
        assert control.counters()["api"] == {}


def test_cli_bad_profile_exits_2_with_message() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ecs_emulator", "--profile", "nope", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "unknown profile 'nope'" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.skipif(docker_engine_problem() is None, reason="a Docker engine answers here")
def test_docker_runner_without_engine_is_a_clear_error() -> None:
    with pytest.raises(EmulatorConfigError, match="the docker runner cannot start"):
        DockerRunner()


@pytest.mark.skipif(docker_engine_problem() is not None, reason=f"no Docker engine: {docker_engine_problem()}")
def test_docker_runner_runs_an_image() -> None:  # pragma: no cover - needs a Docker engine
    with Emulator("fast", runner="docker") as em:
        ecs = aws_client("ecs", em)
        ecs.create_cluster(clusterName="c")
        em.register_container_instances("c")
        ecs.register_task_definition(
            family="f",
            containerDefinitions=[{"name": "m", "image": "busybox", "memory": 64, "command": ["sh", "-c", "exit 4"]}],
        )
        arn = ecs.run_task(cluster="c", taskDefinition="f")["tasks"][0]["taskArn"]
        assert wait_stopped(ecs, "c", arn, timeout=120)["containers"][0]["exitCode"] == 4
