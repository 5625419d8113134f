"""Drive one executor as Airflow's scheduler does, in a process of its own, and record what it saw.

``python -m benchmarks.drive SPEC_JSON OUT_JSON``: SPEC names the executor (``ours`` or
``upstream``), the emulator endpoint and the scenario's arrival plan. The process queues real
``ExecuteTask`` workloads (``queue_workload``), calls ``heartbeat()`` at the scheduler's interval,
reads the event buffer after each heartbeat, and times the scheduler thread inside ``heartbeat()``.
It stops when every workload has a final state, or at the scenario's deadline. Peak memory is this
process's (Airflow and the executor, not the emulator, which runs in the parent).

Only the benchmark imports upstream's executor (tests/test_import_rules.py).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

FINAL = ("success", "failed")


def configure(spec: dict[str, Any]) -> None:
    """The executor's section from the spec, as environment variables, before Airflow loads."""
    net = {"SUBNETS": "subnet-bench", "SECURITY_GROUPS": "sg-bench", "ASSIGN_PUBLIC_IP": "False"}
    common = {"CLUSTER": "bench", "TASK_DEFINITION": "bench-task", "CONTAINER_NAME": "base", "REGION_NAME": "us-east-1"}
    key_id, secret = spec["access_key_id"], spec["secret_access_key"]  # the emulator's credentials
    conn = {"conn_type": "aws", "login": key_id, "password": secret, "extra": {"endpoint_url": spec["endpoint"]}}
    os.environ["AIRFLOW_CONN_AWS_BENCH"] = json.dumps(conn)
    os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = key_id, secret
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    # Airflow's [core] parallelism (32 by default) caps the running workloads of any executor; the
    # benchmark measures the executors, so every workload of a burst may run at once.
    os.environ["AIRFLOW__CORE__PARALLELISM"] = str(max(32, spec["n"]))
    # The same settings for both; each executor reads its own section.
    section = {**common, **net, "CONN_ID": "aws_bench", "LAUNCH_TYPE": "FARGATE", "CHECK_HEALTH_ON_STARTUP": "True"}
    if (
        spec["executor"] == "ours"
    ):  # upstream has no sealing: compared plain unless the spec seals (benchmarks/sealing.py)
        section["WORKLOAD_DELIVERY"] = spec.get("workload_delivery", "plain")
        section["WORKLOAD_KMS_KEY"] = spec.get("workload_kms_key", "")
    prefix = "AIRFLOW__ECS_EXECUTOR__" if spec["executor"] == "ours" else "AIRFLOW__AWS_ECS_EXECUTOR__"
    for key, value in section.items():
        os.environ[prefix + key] = value


def make_executor(kind: str) -> Any:
    if kind == "ours":
        from airflow_ecs_executor import EcsExecutor

        return EcsExecutor()
    from airflow.providers.amazon.aws.executors.ecs.ecs_executor import AwsEcsExecutor

    return AwsEcsExecutor()  # type: ignore[no-untyped-call]


def make_workload(index: int, run_id: str) -> Any:
    from airflow.executors import workloads

    dto = getattr(workloads, "TaskInstanceDTO", None) or workloads.TaskInstance
    ti = dto(
        id=uuid.uuid4(),
        task_id=f"t{index:05d}",
        dag_id="bench",
        run_id=run_id,
        try_number=1,
        dag_version_id=uuid.uuid4(),
        pool_slots=1,
        priority_weight=1,
        queue="default",
        map_index=-1,
        executor_config={},
    )
    return workloads.ExecuteTask(
        token="bench.jwt.token",
        dag_rel_path=Path("bench.py"),
        bundle_info=workloads.BundleInfo(name="dags-folder"),
        log_path=f"bench/{index}.log",
        ti=ti,
    )


def drive(spec: dict[str, Any]) -> dict[str, Any]:
    configure(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from airflow.models import import_all_models
        from sqlalchemy.orm import configure_mappers

        # A running scheduler has loaded and configured Airflow's ORM before its executor's first
        # heartbeat; without this, the first task-instance event would pay for it (about 0.35 s).
        import_all_models()  # type: ignore[no-untyped-call]
        configure_mappers()
    executor = make_executor(spec["executor"])
    executor.start()
    if spec.get("ready_file"):
        Path(spec["ready_file"]).write_text("started")  # the parent injects scenario faults from here on
    run_id = f"bench__{spec['scenario']}__{spec['executor']}"
    items = [make_workload(i, run_id) for i in range(spec["n"])]
    arrivals = spec["arrivals"]  # seconds after t0 at which workload i is queued
    ti_id = {item.ti.key: str(item.ti.id) for item in items}
    queued_at: dict[str, float] = {}
    final: dict[str, dict[str, Any]] = {}
    running_seen: dict[str, float] = {}
    heartbeats: list[float] = []
    interval = spec["heartbeat_interval"]
    t0_wall = time.time()
    t0 = time.monotonic()
    deadline = t0 + spec["deadline"]
    next_item = 0
    while time.monotonic() < deadline:
        now = time.monotonic() - t0
        while next_item < len(items) and arrivals[next_item] <= now:
            item = items[next_item]
            executor.queue_workload(item, session=None)
            queued_at[str(item.ti.id)] = time.time()
            next_item += 1
        started = time.perf_counter()
        executor.heartbeat()
        heartbeats.append(time.perf_counter() - started)
        for key, (state, info) in executor.get_event_buffer().items():
            wid = ti_id.get(key)
            if wid is None:
                continue
            if str(state) == "running" and info:  # a RUNNING event without an ARN only clears an old one
                running_seen.setdefault(wid, time.time())
            elif str(state) in FINAL:
                final[wid] = {"state": str(state), "at": time.time(), "info": str(info)[:300] if info else None}
        if next_item == len(items) and len(final) == len(items):
            break
        time.sleep(max(0.0, interval - (time.perf_counter() - started)))
    finished = time.monotonic() - t0
    try:
        executor.terminate()
    except Exception as exc:
        print(f"executor shutdown failed: {exc}", file=sys.stderr)
    return {
        "executor": spec["executor"],
        "scenario": spec["scenario"],
        "n": spec["n"],
        "t0": t0_wall,
        "elapsed": finished,
        "queued_at": queued_at,
        "final": final,
        "running_seen": running_seen,
        "heartbeat_seconds": heartbeats,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


if __name__ == "__main__":
    spec_path, out_path = sys.argv[1], sys.argv[2]
    result = drive(json.loads(Path(spec_path).read_text()))
    Path(out_path).write_text(json.dumps(result))
