"""DAGs in which one Airflow try is handed to the executor more than once (see DESIGN.md, "queueing").

Each is small and ends the same way on every executor:

- ``queueing_reschedule``: a reschedule-mode sensor, true on its third poke. Each poke is a queueing
  of the same try; between pokes the task instance waits in ``up_for_reschedule``, holding no worker.
- ``queueing_deferral``: an operator that defers to a trigger; the triggerer fires it and the same try
  is queued again to run ``execute_complete`` on a worker.
- ``queueing_clear``: one task that the end-to-end test clears after it succeeded, so it runs again.
- ``queueing_retry``: a task that fails its first try and succeeds its second (``retries=1``).
- ``queueing_reschedule_fast`` and ``queueing_deferral_fast``: the same sensor and deferral with no
  pause between queueings, so the next queueing is handed over before the executor has seen the
  previous one's ECS task stop (on AWS, STOPPED comes tens of seconds after the container exits).

``queueing_reschedule`` and ``queueing_deferral`` pause 15 s between queueings. Airflow's scheduler
matches an executor's report to a task instance by (dag, task, run, map index, try), so a late report
of one queueing is read as the end of the next. LocalExecutor reports a queueing once its worker
process has exited, which takes seconds on a loaded machine, and then fails the try itself
(apache/airflow#71172, #72716); the pause keeps LocalExecutor, the reference these two are compared
with, out of that race.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.sensors.python import PythonSensor
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator, Variable, dag, get_current_context, task

START = datetime(2026, 1, 1)
POKES_NEEDED = 3


def _third_poke() -> bool:
    # Every poke runs in a process (an ECS task) of its own, so the count lives in Airflow's
    # metadata database, reached through the Execution API as any task's would be on AWS. The
    # end-to-end test names the Variable in the run's conf, to read the count afterwards.
    context = get_current_context()
    conf = context["dag_run"].conf or {}
    key = str(conf.get("poke_counter") or "queueing_pokes_" + re.sub(r"[^\w.-]", "_", context["run_id"]))
    pokes = int(Variable.get(key, default="0")) + 1
    Variable.set(key, str(pokes))
    print(f"poke {pokes} of {POKES_NEEDED}", flush=True)
    return pokes >= POKES_NEEDED


def _reschedule_dag(dag_id: str, poke_interval: float) -> None:
    @dag(dag_id=dag_id, schedule=None, start_date=START, catchup=False)
    def sensor_dag() -> None:
        PythonSensor(
            task_id="wait_for_third_poke",
            python_callable=_third_poke,
            mode="reschedule",
            poke_interval=poke_interval,
            timeout=300,
        )

    sensor_dag()


class DeferThenResume(BaseOperator):
    """Defers to a trigger that fires after ``wait_seconds``; resumes in ``execute_complete`` on a worker."""

    def __init__(self, *, wait_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_seconds = wait_seconds

    def execute(self, context: Any) -> None:
        print("deferring to the triggerer", flush=True)
        self.defer(
            trigger=DateTimeTrigger(moment=datetime.now(UTC) + timedelta(seconds=self.wait_seconds)),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: Any = None) -> str:
        print(f"resumed on a worker after the trigger fired: {event!r}", flush=True)
        return "resumed"


def _deferral_dag(dag_id: str, wait_seconds: float) -> None:
    @dag(dag_id=dag_id, schedule=None, start_date=START, catchup=False)
    def deferral_dag() -> None:
        DeferThenResume(task_id="defer_then_resume", wait_seconds=wait_seconds)

    deferral_dag()


@dag(dag_id="queueing_clear", schedule=None, start_date=START, catchup=False)
def queueing_clear() -> None:
    @task
    def run_twice() -> None:
        print(f"run_twice: try {get_current_context()['ti'].try_number}", flush=True)

    run_twice()


@dag(dag_id="queueing_retry", schedule=None, start_date=START, catchup=False)
def queueing_retry() -> None:
    @task(retries=1, retry_delay=timedelta(seconds=1))
    def fail_once() -> None:
        try_number = get_current_context()["ti"].try_number
        print(f"fail_once: try {try_number}", flush=True)
        if try_number == 1:
            raise RuntimeError("failing on purpose on the first try")

    fail_once()


_reschedule_dag("queueing_reschedule", poke_interval=15)
_reschedule_dag("queueing_reschedule_fast", poke_interval=0)
_deferral_dag("queueing_deferral", wait_seconds=15)
_deferral_dag("queueing_deferral_fast", wait_seconds=0)
queueing_clear()
queueing_retry()
