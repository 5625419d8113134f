"""The chaos suite's DAG: mapped tasks; some fail on purpose, every try, so their outcome is known."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

FAILS_ON_PURPOSE_EVERY = 7  # items 0, 7, 14, ... always raise


@dag(
    dag_id="chaos",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"tasks": Param(12, type="integer", minimum=1)},
    max_active_tasks=64,
)
def chaos() -> None:
    @task(retries=4, retry_delay=timedelta(seconds=1))  # Spot reclaims this one too
    def items() -> list[int]:
        return list(range(int(get_current_context()["params"]["tasks"])))

    @task(retries=4, retry_delay=timedelta(seconds=1))
    def work(n: int) -> int:
        print(f"chaos item {n}, try {get_current_context()['ti'].try_number}", flush=True)
        time.sleep(2)
        if n % FAILS_ON_PURPOSE_EVERY == 0:
            raise RuntimeError(f"item {n} fails on purpose")
        return n

    work.expand(n=items())


chaos()
