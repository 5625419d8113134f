"""``make demo``: the emulator and a real Airflow with EcsExecutor, running the demo DAG.

Prints a live summary while the DAG runs and a table of every task at the end; then leaves the UI
at http://127.0.0.1:8080 until Ctrl-C. With ``ONCE=1`` it exits after the table, with the DAG run's
outcome as exit code (0 when it succeeded).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from devstack.stack import PASSWORD, USER, Stack

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "ecs_demo"


def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None


def _ecs_tasks(stack: Stack, run_id: str) -> dict[tuple[str, int, int], dict[str, Any]]:
    """The run's ECS tasks by (task_id, map_index, try_number), read with DescribeTasks + tags."""
    ecs = stack.aws("ecs")
    arns = [t["taskArn"] for t in stack.emulator_tasks()]
    found: dict[tuple[str, int, int], dict[str, Any]] = {}
    for i in range(0, len(arns), 100):
        for task in ecs.describe_tasks(cluster="airflow", tasks=arns[i : i + 100], include=["TAGS"])["tasks"]:
            tags = {t["key"]: t["value"] for t in task.get("tags", [])}
            if tags.get("dag_id") == DAG_ID and tags.get("run_id") == run_id:
                found[(tags["task_id"], int(tags["map_index"]), int(tags["try_number"]))] = task
    return found


def _summary(tis: list[dict[str, Any]], ecs: dict[tuple[str, int, int], dict[str, Any]]) -> str:
    states = Counter(str(ti["state"] or "none") for ti in tis)
    statuses = Counter(t["lastStatus"] for t in ecs.values())
    running = [t["taskArn"].rsplit("/", 1)[-1][:8] for t in ecs.values() if t["lastStatus"] == "RUNNING"]
    parts = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
    ecs_part = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) or "none yet"
    return f"[{time.strftime('%H:%M:%S')}] tasks: {parts} | ECS tasks: {ecs_part}" + (
        f" | running: {' '.join(running)}" if running else ""
    )


def _table(tis: list[dict[str, Any]], ecs: dict[tuple[str, int, int], dict[str, Any]]) -> str:
    rows = [f"{'task':<26}{'try':>4}  {'state':<16}{'duration':>9}  {'ECS task':<34}{'ECS stop':<26}exit"]
    for ti in sorted(tis, key=lambda t: (t["task_id"], t["map_index"])):
        name = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
        start, end = _parse(ti.get("start_date")), _parse(ti.get("end_date"))
        duration = f"{(end - start).total_seconds():.1f}s" if start and end else "-"
        attempts = [t for (tid, mi, _), t in sorted(ecs.items()) if tid == ti["task_id"] and mi == ti["map_index"]]
        task = attempts[-1] if attempts else None
        arn = task["taskArn"].rsplit("/", 1)[-1] if task else "-"
        stop = (task.get("stopCode") or task["lastStatus"]) if task else "-"
        code = task["containers"][0].get("exitCode", "-") if task else "-"
        rows.append(f"{name:<26}{ti['try_number']:>4}  {ti['state']!s:<16}{duration:>9}  {arn:<34}{stop:<26}{code}")
        for earlier in attempts[:-1]:
            rows.append(
                f"{'':<26}{'':>4}  {'(earlier try)':<16}{'':>9}  {earlier['taskArn'].rsplit('/', 1)[-1]:<34}"
                f"{earlier.get('stopCode') or earlier['lastStatus']:<26}"
                f"{earlier['containers'][0].get('exitCode', '-')}"
            )
    return "\n".join(rows)


def main() -> int:
    """Run the demo; the exit code is the DAG run's outcome with ONCE=1."""
    once = os.environ.get("ONCE") == "1"
    home = REPO / ".demo" / "airflow"
    port = int(os.environ.get("DEMO_PORT", "8080"))
    stack = Stack(home, api_port=port)
    print(
        f"Starting the ECS emulator and Airflow 3 (API server, scheduler, DAG processor, triggerer) in {home} ...",
        flush=True,
    )
    try:
        stack.start()
        print(f"ECS emulator: {stack.endpoint_url}   Airflow: {stack.api_url}", flush=True)
        stack.wait_dags([DAG_ID])
        run_id = stack.trigger(DAG_ID)
        print(f"Triggered {DAG_ID} run {run_id}\n", flush=True)
        state = "running"
        deadline = time.monotonic() + 600
        last = ""
        while state not in ("success", "failed") and time.monotonic() < deadline:
            tis = stack.task_instances(DAG_ID, run_id)
            line = _summary(tis, _ecs_tasks(stack, run_id))
            if line.split("] ", 1)[1] != last:
                print(line, flush=True)
                last = line.split("] ", 1)[1]
            state = stack.run_state(DAG_ID, run_id)
            time.sleep(2)
        time.sleep(3)  # let the last containers stop so their exit codes show
        tis = stack.task_instances(DAG_ID, run_id)
        print(f"\nDAG run {run_id}: {state}\n")
        print(_table(tis, _ecs_tasks(stack, run_id)))
        print("\nThe first try of flaky_once fails on purpose; its retry succeeds (Airflow retries apply).")
        if once:
            return 0 if state == "success" else 1
        print(f"\nAirflow UI: {stack.api_url}  (login {USER} / {PASSWORD}). Ctrl-C stops everything.", flush=True)
        stop: list[int] = []
        signal.signal(signal.SIGINT, lambda s, _f: stop.append(s))
        signal.signal(signal.SIGTERM, lambda s, _f: stop.append(s))
        while not stop:
            time.sleep(0.5)
        return 0
    finally:
        print("Stopping Airflow and the emulator ...", flush=True)
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
