"""The launcher's pacing and ordering, against the emulator over HTTP."""

from __future__ import annotations

import threading
import time
from typing import Any

from airflow_ecs_executor.aws.client import EcsClient
from airflow_ecs_executor.aws.requests import RequestError
from airflow_ecs_executor.runtime.workers import LaunchDone, LazyRequest, Workers
from ecs_emulator import Emulator
from tests.helpers import aws_client, python_container, wait_for


def setup(emulator: Emulator) -> Any:
    ecs = aws_client("ecs", emulator.endpoint_url)
    ecs.create_cluster(clusterName="c")
    emulator.register_container_instances("c")  # EC2 capacity
    ecs.register_task_definition(family="f", containerDefinitions=[python_container()])
    return ecs


def request(name: str) -> dict[str, Any]:
    return {"cluster": "c", "taskDefinition": "f", "startedBy": name, "clientToken": name}


def collect(workers: Workers, n: int) -> list[LaunchDone]:
    done: list[LaunchDone] = []
    wait_for(
        lambda: (done.extend(r for r in workers.drain() if isinstance(r, LaunchDone)), len(done) >= n)[1], timeout=30
    )
    return done


def test_ready_jobs_launch_in_priority_order(emulator: Emulator) -> None:
    ecs = setup(emulator)
    workers = Workers(EcsClient(ecs, "c"), launch_rate=1000, launch_concurrency=1)
    try:
        # The first job may already be under way when the others arrive; the rest go by priority.
        workers.submit("w5", 1, request("w5"), priority=5)
        for prio in (9, 1, 3):
            workers.submit(f"w{prio}", 1, request(f"w{prio}"), priority=prio)
        order = [d.workload_id for d in collect(workers, 4)]
        assert order[1:] == sorted(order[1:], key=lambda w: int(w[1:]))
    finally:
        workers.close()


def test_launch_rate_is_respected(emulator: Emulator) -> None:
    ecs = setup(emulator)
    workers = Workers(EcsClient(ecs, "c"), launch_rate=5, launch_concurrency=4)
    try:
        started = time.monotonic()
        for i in range(10):
            workers.submit(f"w{i}", 1, request(f"w{i}"), priority=0)
        collect(workers, 10)
        # burst of 5, then 5 more at 5/s: about one second; behaviour, not a timing benchmark
        assert time.monotonic() - started >= 0.8
    finally:
        workers.close()


def test_delayed_job_waits(emulator: Emulator) -> None:
    ecs = setup(emulator)
    workers = Workers(EcsClient(ecs, "c"), launch_rate=100, launch_concurrency=2)
    try:
        workers.submit("later", 1, request("later"), priority=0, delay=0.5)
        workers.submit("now", 1, request("now"), priority=10)
        assert [d.workload_id for d in collect(workers, 2)] == ["now", "later"]
    finally:
        workers.close()


def test_cancelled_launches_never_reach_ecs(emulator: Emulator) -> None:
    ecs = setup(emulator)
    workers = Workers(EcsClient(ecs, "c"), launch_rate=100, launch_concurrency=2)
    try:
        workers.submit("revoked", 1, request("revoked"), priority=0, delay=0.5)
        workers.submit("kept", 1, request("kept"), priority=0, delay=0.5)
        assert workers.cancel("revoked") == 1
        assert workers.cancel("revoked") == 0
        assert [d.workload_id for d in collect(workers, 1)] == ["kept"]
        time.sleep(0.5)
        assert workers.drain() == []
        assert [t["startedBy"] for t in emulator.tasks()] == ["kept"]
    finally:
        workers.close()


def test_requests_are_built_on_the_launcher_thread_once(emulator: Emulator) -> None:
    ecs = setup(emulator)
    workers = Workers(EcsClient(ecs, "c"), launch_rate=100, launch_concurrency=2)
    built_on: list[str] = []

    def build() -> dict[str, Any]:
        built_on.append(threading.current_thread().name)
        return request("lazy")

    try:
        recipe = LazyRequest(build)
        workers.submit("lazy", 1, recipe, priority=0)
        [done] = collect(workers, 1)
        assert done.invalid is None and done.result is not None
        workers.submit("lazy", 1, recipe, priority=0)  # a retry of the same attempt: same request
        collect(workers, 1)
        assert built_on == ["ecs-executor-launcher"]
        assert len(emulator.tasks()) == 1  # the same clientToken: ECS answered with the first task
    finally:
        workers.close()


def test_a_request_that_cannot_be_built_fails_that_job_only(emulator: Emulator) -> None:
    ecs = setup(emulator)
    workers = Workers(EcsClient(ecs, "c"), launch_rate=100, launch_concurrency=2)

    def bad() -> dict[str, Any]:
        raise RequestError("executor_config keys ['image'] are not allowed here")

    try:
        workers.submit("bad", 1, LazyRequest(bad), priority=0)
        workers.submit("good", 1, request("good"), priority=1)
        done = {d.workload_id: d for d in collect(workers, 2)}
        assert done["bad"].invalid == "executor_config keys ['image'] are not allowed here"
        assert done["bad"].result is None and done["bad"].error is None
        assert done["good"].invalid is None and done["good"].result is not None
        assert [t["startedBy"] for t in emulator.tasks()] == ["good"]
    finally:
        workers.close()
