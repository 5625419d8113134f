"""Run two workloads through a fresh EcsExecutor in a process whose metrics go to StatsD.

Airflow picks its metrics backend when the process starts (3.1 at import time), as the scheduler
does; a separate process is the faithful way to test it.
"""

from tests.airflow_ecs_executor.scenarios.conftest import run, workload

if __name__ == "__main__":
    import warnings

    from airflow.models import import_all_models
    from sqlalchemy.orm import configure_mappers

    from airflow_ecs_executor import EcsExecutor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_all_models()
        configure_mappers()
    executor = EcsExecutor()
    executor.start()
    try:
        run(executor, [workload("ok"), workload("fail")])
    finally:
        executor.terminate()
