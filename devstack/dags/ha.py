"""The several-schedulers test's DAG: mapped tasks that run long enough for a scheduler to die under them.

Like the chaos DAG, items 0, 7, 14, ... fail on purpose, so every task instance's right final state
is known: their first try sleeps and then fails (a failure reported by an adopted ECS task), their
retry fails at once (queued by whichever scheduler is alive); the other items sleep and succeed.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

FAILS_ON_PURPOSE_EVERY = 7  # items 0, 7, 14, ... always raise (as in the chaos DAG)
# A fixed list, not one made by an upstream task: that task's own ECS run would add a whole task
# lifecycle (over a minute on a loaded 2-core machine) before the work starts.
ITEMS = 6


@dag(
    dag_id="ha",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "seconds": Param(30, type="integer", minimum=0),
    },
    max_active_tasks=64,
)
def ha() -> None:
    @task(retries=1, retry_delay=timedelta(seconds=1))
    def work(n: int) -> int:
        context = get_current_context()
        try_number = context["ti"].try_number
        print(f"ha item {n}, try {try_number}", flush=True)
        if try_number == 1:
            time.sleep(int(context["params"]["seconds"]))
        if n % FAILS_ON_PURPOSE_EVERY == 0:
            raise RuntimeError(f"item {n} fails on purpose")
        return n

    work.expand(n=list(range(ITEMS)))


ha()
