"""The launcher's pacing and ordering, against the emulator over HTTP."""

from __future__ import annotations

import threading
import time
from typing import Any

from airflow_ecs_executor.aws.client import AwsCallError, EcsClient
from airflow_ecs_executor.aws.requests import RequestError
from airflow_ecs_executor.core.classify import LaunchErrorKind
from airflow_ecs_executor.runtime.workers import Described, LaunchDone, LazyRequest, WorkerRestarted, Workers
from ecs_emulator import Emulator
from tests.helpers import aws_client, python_container, wait_for


def setup(emulator: Emulator) -> Any:
    ecs = aws_client("ecs", emulator)
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


def track_one(workers: Workers) -> None:
    """Launch one task and hand it to the tracker."""
    workers.submit("t", 1, request("t"), priority=0)
    [done] = collect(workers, 1)
    assert done.result is not None
    workers.track({"c": frozenset({done.result.observation.arn})})  # type: ignore[union-attr]


def test_ready_jobs_launch_in_priority_order(emulator: Emulator) -> None:
    ecs = setup(emulator)
    workers = Workers(EcsClient(ecs, "c"), launch_rate=1000, launch_concurrency=1)
    try:
        # The first job may already be under way when the others arrive; the rest go by priority.
        workers.submit("w5", 1, request("w5"), priority=5)
        for prio in (9, 1, 3):
            workers.submit(f"w{prio}", 1, request(f"w{prio}"), priority=prio)
        order = [d.queueing for d in collect(workers, 4)]
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
        assert [d.queueing for d in collect(workers, 2)] == ["now", "later"]
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
        assert [d.queueing for d in collect(workers, 1)] == ["kept"]
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
        done = {d.queueing: d for d in collect(workers, 2)}
        assert done["bad"].invalid == "executor_config keys ['image'] are not allowed here"
        assert done["bad"].result is None and done["bad"].error is None
        assert done["good"].invalid is None and done["good"].result is not None
        assert [t["startedBy"] for t in emulator.tasks()] == ["good"]
    finally:
        workers.close()


def test_a_worker_that_fails_is_restarted_and_reported(emulator: Emulator) -> None:
    """The tracker thread used to die on any non-AWS exception, and no task would ever finish again."""
    ecs = setup(emulator)
    client = EcsClient(ecs, "c")
    calls: list[int] = []
    real = client.describe_tasks

    def flaky(cluster: str, arns: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise TypeError("a bug in our own code")
        return real(cluster, arns)

    client.describe_tasks = flaky  # type: ignore[method-assign]
    workers = Workers(client, launch_rate=100, launch_concurrency=2, poll_interval=0.05)
    try:
        workers.submit("t", 1, request("t"), priority=0)
        [done] = collect(workers, 1)
        assert done.result is not None
        arn = done.result.observation.arn  # type: ignore[union-attr]
        workers.track({"c": frozenset({arn})})
        results: list[Any] = []
        wait_for(lambda: (results.extend(workers.drain()), any(isinstance(r, Described) for r in results))[1])
        restarted = [r for r in results if isinstance(r, WorkerRestarted)]
        assert [r.name for r in restarted] == ["ecs-executor-tracker"]
        assert "TypeError: a bug in our own code" in restarted[0].error
    finally:
        workers.close()


def test_a_launch_that_fails_unexpectedly_ends_that_job_and_the_next_one_launches(emulator: Emulator) -> None:
    """A bug between taking a job and sending it used to leave the job held: never launched, never failed."""
    ecs = setup(emulator)
    workers = Workers(EcsClient(ecs, "c"), launch_rate=100, launch_concurrency=2)
    real = workers._wait_for_slot
    calls: list[int] = []

    def flaky() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise TypeError("a bug in our own code")
        return real()

    workers._wait_for_slot = flaky  # type: ignore[method-assign]
    try:
        workers.submit("first", 1, request("first"), priority=0)
        results: list[Any] = []
        wait_for(lambda: (results.extend(workers.drain()), any(isinstance(r, LaunchDone) for r in results))[1])
        [done] = [r for r in results if isinstance(r, LaunchDone)]
        assert done.queueing == "first" and done.result is None
        assert done.invalid == "internal error (TypeError) while launching: an executor bug"
        assert workers.launches_unsettled() == 0
        workers.submit("second", 1, request("second"), priority=0)
        assert [d.queueing for d in collect(workers, 1) if d.result is not None] == ["second"]
        assert [t["startedBy"] for t in emulator.tasks()] == ["second"]
    finally:
        workers.close()


def test_a_dead_thread_is_started_again_by_ensure_alive(emulator: Emulator) -> None:
    workers = Workers(EcsClient(setup(emulator), "c"), launch_rate=100, launch_concurrency=2)
    try:
        workers._closed.set()  # let both loops end as if they had died
        for thread in workers._supervisor.threads():
            thread.join(timeout=5)
        workers._closed.clear()
        assert sorted(workers.ensure_alive()) == ["ecs-executor-launcher", "ecs-executor-tracker"]
        assert all(t.is_alive() for t in workers._supervisor.threads())
        workers.submit("after", 1, request("after"), priority=0)
        assert [d.queueing for d in collect(workers, 1)] == ["after"]
    finally:
        workers.close()


def test_withdraw_all_returns_unsent_launches_and_sends_nothing_more(emulator: Emulator) -> None:
    ecs = setup(emulator)
    workers = Workers(EcsClient(ecs, "c"), launch_rate=100, launch_concurrency=2)
    try:
        for i in range(5):
            workers.submit(f"w{i}", 1, request(f"w{i}"), priority=0, delay=2.0)
        assert sorted(workers.withdraw_all()) == [f"w{i}" for i in range(5)]
        workers.submit("late", 1, request("late"), priority=0)
        time.sleep(0.5)
        assert emulator.tasks() == []
    finally:
        workers.close()


def test_close_waits_for_every_stop_it_was_asked_for(emulator: Emulator) -> None:
    """terminate() used to cancel queued StopTask calls (12 of 20 stopped in a test)."""
    ecs = setup(emulator)
    workers = Workers(EcsClient(ecs, "c"), launch_rate=1000, launch_concurrency=8)
    try:
        for i in range(20):
            workers.submit(f"s{i}", 1, request(f"s{i}"), priority=0)
        arns = [d.result.observation.arn for d in collect(workers, 20)]  # type: ignore[union-attr]
    finally:
        for arn in arns:
            workers.stop("c", arn, "terminated")
        workers.close(timeout=30)
    desired = {t["taskArn"]: t["desiredStatus"] for t in emulator.tasks()}
    assert [desired[arn] for arn in arns] == ["STOPPED"] * 20


def test_a_refused_describe_batch_is_split_so_one_bad_arn_hides_nothing(emulator: Emulator) -> None:
    """DescribeTasks fails the whole call for one ARN it refuses (InvalidParameterException)."""
    ecs = setup(emulator)
    client = EcsClient(ecs, "c")
    real = client.describe_tasks
    bad = "arn:aws:ecs:us-east-1:999999999999:task/c/0123456789abcdef0123456789abcdef"

    def strict(cluster: str, arns: Any) -> Any:
        if bad in arns:
            raise AwsCallError(LaunchErrorKind.REJECTED, "InvalidParameterException", "Identifier is for account 9")
        return real(cluster, arns)

    client.describe_tasks = strict  # type: ignore[method-assign]
    workers = Workers(client, launch_rate=1000, launch_concurrency=4)
    try:
        for i in range(5):
            workers.submit(f"g{i}", 1, request(f"g{i}"), priority=0)
        good = [d.result.observation.arn for d in collect(workers, 5)]  # type: ignore[union-attr]
        described = workers._describe("c", [*good[:2], bad, *good[2:]])
        assert sorted(o.arn for o in described.observations) == sorted(good)
        assert described.unreadable == [(bad, "InvalidParameterException: Identifier is for account 9")]
        assert described.error is None
    finally:
        workers.close()


def test_poll_interval_is_the_period_of_the_rounds_not_a_pause_after_each(emulator: Emulator) -> None:
    """A round that takes 0.3 s (DescribeTasks slowed) is followed by the next 0.5 s after it started:
    0.2 s idle, less on a slow machine; a pause after each round would leave 0.5 s idle."""
    ecs = setup(emulator)
    client = EcsClient(ecs, "c")
    starts: list[float] = []
    ends: list[float] = []
    real = client.describe_tasks

    def slow(cluster: str, arns: Any) -> Any:
        starts.append(time.monotonic())
        time.sleep(0.3)
        try:
            return real(cluster, arns)
        finally:
            ends.append(time.monotonic())

    client.describe_tasks = slow  # type: ignore[method-assign]
    workers = Workers(client, launch_rate=100, launch_concurrency=2, poll_interval=0.5)
    try:
        track_one(workers)
        wait_for(lambda: len(starts) >= 7, timeout=30)
        idle = [start - end for end, start in zip(ends[1:6], starts[2:7], strict=True)]
        assert sorted(idle)[len(idle) // 2] < 0.4, idle  # the median idle time between rounds
    finally:
        workers.close()


def test_every_describe_call_takes_a_describe_rate_token(emulator: Emulator) -> None:
    """The tracker waited for a token and then sent its call without taking one: twice describe_rate."""
    ecs = setup(emulator)
    client = EcsClient(ecs, "c")
    calls: list[float] = []
    real = client.describe_tasks

    def counted(cluster: str, arns: Any) -> Any:
        calls.append(time.monotonic())
        return real(cluster, arns)

    client.describe_tasks = counted  # type: ignore[method-assign]
    workers = Workers(client, launch_rate=100, launch_concurrency=2, poll_interval=0.1, describe_rate=2)
    taken: list[float] = []
    take = workers._describe_bucket.take

    def noted(now: float) -> float:
        wait = take(now)
        if wait <= 0:
            taken.append(now)
        return wait

    workers._describe_bucket.take = noted  # type: ignore[method-assign]
    try:
        track_one(workers)
        wait_for(lambda: len(calls) >= 5, timeout=30)
    finally:
        workers.close()
    assert len(calls) <= len(taken)
