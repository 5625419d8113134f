from __future__ import annotations

import subprocess
import sys

from airflow_ecs_executor.config import ExecutorConfig
from airflow_ecs_executor.docs import TARGET, render
from airflow_ecs_executor.provider import get_provider_info


def test_configuration_reference_is_current() -> None:
    assert TARGET.read_text() == render(), "docs/configuration.md is stale: run python -m airflow_ecs_executor.docs"


def test_provider_registers_every_option() -> None:
    options = get_provider_info()["config"]["ecs_executor"]["options"]
    assert set(options) == set(ExecutorConfig.model_fields)
    assert options["conn_id"]["default"] == "aws_default"
    assert options["check_health_on_startup"]["default"] == "True"


def test_airflow_lists_the_section() -> None:
    argv = [sys.executable, "-m", "airflow", "config", "list", "--section", "ecs_executor"]
    help_text = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=120, check=False).stdout
    if "--show-values" in help_text:  # Airflow 3.2+ hides values unless asked; 3.1 always shows them
        argv.append("--show-values")
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "[ecs_executor]" in out.stdout
    assert "conn_id = aws_default" in out.stdout
    assert "launch_rate" in out.stdout
    assert "Please define the 'cli' section" not in out.stdout + out.stderr
