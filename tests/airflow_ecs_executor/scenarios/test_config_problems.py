"""Configuration problems a new user meets first: each is listed with its fix, never a traceback.

No Region anywhere, an ``endpoint_url`` with a trailing comment or otherwise not a URL, an endpoint
where nothing answers, and ECS names Airflow's ``conf.getsection`` turns into numbers or booleans.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from airflow_ecs_executor.check import Checker, render
from airflow_ecs_executor.config import ConfigError
from airflow_ecs_executor.connection import make_client, read_section
from tests.airflow_ecs_executor.scenarios.test_check import API_URL, section


def no_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__ECS_EXECUTOR__REGION_NAME")
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")  # no Region from a profile either
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # nor from an instance metadata service


def test_no_region_is_listed_with_its_fix_in_check(
    ecs_setup: Any, executor_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_region(monkeypatch)
    items = Checker(make_client, API_URL).run(section(dict(os.environ)))
    (failure,) = [i for i in items if i.status == "fail"]
    assert failure.what == "AWS Region", render(items)
    assert "region_name" in failure.fix and "AWS_DEFAULT_REGION" in failure.fix


@pytest.mark.parametrize("health_check", ["true", "false"])
def test_no_region_refuses_start_with_its_fix(
    ecs_setup: Any, executor_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, health_check: str
) -> None:
    from airflow_ecs_executor import EcsExecutor

    no_region(monkeypatch)
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__CHECK_HEALTH_ON_STARTUP", health_check)
    with pytest.raises(ConfigError) as exc:
        EcsExecutor().start()
    assert "AWS Region" in str(exc.value)
    assert "set region_name in [ecs_executor]" in str(exc.value)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("http://127.0.0.1:4566   # the local emulator", "comments included", id="trailing-comment"),
        pytest.param("http://127.0.0.1:45x66", "port is not a number", id="port"),
        pytest.param("127.0.0.1:4566", "not an http(s) URL", id="no-scheme"),
    ],
)
def test_endpoint_url_that_is_not_a_url(
    ecs_setup: Any, executor_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, url: str, needle: str
) -> None:
    from airflow_ecs_executor import EcsExecutor

    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__ENDPOINT_URL", url)
    with pytest.raises(ConfigError) as exc:
        EcsExecutor().start()
    assert "endpoint_url:" in str(exc.value)
    assert needle in str(exc.value)


def test_connection_endpoint_that_is_not_a_url(
    ecs_setup: Any, executor_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW__ECS_EXECUTOR__ENDPOINT_URL")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        '{"conn_type": "aws", "login": "l", "password": "p", "extra": {"endpoint_url": "http://127.0.0.1:45x"}}',
    )
    items = Checker(make_client, API_URL).run(section(executor_env, endpoint_url=""))
    (failure,) = [i for i in items if i.status == "fail"]
    assert failure.what == "endpoint", render(items)
    assert "extra of the Airflow connection" in failure.fix


def test_unreachable_endpoint_names_it(ecs_setup: Any, executor_env: dict[str, str]) -> None:
    items = Checker(make_client, API_URL).run(section(executor_env, endpoint_url="http://127.0.0.1:9"))
    (failure,) = [i for i in items if i.status == "fail"]
    assert failure.what == "endpoint"
    assert "nothing answers at http://127.0.0.1:9" in failure.detail
    assert "start the emulator" in failure.fix


def test_names_that_look_like_numbers_or_booleans(monkeypatch: pytest.MonkeyPatch) -> None:
    # conf.getsection turns "1" into 1 and "t" into True; ECS names may be exactly that.
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__CLUSTER", "1")
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__TASK_DEFINITION", "t")
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__CONTAINER_NAME", "007")
    raw = read_section()
    assert (raw["cluster"], raw["task_definition"], raw["container_name"]) == ("1", "t", "007")


@pytest.mark.newest_only
def test_a_refused_start_ends_on_the_list_not_a_traceback() -> None:
    # What Python prints when the ConfigError raised by start() ends the scheduler process.
    program = textwrap.dedent(
        """
        from airflow_ecs_executor.check import refuse_quietly
        from airflow_ecs_executor.config import ConfigError
        exc = ConfigError(["region: not set; fix: set region_name"])
        refuse_quietly(exc)
        raise exc
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "airflow-ecs-executor: [ecs_executor] has 1 problem(s)" in done.stderr
    assert "fix: set region_name" in done.stderr
