"""The two distributions this repository builds, installed as a user would install them.

The product (``airflow-ecs-executor``, pyproject.toml) must install without the emulator and the
repository's tools: its wheel goes into a clean venv with its locked dependencies, and there nothing
but ``airflow_ecs_executor`` is ours, no pytest plugin is registered, and ``airflow providers list``
shows the provider. The emulator (``airflow-ecs-executor-emulator``, distributions/emulator) then
installs beside it and runs. Both wheels are built from a clean copy of the sources (setuptools reuses
an in-tree build/ directory, which could carry files deleted since), with this venv's setuptools and
without build isolation, and installed offline from uv's cache, which ``make install`` filled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).parent / "uv"
SOURCES = ("pyproject.toml", "README.md", "airflow_ecs_executor", "ecs_emulator", "distributions")
REPOSITORY_TOOLS = ("ecs_emulator", "devstack", "benchmarks", "tests")


def locked_setuptools() -> set[str]:
    return {
        m[1]
        for lock in (ROOT / "requirements").glob("lock-airflow-*.txt")
        for m in re.finditer(r"^setuptools==(\S+)$", lock.read_text(), re.M)
    }


def test_build_backend_is_pinned_to_the_locked_setuptools() -> None:
    """Both pyprojects pin the build backend, to the version the lock files install (no-isolation builds)."""
    pins = set()
    for path in (ROOT / "pyproject.toml", ROOT / "distributions" / "emulator" / "pyproject.toml"):
        requires = tomllib.loads(path.read_text())["build-system"]["requires"]
        assert len(requires) == 1 and requires[0].startswith("setuptools=="), (path, requires)
        pins.add(requires[0].removeprefix("setuptools=="))
    assert pins == locked_setuptools()


def test_the_emulator_distribution_declares_the_moto_services_it_serves() -> None:
    """moto_bridge.py runs moto's WSGI server (flask: the server extra) for S3, STS, KMS, SQS, EventBridge, EC2 and IAM."""
    project = tomllib.loads((ROOT / "distributions" / "emulator" / "pyproject.toml").read_text())["project"]
    moto = next(d for d in project["dependencies"] if d.startswith("moto["))
    extras = set(moto.split("[", 1)[1].split("]", 1)[0].split(","))
    assert {"server", "s3", "sts", "kms", "sqs", "events", "ec2", "iam"} <= extras
    assert project["scripts"] == {"ecs-emulator": "ecs_emulator.cli:main"}
    assert project["entry-points"]["pytest11"] == {"ecs_emulator": "ecs_emulator.pytest_plugin"}
    product = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "optional-dependencies" not in product  # no "emulator" extra: the emulator is its own distribution
    assert "scripts" not in product
    assert set(product["entry-points"]) == {"apache_airflow_provider"}


def _lock_for_this_airflow() -> Path:
    pin = f"apache-airflow=={version('apache-airflow')}"
    locks = [p for p in sorted((ROOT / "requirements").glob("lock-airflow-*.txt")) if pin in p.read_text().split()]
    assert len(locks) == 1, (pin, locks)
    return locks[0]


def _run(argv: list[str | Path], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{argv}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done.stdout


def _install(venv: Path, *args: str | Path) -> None:
    """uv pip install into ``venv``, offline from uv's cache; online only when the cache misses a file."""
    argv: list[str | Path] = [UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python", *args]
    done = subprocess.run([*argv, "--offline"], capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        _run(argv)


def _members(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name.split("/", 1)[0] for name in archive.namelist()}


# What the clean venv reports about itself, as JSON: the repository's top-level packages it can import,
# the pytest plugins our distributions register (anyio, a dependency of Airflow, registers one of its
# own), and every entry point of our distributions.
PROBE = """
import importlib.metadata as md, importlib.util, json, sys
ours = ("airflow-ecs-executor", "airflow-ecs-executor-emulator")
print(json.dumps({
    "importable": [m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None],
    "pytest11": sorted(f"{ep.dist.name}:{ep.name}" for ep in md.entry_points(group="pytest11") if ep.dist.name in ours),
    "entry_points": sorted(
        f"{d.metadata['Name']}:{ep.group}:{ep.name}" for d in md.distributions() if d.metadata["Name"] in ours
        for ep in d.entry_points
    ),
}))
"""


@pytest.mark.newest_only  # packaging does not change with Airflow; once is enough
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_wheels_install_into_a_clean_venv(tmp_path: Path) -> None:
    src, dist, venv = tmp_path / "src", tmp_path / "dist", tmp_path / "venv"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.py[co]", "*.egg-info", "build")
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    build = [UV, "build", "--wheel", "--no-build-isolation", "--offline", "--python", sys.executable, "-o", dist]
    _run([*build, src])
    _run([*build, src / "distributions" / "emulator"])
    product = dist / "airflow_ecs_executor-0.1.0-py3-none-any.whl"
    emulator = dist / "airflow_ecs_executor_emulator-0.1.0-py3-none-any.whl"
    assert _members(product) == {"airflow_ecs_executor", "airflow_ecs_executor-0.1.0.dist-info"}
    assert _members(emulator) == {"ecs_emulator", "airflow_ecs_executor_emulator-0.1.0.dist-info"}
    with zipfile.ZipFile(emulator) as archive:  # the profiles are data, not modules: shipped all the same
        assert "ecs_emulator/profiles/fast.toml" in archive.namelist()

    # The product alone, with its locked dependencies, in a venv that knows nothing of this repository.
    _run([UV, "venv", "--quiet", "--python", sys.executable, venv])
    _install(venv, "-c", _lock_for_this_airflow(), product)
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(home),  # a throwaway Airflow: airflow.cfg and logs go there
        "LANG": "C.UTF-8",
    }
    python = venv / "bin" / "python"
    probe = json.loads(_run([python, "-I", "-c", PROBE, *REPOSITORY_TOOLS], env=env, cwd=tmp_path))
    assert probe == {
        "importable": [],
        "pytest11": [],
        "entry_points": ["airflow-ecs-executor:apache_airflow_provider:provider_info"],
    }
    providers = json.loads(_run([venv / "bin" / "airflow", "providers", "list", "-o", "json"], env=env, cwd=tmp_path))
    assert {"package_name": "airflow-ecs-executor", "version": "0.1.0"}.items() <= next(
        p for p in providers if p["package_name"] == "airflow-ecs-executor"
    ).items()

    # Then the emulator beside it: its command runs, its pytest plugin is registered.
    _install(venv, "-c", _lock_for_this_airflow(), emulator)
    assert "--profile" in _run([python, "-m", "ecs_emulator", "--help"], env=env, cwd=tmp_path)
    assert "--profile" in _run([venv / "bin" / "ecs-emulator", "--help"], env=env, cwd=tmp_path)
    probe = json.loads(_run([python, "-I", "-c", PROBE, *REPOSITORY_TOOLS], env=env, cwd=tmp_path))
    assert probe["importable"] == ["ecs_emulator"]
    assert probe["pytest11"] == ["airflow-ecs-executor-emulator:ecs_emulator"]
