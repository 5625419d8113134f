"""The emulator demo (what `make demo` runs until the executor lands) ends as designed."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_and_reports_every_task() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ecs_emulator.demo"], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "progress 100%" in out.stdout
    assert "All tasks ended as designed." in out.stdout
