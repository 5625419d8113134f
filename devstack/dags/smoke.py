"""Smallest DAG: one task that prints a line and succeeds."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="smoke", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def smoke() -> None:
    @task
    def hello() -> str:
        print("hello from an ECS task run by EcsExecutor")
        return "ok"

    hello()


smoke()
