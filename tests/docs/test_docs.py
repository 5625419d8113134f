"""The Markdown is tested: marked shell and Python blocks run, and every link to a file resolves.

A block runs when the line before its fence is a marker (see README.md, "Development"):

- ``<!-- doctest: emulator -->``: run alone in an empty directory, with the venv's ``bin`` first on
  PATH and a fresh emulator's environment set, as after ``eval "$(python -m ecs_emulator env)"``
  (``AWS_ENDPOINT_URL``, credentials, Region, control token).
- ``<!-- doctest: by-hand -->``: the README's "Try it by hand" path. All such blocks run in order as
  one bash script, exactly as written except the ports (4566 and 8080 become free ones), in a
  directory holding the repository's ``.venv`` and ``devstack``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Markdown files, shell and a by-hand path on the newest Airflow: nothing here differs with Airflow's version.
pytestmark = pytest.mark.newest_only

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKDOWN = sorted(
    p for p in REPO.rglob("*.md") if not any(part.startswith(".") or part == "node_modules" for part in p.parts)
)
BLOCK = re.compile(r"^<!-- doctest: (?P<kind>[a-z-]+) -->\n```(?P<lang>bash|python)\n(?P<code>.*?)^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
OUTSIDE = ("DESIGN.md", "AWS_FACTS.md", "HOUSE_STYLE.md")


@dataclass(frozen=True)
class Block:
    """One marked code block."""

    path: Path
    line: int
    kind: str
    lang: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(kind: str) -> list[Block]:
    out = []
    for path in DOCS:
        text = path.read_text()
        for m in BLOCK.finditer(text):
            if m["kind"] not in ("emulator", "by-hand"):
                raise AssertionError(f"{path}: unknown doctest marker {m['kind']!r}")
            if m["kind"] == kind:
                out.append(Block(path, text.count("\n", 0, m.start()) + 2, kind, m["lang"], m["code"]))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "ECS_EMULATOR_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_links_to_files_resolve_inside_the_repository(path: Path) -> None:
    text = path.read_text()
    broken = []
    for m in LINK.finditer(text):
        target = m["target"].split("#", 1)[0]
        if not target or re.match(r"^[a-z]+:", target):
            continue  # an anchor, or a web address
        resolved = (path.parent / target).resolve()
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            broken.append(m["target"])
    assert broken == [], f"{path.relative_to(REPO)} links to files that are not in the repository: {broken}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_name_no_file_outside_the_repository(path: Path) -> None:
    text = path.read_text()
    assert [name for name in OUTSIDE if name in text] == []


def test_there_are_runnable_blocks() -> None:
    assert len(blocks("emulator")) >= 2
    assert blocks("by-hand")


@pytest.mark.parametrize("block", blocks("emulator"), ids=lambda b: b.id)
def test_emulator_block_runs(block: Block, ecs_emulator_server: Any, tmp_path: Path) -> None:
    env = base_env()
    env.update(ecs_emulator_server.env())
    argv = (
        ["bash", "-euo", "pipefail", "-c", block.code] if block.lang == "bash" else [sys.executable, "-c", block.code]
    )
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (
        f"{block.id} failed:\n{block.code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )


@pytest.mark.timeout(1000)  # a real Airflow started from nothing, beside the other end-to-end tests
def test_try_it_by_hand(tmp_path: Path) -> None:
    emulator_port, api_port = free_port(), free_port()
    script = "\n".join(b.code for b in blocks("by-hand"))
    script = script.replace("4566", str(emulator_port)).replace("8080", str(api_port))
    for name in (".venv", "devstack"):
        (tmp_path / name).symlink_to(Path(sys.prefix) if name == ".venv" else REPO / name)
    env = base_env()
    env["AIRFLOW__API__BASE_URL"] = f"http://127.0.0.1:{api_port}"  # where tasks reach the API server
    env["HOME"] = str(tmp_path)  # the emulator's env file goes to ~/.cache
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        ecs = _ecs_view(tmp_path, emulator_port)
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the by-hand path did not finish in 15 minutes:\n{out[-4000:]}\n{_logs(tmp_path)}\n{ecs}")
    ok = proc.returncode == 0 and re.search(r"smoke\s*\|.*\|\s*success", out) is not None
    ecs = "" if ok else _ecs_view(tmp_path, emulator_port)  # while the emulator still runs
    _stop_group(proc.pid)
    assert proc.returncode == 0, f"{out[-4000:]}\n{_logs(tmp_path)}\n{ecs}"
    assert "all checks passed" in out
    assert ok, f"{out[-2000:]}\n{_logs(tmp_path)}\n{ecs}"


def _stop_group(pgid: int) -> None:
    """The background servers the script started (emulator, API server, scheduler, DAG processor)."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(60):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        subprocess.run(["sleep", "0.5"], check=False)
    with contextlib.suppress(ProcessLookupError):  # the last of them may end just now
        os.killpg(pgid, signal.SIGKILL)


def _logs(home: Path) -> str:
    """The servers' logs and every task log, the end of each."""
    root = home / ".by-hand"
    paths = sorted(root.glob("*.log")) + sorted((root / "logs").rglob("*.log"))
    return "\n".join(f"--- {p.relative_to(root)}\n{p.read_text(errors='replace')[-3000:]}" for p in paths)


def _ecs_view(home: Path, port: int) -> str:
    """What the emulator knows of the ECS tasks: how each ended and the end of its container output."""
    import boto3

    env_file = home / ".cache" / "ecs-emulator" / f"127.0.0.1-{port}.env"
    try:
        values = dict(re.findall(r"^(?:export )?([A-Z_]+)=['\"]?([^'\"\n]*)", env_file.read_text(), re.M))
        kwargs = {
            "endpoint_url": f"http://127.0.0.1:{port}",
            "region_name": values.get("AWS_DEFAULT_REGION", "us-east-1"),
            "aws_access_key_id": values["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": values["AWS_SECRET_ACCESS_KEY"],
        }
        ecs, logs = boto3.client("ecs", **kwargs), boto3.client("logs", **kwargs)
        lines = []
        arns = [
            a
            for status in ("RUNNING", "STOPPED")
            for a in ecs.list_tasks(cluster="airflow", desiredStatus=status)["taskArns"]
        ]
        for task in ecs.describe_tasks(cluster="airflow", tasks=arns)["tasks"] if arns else []:
            containers = [(c.get("exitCode"), c.get("reason")) for c in task.get("containers", [])]
            lines.append(
                f"task {task['taskArn']}: {task['lastStatus']} {task.get('stopCode')} {task.get('stoppedReason')} {containers}"
            )
        for group in logs.describe_log_groups()["logGroups"]:
            for stream in logs.describe_log_streams(logGroupName=group["logGroupName"])["logStreams"]:
                events = logs.get_log_events(logGroupName=group["logGroupName"], logStreamName=stream["logStreamName"])
                lines.append(f"--- {group['logGroupName']} {stream['logStreamName']}")
                lines.extend(e["message"][:500] for e in events["events"][-60:])
        return "\n".join(["--- the emulator's tasks", *lines])
    except Exception as exc:  # diagnostics only: never hide the test's own failure
        return f"--- the emulator's tasks could not be read: {exc!r}"
