"""DAGs whose logs the end-to-end tests read back through the API server."""

from __future__ import annotations

import sys
import time
from datetime import datetime

from airflow.sdk import Param, dag, get_current_context, task

START = datetime(2026, 1, 1)


@dag(dag_id="killed_by_oom", schedule=None, start_date=START, catchup=False)
def killed_by_oom() -> None:
    @task(executor_config={"memory": 512})
    def hog() -> None:
        print("about to use more memory than the task has", flush=True)
        hoard = []
        while True:  # touch every page so resident memory really grows
            hoard.append(b"x" * (64 * 1024 * 1024))
            time.sleep(0.05)

    hog()


@dag(
    dag_id="chatty",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"lines": Param(1000, type="integer", minimum=1)},
)
def chatty() -> None:
    @task
    def talk() -> None:
        lines = int(get_current_context()["params"]["lines"])
        out = sys.stdout
        for i in range(lines):
            out.write(f"chatty line {i + 1} of {lines}\n")
        out.flush()

    talk()


killed_by_oom()
chatty()
