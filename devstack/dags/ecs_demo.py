"""The demo DAG: every kind of work EcsExecutor runs, each task as one emulated ECS task."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

from airflow.sdk import dag, get_current_context, task


@dag(dag_id="ecs_demo", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["demo"])
def ecs_demo() -> None:
    @task
    def list_files() -> list[str]:
        return [f"file-{i}.csv" for i in range(5)]

    @task
    def process(name: str) -> int:
        print(f"processing {name}", flush=True)
        time.sleep(2)
        return len(name)

    @task(retries=1, retry_delay=timedelta(seconds=2))
    def flaky_once() -> None:
        try_number = get_current_context()["ti"].try_number
        print(f"flaky_once: this is try {try_number}", flush=True)
        if try_number == 1:
            raise RuntimeError("failing on purpose on the first try; the retry will succeed")

    @task(executor_config={"cpu": 1024, "memory": 2048, "environment": {"MODE": "large"}})
    def with_resources() -> None:
        print(f"running with executor_config resources, MODE={os.environ.get('MODE')}", flush=True)

    @task(queue="big")
    def routed_by_queue() -> None:
        print("routed by queue 'big' to the airflow-task-big task definition", flush=True)

    @task
    def long_running() -> None:
        for step in range(1, 11):
            print(f"progress {step * 10}%", flush=True)
            time.sleep(1.5)

    @task
    def summarise(sizes: list[int]) -> None:
        print(f"processed {len(sizes)} files, {sum(sizes)} characters of names", flush=True)

    summarise(process.expand(name=list_files()))  # type: ignore[arg-type]  # XComArg resolves at run time
    flaky_once()
    with_resources()
    routed_by_queue()
    long_running()


ecs_demo()
