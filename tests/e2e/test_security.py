"""The workload's JWT never reaches a log: after a full DAG run, every log is searched for it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devstack.stack import Stack
from tests.e2e.test_logs import log_with

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}")


def test_no_log_holds_a_workload_jwt(stack: Stack) -> None:
    run_id = stack.trigger("fanout")
    assert stack.wait_run("fanout", run_id) == "success"
    # The scheduler (with EcsExecutor at its default level), the API server, the DAG processor and
    # the emulator's own logs.
    logs = sorted(Path(stack.home, "logs").glob("*.log"))
    assert {p.name for p in logs} >= {"scheduler.log", "api-server.log", "dag-processor.log"}
    for path in logs:
        found = JWT.findall(path.read_text(errors="replace"))
        assert found == [], f"{path.name} holds a JWT"
    # What the UI shows of each task's log (from CloudWatch Logs).
    for task_id, map_index in [("items", -1), ("total", -1), *(("work", i) for i in range(6))]:
        log = log_with(stack, "fanout", run_id, task_id, 1, "Done. Returned value was", map_index=map_index)
        assert JWT.findall(json.dumps(log)) == [], f"the log view of {task_id}[{map_index}] holds a JWT"
