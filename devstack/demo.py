"""``make demo``: the emulator and a real Airflow with EcsExecutor, running the demo DAG.

Prints a live summary while the DAG runs and a table of every task at the end; then leaves the UI
at http://127.0.0.1:8080 until Ctrl-C. With ``ONCE=1`` it exits after the table, with the DAG run's
outcome as exit code (0 when it succeeded).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from devstack.byhand import as_ini, section
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
    # A task instance with no state yet has not been scheduled: "waiting", not "none".
    states = Counter(str(ti["state"] or "waiting") for ti in tis)
    statuses = Counter(t["lastStatus"] for t in ecs.values())
    running = [t["taskArn"].rsplit("/", 1)[-1][:8] for t in ecs.values() if t["lastStatus"] == "RUNNING"]
    parts = ", ".join(f"{v} {k}" for k, v in sorted(states.items()))
    ecs_part = ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())) or "none yet"
    return f"[{time.strftime('%H:%M:%S')}] task instances: {parts} | ECS tasks: {ecs_part}" + (
        f" | running: {' '.join(running)}" if running else ""
    )


def _definition(task: Mapping[str, Any]) -> str:
    """family:revision of the task's definition."""
    return str(task["taskDefinitionArn"]).rsplit("/", 1)[-1]


def _resources(task: Mapping[str, Any]) -> str:
    """The CPU units and MiB the task got: executor_config's or the queue's overrides, else its definition's."""
    overrides = task.get("overrides") or {}
    container = (task.get("containers") or [{}])[0]
    container_cpu = container.get("cpu") if container.get("cpu") not in (None, "0") else None  # "0": unreserved
    cpu = overrides.get("cpu") or task.get("cpu") or container_cpu or "-"
    memory = overrides.get("memory") or task.get("memory") or container.get("memory") or "-"
    return f"{cpu}/{memory}"


def _stop(task: Mapping[str, Any]) -> str:
    """Why the task stopped, in words: ECS's stoppedReason and the container's exit code."""
    if task["lastStatus"] != "STOPPED":
        return str(task["lastStatus"]).lower()
    container = (task.get("containers") or [{}])[0]
    reason = task.get("stoppedReason") or task.get("stopCode") or "stopped"
    code = container.get("exitCode")
    return reason + (f" (exit code {code})" if code is not None else "")


def _tries(stack: Stack, run_id: str, ti: Mapping[str, Any]) -> dict[int, str]:
    """Each try's outcome (earlier tries from Airflow's history), by try number."""
    index = f"/{ti['map_index']}" if ti["map_index"] >= 0 else ""
    run = urllib.parse.quote(run_id, safe="")
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run}/taskInstances/{ti['task_id']}{index}/tries"
    try:
        tries = stack._request("GET", path)["task_instances"]
    except OSError:
        tries = []
    out = {int(t["try_number"]): str(t["state"]) for t in tries}
    out[int(ti["try_number"])] = str(ti["state"])
    return out


def _table(
    stack: Stack, run_id: str, tis: list[dict[str, Any]], ecs: dict[tuple[str, int, int], dict[str, Any]]
) -> str:
    """One row per try: its outcome in Airflow, its ECS task, task definition, resources and stop reason."""
    header = f"{'task':<20}{'try':>3}  {'outcome':<14}{'duration':>8}  {'ECS task':<34}{'task definition':<20}"
    rows = [header + f"{'cpu/MiB':<11}stopped because"]
    for ti in sorted(tis, key=lambda t: (t["task_id"], t["map_index"])):
        name = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
        outcomes = _tries(stack, run_id, ti) if int(ti["try_number"]) > 1 else {int(ti["try_number"]): str(ti["state"])}
        for number, outcome in sorted(outcomes.items()):
            task = ecs.get((ti["task_id"], ti["map_index"], number))
            duration = "-"
            if number == int(ti["try_number"]):
                start, end = _parse(ti.get("start_date")), _parse(ti.get("end_date"))
                duration = f"{(end - start).total_seconds():.1f}s" if start and end else "-"
            arn = task["taskArn"].rsplit("/", 1)[-1] if task else "-"
            definition = _definition(task) if task else "-"
            resources = _resources(task) if task else "-"
            stop = _stop(task) if task else "-"
            rows.append(
                f"{name:<20}{number:>3}  {outcome:<14}{duration:>8}  {arn:<34}{definition:<20}{resources:<11}{stop}"
            )
    return "\n".join(rows)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main() -> int:
    """Run the demo; the exit code is the DAG run's outcome with ONCE=1."""
    once = os.environ.get("ONCE") == "1"
    home = REPO / ".demo" / "airflow"
    port = int(os.environ.get("DEMO_PORT", "8080"))
    if not _port_free(port):
        print(
            f"Port {port} on 127.0.0.1 is in use (another Airflow or demo?). Stop that, or give the demo "
            f"another port for its Airflow UI: DEMO_PORT={port + 1} make demo",
            file=sys.stderr,
        )
        return 2
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
            try:
                tis = stack.task_instances(DAG_ID, run_id)
                line = _summary(tis, _ecs_tasks(stack, run_id))
                state = stack.run_state(DAG_ID, run_id)
            except OSError as exc:  # a busy machine: the API server answers late; ask again
                print(f"(the API server did not answer in time: {exc}; asking again)", flush=True)
                continue
            if line.split("] ", 1)[1] != last:
                print(line, flush=True)
                last = line.split("] ", 1)[1]
            time.sleep(2)
        time.sleep(3)  # let the last containers stop so their exit codes show
        tis = stack.task_instances(DAG_ID, run_id)
        print(f"\nDAG run {run_id}: {state}\n")
        print(_table(stack, run_id, tis, _ecs_tasks(stack, run_id)))
        print(
            "\nThe first try of flaky_once fails on purpose and its retry succeeds (Airflow retries apply; the"
            "\nfailed try's container exits 0: the task reported its failure to Airflow). with_resources got"
            "\nits cpu/memory from executor_config; routed_by_queue ran on the 'big' queue's task definition."
        )
        print(
            "\nThe demo's settings, for an Airflow of your own (README, 'Try it by hand'; the endpoint is this"
            f"\ndemo's emulator, gone when the demo stops):\n\n{as_ini(section(stack.endpoint_url))}",
            flush=True,
        )
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
