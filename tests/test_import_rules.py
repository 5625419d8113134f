"""Import rules that import-linter cannot express (it cannot forbid a subpackage of an external package)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM_EXECUTORS = "airflow.providers.amazon.aws.executors"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("package", ["airflow_ecs_executor", "ecs_emulator"])
def test_nothing_but_the_benchmark_imports_upstreams_executor(package: str) -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / package).rglob("*.py"))
        if any(
            name == UPSTREAM_EXECUTORS or name.startswith(UPSTREAM_EXECUTORS + ".") for name in imported_modules(path)
        )
    ]
    assert offenders == []


def test_the_rule_sees_an_offending_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("from airflow.providers.amazon.aws.executors.ecs import ecs_executor\n")
    assert "airflow.providers.amazon.aws.executors.ecs" in imported_modules(sample)


def test_airflow_independent_tests_import_no_airflow() -> None:
    """The tests that make test runs on the newest Airflow only (tests/conftest.py) import no Airflow."""
    from tests.conftest import airflow_independent

    offenders = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        nodeid = str(path.relative_to(ROOT))
        if airflow_independent(nodeid):
            names = imported_modules(path)
            offenders += [f"{nodeid}: {n}" for n in sorted(names) if n == "airflow" or n.startswith("airflow.")]
    assert offenders == []
