"""The emulator's pytest plugin (installed through the ``pytest11`` entry point).

- ``ecs_emulator_server`` yields a started ``Emulator`` (profile ``fast``) on 127.0.0.1 and a
  free port, and stops it (and every process it started) afterwards. It accepts only requests
  signed with its own per-start key: ``boto3.client("ecs", **ecs_emulator_server.client_kwargs())``.
- Every emulator started during the session checks its responses against botocore's output
  shapes: the plugin sets ``ECS_EMULATOR_VALIDATE_RESPONSES=1`` (unless it is already set, so
  ``ECS_EMULATOR_VALIDATE_RESPONSES=0`` turns checking off) and names a report file in
  ``ECS_EMULATOR_SHAPE_REPORT``. Emulators in the test process and in child processes (the
  devstack's ``python -m ecs_emulator``) inherit both. A test during which a response did not
  match fails with the problems; problems seen outside any test fail the session.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from ecs_emulator.emulator import Emulator
from ecs_emulator.shapes import REPORT_ENV, VALIDATE_ENV

_REPORT = pytest.StashKey[Path]()
_OFFSET = pytest.StashKey[int]()
_SEEN = pytest.StashKey[int]()  # problems already charged to a test


def pytest_configure(config: pytest.Config) -> None:
    """Turn response checking on for every emulator of the session, and name the report file."""
    os.environ.setdefault(VALIDATE_ENV, "1")
    # Each pytest-xdist worker has a report file of its own (a worker inherits the controller's
    # environment): problems are charged to the tests that saw them by offsets into one file.
    if REPORT_ENV not in os.environ or os.environ.get("PYTEST_XDIST_WORKER"):
        fd, name = tempfile.mkstemp(prefix="ecs-emulator-shapes-", suffix=".jsonl")
        os.close(fd)
        os.environ[REPORT_ENV] = name
        config.stash[_REPORT] = Path(name)
    config.stash[_SEEN] = 0


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the report file this session created."""
    report = config.stash.get(_REPORT, None)
    if report is not None:
        report.unlink(missing_ok=True)
        os.environ.pop(REPORT_ENV, None)


def _report_path() -> Path | None:
    name = os.environ.get(REPORT_ENV)
    return Path(name) if name else None


def _size() -> int:
    path = _report_path()
    try:
        return path.stat().st_size if path else 0
    except FileNotFoundError:
        return 0


def _problems_since(offset: int) -> list[str]:
    path = _report_path()
    if path is None or not path.exists():
        return []
    with path.open("rb") as report:
        report.seek(offset)
        lines = report.read().decode("utf-8", "replace").splitlines()
    out: list[str] = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line another process is still writing
        out += [f"{entry['api']}: {p}" for p in entry["problems"]]
    return out


def _fail_on_new_problems(item: pytest.Item, phase: str) -> None:
    offset = item.stash.get(_OFFSET, 0)
    problems = _problems_since(offset)
    item.stash[_OFFSET] = _size()
    if problems:
        item.config.stash[_SEEN] = item.config.stash.get(_SEEN, 0) + len(problems)
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        pytest.fail(f"emulator responses did not match botocore's output shapes ({phase}):\n  {shown}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """Remember where the report file ends before the test's fixtures start."""
    item.stash[_OFFSET] = _size()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fail the test when a response seen during its setup or its body did not match its shape."""
    result = yield
    _fail_on_new_problems(item, "setup and test")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    """Report, as a teardown error, a response seen during teardown that did not match its shape."""
    result = yield
    _fail_on_new_problems(item, "teardown")
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session when some response outside any test did not match its shape."""
    total = len(_problems_since(0))
    stray = total - session.config.stash.get(_SEEN, 0)
    if stray > 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"ecs_emulator: {stray} emulator response(s) outside any test did not match botocore's shapes"
        if reporter is not None:
            reporter.write_line(message, red=True)
            for line in _problems_since(0)[-stray:][:20]:
                reporter.write_line(f"  {line}", red=True)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def ecs_emulator_server() -> Iterator[Emulator]:
    """A started emulator on 127.0.0.1 and a free port, its responses checked; stopped after the test.

    Clients need its credentials: ``boto3.client("ecs", **ecs_emulator_server.client_kwargs())``.
    """
    with Emulator("fast", validate_responses=True) as em:
        yield em
