"""The benchmark's smallest scenario runs both executors to the end and reports; no timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.compare import RATIO_KEYS, burst, markdown, run

# The benchmark measures our executor against upstream's; once, on the newest Airflow, is enough.
pytestmark = [pytest.mark.timeout(600), pytest.mark.newest_only]


def test_smallest_burst_completes_and_reports(tmp_path: Path) -> None:
    report = run([burst(5)], out=tmp_path, png=False)
    rows = {row["executor"]: row for row in report["rows"]}
    assert set(rows) == {"ours", "upstream"}
    for row in rows.values():
        assert row["n"] == 5
        assert row["launched"] == 5
        assert row["succeeded"] + row["failed"] + row["lost"] == 5
        assert row["duplicated"] == 0
        assert row["heartbeats"] > 0
        assert row["api_calls_per_workload"]["RunTask"] >= 1
    assert set(report["ratios"]["burst-5"]) == set(RATIO_KEYS)
    assert report["meta"]["profile"] == "aws"
    assert report["meta"]["upstream"].startswith("apache-airflow-providers-amazon ")
    table = (tmp_path / "compare.md").read_text()
    assert table == markdown(report)
    assert "| burst-5 | ours |" in table
    assert "| burst-5 | upstream |" in table
    assert (tmp_path / "compare.json").exists()
