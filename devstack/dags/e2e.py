"""DAGs the end-to-end tests and the demo run through EcsExecutor."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from airflow.sdk import dag, get_current_context, task

START = datetime(2026, 1, 1)


@dag(dag_id="retry_once", schedule=None, start_date=START, catchup=False)
def retry_once() -> None:
    @task(retries=1, retry_delay=timedelta(seconds=1))
    def flaky() -> None:
        try_number = get_current_context()["ti"].try_number
        print(f"flaky: try {try_number}")
        if try_number == 1:
            raise RuntimeError("failing on purpose on the first try")

    flaky()


@dag(dag_id="sleeper", schedule=None, start_date=START, catchup=False)
def sleeper() -> None:
    @task
    def sleep_long() -> None:
        for i in range(120):
            print(f"still sleeping: {i} s", flush=True)
            time.sleep(1)

    sleep_long()


@dag(dag_id="fanout", schedule=None, start_date=START, catchup=False)
def fanout() -> None:
    @task
    def items() -> list[int]:
        return list(range(6))

    @task
    def work(n: int) -> int:
        print(f"mapped task {n} working", flush=True)
        time.sleep(8)
        return n * n

    @task
    def total(values: list[int]) -> None:
        print(f"total = {sum(values)}")

    total(work.expand(n=items()))  # type: ignore[arg-type]  # XComArg resolves at run time


retry_once()
sleeper()
fanout()
