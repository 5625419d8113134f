"""A small chaos run (make chaos runs a long one): faults, a scheduler kill, then the invariants."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.chaos import run

# On the oldest Airflow, test_airflow.py's scheduler kill and the queueing tests cover what differs
# between versions; the chaos invariants exercise our own logic: newest Airflow only (make test's budget).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200), pytest.mark.newest_only]


def test_small_chaos_run_keeps_every_invariant(tmp_path: Path) -> None:
    report = run(tmp_path / "chaos", tasks=10)
    print(report.table())
    assert report.task_instances == 10
    assert report.lost == []
    assert report.duplicated == []
    assert report.wrong_state == []
    assert report.try_without_container == []
    assert report.faults["scheduler SIGKILL"] == 1
    assert sum(report.faults.values()) > 1  # the profile's faults did happen
    assert report.faults["spot_interruption"] >= 1
