from __future__ import annotations

from typing import Any

import pytest

from airflow_ecs_executor.config import ConfigError, ExecutorConfig, parse_config

BASE = {
    "cluster": "c",
    "task_definition": "td",
    "container_name": "base",
    "workload_kms_key": "alias/airflow-workloads",
}


def test_minimal_section_has_sensible_defaults() -> None:
    cfg = parse_config(BASE)
    assert cfg.conn_id == "aws_default"
    assert cfg.launch_rate == 20.0
    assert cfg.check_health_on_startup is True
    assert cfg.assign_public_ip is False
    assert "cluster" not in cfg.executor_config_allowlist


@pytest.mark.parametrize(
    ("raw", "field", "expected"),
    [
        pytest.param({"assign_public_ip": "true"}, "assign_public_ip", True, id="bool-true"),
        pytest.param({"assign_public_ip": "False"}, "assign_public_ip", False, id="bool-False"),
        pytest.param({"check_health_on_startup": "off"}, "check_health_on_startup", False, id="bool-off"),
        pytest.param({"subnets": "subnet-a, subnet-b"}, "subnets", ["subnet-a", "subnet-b"], id="list-commas"),
        pytest.param({"subnets": '["subnet-a"]'}, "subnets", ["subnet-a"], id="list-json"),
        pytest.param({"launch_rate": "7.5"}, "launch_rate", 7.5, id="float"),
        pytest.param({"region_name": ""}, "region_name", None, id="empty-is-unset"),
        pytest.param(
            {"run_task_kwargs": '{"propagateTags": "TASK_DEFINITION"}'},
            "run_task_kwargs",
            {"propagateTags": "TASK_DEFINITION"},
            id="json-object",
        ),
    ],
)
def test_values_parse_as_a_person_expects(raw: dict[str, Any], field: str, expected: Any) -> None:
    assert getattr(parse_config({**BASE, **raw}), field) == expected


def test_strategy_and_queue_profiles() -> None:
    cfg = parse_config(
        {
            **BASE,
            "capacity_provider_strategy": '[{"capacityProvider": "FARGATE_SPOT", "weight": 3}]',
            "queue_profiles": '{"gpu": {"task_definition": "gpu-td", "memory": 4096}}',
        }
    )
    assert cfg.capacity_provider_strategy is not None
    assert cfg.capacity_provider_strategy[0].weight == 3
    assert cfg.queue_profiles["gpu"].task_definition == "gpu-td"


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(
            {
                "task_definition": "td",
                "clustr": "typo",
                "assign_public_ip": "maybe",
                "launch_rate": "-1",
                "run_task_kwargs": '{"bogus": 1}',
                "executor_config_allowlist": "cpu, superpowers",
            }
        )
    text = str(exc.value)
    for needle in (
        "cluster: required",
        "container_name: required",
        "clustr: not an option",
        "assign_public_ip",
        "launch_rate",
        "['bogus'] are not RunTask parameters",
        "superpowers",
    ):
        assert needle in text, needle
    assert len(exc.value.problems) == 7


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        pytest.param(
            {
                "launch_type": "FARGATE",
                "capacity_provider_strategy": '[{"capacityProvider": "FARGATE"}]',
                "subnets": "s",
            },
            "both set",
            id="launch-type-and-strategy",
        ),
        pytest.param({"launch_type": "FARGATE"}, "needs subnets", id="fargate-without-subnets"),
        pytest.param({"launch_type": "LAMBDA"}, "launch_type", id="bad-launch-type"),
        pytest.param({"queue_profiles": "{not json"}, "queue_profiles", id="bad-json"),
        pytest.param({"queue_profiles": '{"q": {"cluster": "other"}}'}, "queue_profiles.q.cluster", id="profile-key"),
        pytest.param({"run_task_kwargs": '{"clientToken": "x"}'}, "clientToken is set by the executor", id="token"),
    ],
)
def test_rejections_name_the_fix(raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({**BASE, **raw})
    assert needle in str(exc.value)


def test_every_option_is_documented() -> None:
    for name, field in ExecutorConfig.model_fields.items():
        assert field.description, f"{name} has no description"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param({"cluster": 1}, {"cluster": "1"}, id="int"),
        pytest.param({"task_definition": True}, {"task_definition": "true"}, id="bool"),
        pytest.param({"container_name": 1.5}, {"container_name": "1.5"}, id="float"),
        pytest.param({"subnets": 7}, {"subnets": ["7"]}, id="list-of-one-number"),
    ],
)
def test_string_options_take_back_airflows_conversions(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    cfg = parse_config({**BASE, **raw})
    for key, value in expected.items():
        assert getattr(cfg, key) == value


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("http://127.0.0.1:4566   # the local emulator instead of AWS", "comments included", id="comment"),
        pytest.param("http://127.0.0.1:4566 ; note", "comments included", id="semicolon"),
        pytest.param("http://127.0.0.1:port", "port is not a number", id="port"),
        pytest.param("ftp://127.0.0.1", "not an http(s) URL", id="scheme"),
    ],
)
def test_endpoint_url_is_checked_when_read(url: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({**BASE, "endpoint_url": url})
    assert "endpoint_url:" in str(exc.value)
    assert needle in str(exc.value)


def test_endpoint_url_valid_or_unset() -> None:
    assert parse_config({**BASE, "endpoint_url": " https://ecs.eu-west-1.amazonaws.com "}).endpoint_url == (
        "https://ecs.eu-west-1.amazonaws.com"
    )
    assert parse_config({**BASE, "endpoint_url": ""}).endpoint_url is None


def test_sealed_delivery_is_the_default_and_needs_a_key() -> None:
    assert parse_config(BASE).workload_delivery == "sealed"
    without_key = {k: v for k, v in BASE.items() if k != "workload_kms_key"}
    with pytest.raises(ConfigError) as err:
        parse_config(without_key)
    assert "workload_kms_key" in str(err.value) and "workload_delivery = plain" in str(err.value)
    assert parse_config({**without_key, "workload_delivery": "plain"}).workload_kms_key is None
    with pytest.raises(ConfigError, match="workload_delivery"):
        parse_config({**BASE, "workload_delivery": "clear"})
