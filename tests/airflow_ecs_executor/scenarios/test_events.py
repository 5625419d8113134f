"""Tracking by ECS events: two schedulers (a queue each, fed by one rule), adoption, fallback to polling;
and polling's own pace (describe_rate).

Reconciliation is set far beyond the test's length, so a task's progress after the feed is up can
only have come from its events: the emulator counts every DescribeTasks call.
"""

from __future__ import annotations

import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from ecs_emulator import Emulator
from tests.airflow_ecs_executor.scenarios.conftest import workload
from tests.ecs_emulator.test_events import events_to_queue
from tests.helpers import aws_client, wait_for


class Metrics:
    """Airflow's Stats as the executor uses it, counted."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def incr(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.counts[name] += 1

    def timing(self, *args: Any, **kwargs: Any) -> None:
        pass

    def gauge(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> Metrics:
    recorder = Metrics()
    monkeypatch.setattr("airflow_ecs_executor.executor.Stats", recorder)
    return recorder


@pytest.fixture
def quiet_reconciliation(executor_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__TASK_EVENTS_RECONCILE_INTERVAL", "600")
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__TASK_EVENTS_SILENCE", "600")


def started(queue_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow_ecs_executor import EcsExecutor

    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__TASK_EVENTS_QUEUE_URL", queue_url)
    ex = EcsExecutor()
    ex.start()
    return ex


def describes(emulator: Emulator) -> int:
    return int(emulator.counters()["api"].get("DescribeTasks", {}).get("calls", 0))


def finals(executors: list[Any], keys: set[Any], timeout: float = 60) -> dict[Any, tuple[Any, str, Any]]:
    """Heartbeat every executor until each key has a final state: key -> (executor, state, info)."""
    out: dict[Any, tuple[Any, str, Any]] = {}

    def done() -> bool:
        for ex in executors:
            ex.heartbeat()
            for k, (state, info) in ex.get_event_buffer().items():
                if str(state) in ("success", "failed"):
                    out[k] = (ex, str(state), info)
        return keys <= set(out)

    wait_for(done, timeout=timeout, interval=0.05)
    return out


def events_up(*executors: Any) -> None:
    def up() -> bool:
        for ex in executors:
            ex.heartbeat()
        return all(ex._events_tracking for ex in executors)

    wait_for(up, timeout=20)


def queue_drained(emulator: Emulator, url: str) -> bool:
    attrs = aws_client("sqs", emulator).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0


def test_two_schedulers_each_track_their_own_tasks_by_events_and_adopt_by_events(
    ecs_setup: Any,
    emulator: Emulator,
    metrics: Metrics,
    quiet_reconciliation: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster_arn = ecs_setup.describe_clusters(clusters=["airflow"])["clusters"][0]["clusterArn"]
    queue_a = events_to_queue(emulator, "scheduler-a", cluster_arn)
    queue_b = events_to_queue(emulator, "scheduler-b", cluster_arn)
    a, b = started(queue_a, monkeypatch), started(queue_b, monkeypatch)
    try:
        events_up(a, b)
        polls_before = describes(emulator)
        mine_a = [workload(f"ok-a{i}") for i in range(3)] + [workload("fail-a")]
        mine_b = [workload(f"ok-b{i}") for i in range(3)]
        for item in mine_a:
            a.queue_workload(item, session=None)
        for item in mine_b:
            b.queue_workload(item, session=None)
        final = finals([a, b], {i.ti.key for i in mine_a + mine_b})
        # Each scheduler reported exactly its own tasks, and learnt their ends from events alone.
        assert {k for k, (ex, _, _) in final.items() if ex is a} == {i.ti.key for i in mine_a}
        assert {k for k, (ex, _, _) in final.items() if ex is b} == {i.ti.key for i in mine_b}
        assert final[mine_a[-1].ti.key][1] == "failed" and "exited with code 1" in final[mine_a[-1].ti.key][2]
        assert {s for k, (_, s, _) in final.items() if k != mine_a[-1].ti.key} == {"success"}
        assert describes(emulator) == polls_before, "a task was described although events track it"
        # The other scheduler's events were deleted without effect, and counted.
        assert metrics.counts["ecs_executor.events.applied"] > 0
        assert metrics.counts["ecs_executor.events.foreign"] > 0

        def drained() -> bool:
            for ex in (a, b):
                ex.heartbeat()
            return queue_drained(emulator, queue_a) and queue_drained(emulator, queue_b)

        wait_for(drained, timeout=30)

        # Scheduler A dies with a task running; B adopts it and sees it stop by its events.
        # Long enough to be still running when B adopts it on a loaded machine (4 s was not: the
        # launch took 5 s to be reported once and B adopted a task that had already ended).
        long = workload("ok-long", executor_config={"environment": {"FAKE_SLEEP": "15"}})
        a.queue_workload(long, session=None)
        arn: list[str] = []

        def launched() -> bool:
            a.heartbeat()
            arn.extend(info for state, info in a.get_event_buffer().values() if str(state) == "running" and info)
            return bool(arn)

        wait_for(launched, timeout=20)
        a._workers.close()
        a._close_events()
        b.try_adopt_task_instances([SimpleNamespace(key=long.ti.key, external_executor_id=arn[0])])
        adopted_at = describes(emulator)
        wait_for(lambda: any(t["taskArn"] == arn[0] and t["lastStatus"] == "RUNNING" for t in emulator.tasks()))
        b.heartbeat()
        time.sleep(0.5)
        b.heartbeat()
        assert describes(emulator) - adopted_at <= 1  # one look at the adopted task, then events alone
        described_once = describes(emulator)
        final = finals([b], {long.ti.key}, timeout=30)
        assert final[long.ti.key][1] == "success"
        assert describes(emulator) == described_once
    finally:
        b.terminate()
        a.terminate()


@pytest.mark.newest_only  # the fallback is ours alone; the two-scheduler test covers events on both Airflows
def test_a_queue_that_cannot_be_read_falls_back_to_polling_then_recovers(
    ecs_setup: Any,
    executor_env: dict[str, str],
    emulator: Emulator,
    metrics: Metrics,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"{emulator.endpoint_url}/123456789012/not-created-yet"
    ex = started(url, monkeypatch)
    try:
        item = workload("ok")
        ex.queue_workload(item, session=None)
        final = finals([ex], {item.ti.key})
        assert final[item.ti.key][1] == "success"  # tracked by polling DescribeTasks
        wait_for(lambda: ex.heartbeat() or metrics.counts["ecs_executor.events.fallback"], timeout=20)
        assert metrics.counts["ecs_executor.events.fallback"] == 1
        assert not ex._events_tracking
        cluster_arn = ecs_setup.describe_clusters(clusters=["airflow"])["clusters"][0]["clusterArn"]
        events_to_queue(emulator, "not-created-yet", cluster_arn)
        wait_for(lambda: ex.heartbeat() or ex._events_tracking, timeout=60)
        assert metrics.counts["ecs_executor.events.recovered"] == 1
    finally:
        ex.terminate()


def _describes_while_one_task_runs(
    emulator: Emulator, describe_rate: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, float]:
    """DescribeTasks calls in about 3 s of polling one running task every 0.1 s (the least), at this
    describe_rate, and the seconds they were counted over (longer than 3 on a loaded machine)."""
    from airflow_ecs_executor import EcsExecutor

    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__POLL_INTERVAL", "0.1")
    monkeypatch.setenv("AIRFLOW__ECS_EXECUTOR__DESCRIBE_RATE", describe_rate)
    ex = EcsExecutor()
    ex.start()
    try:
        ex.queue_workload(workload("sleep"), session=None)
        wait_for(lambda: (ex.heartbeat(), any(t["lastStatus"] == "RUNNING" for t in emulator.tasks()))[1])
        time.sleep(1.5)  # the tracker's first calls spent whatever burst its bucket had
        before = int(emulator.counters()["api"]["DescribeTasks"]["calls"])
        since = time.monotonic()
        time.sleep(3)
        calls = int(emulator.counters()["api"]["DescribeTasks"]["calls"]) - before
        return calls, time.monotonic() - since
    finally:
        ex.terminate()


def test_polling_keeps_to_describe_rate(
    ecs_setup: Any, executor_env: dict[str, str], emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[ecs_executor] describe_rate caps the tracker's DescribeTasks calls, whatever poll_interval asks."""
    capped, seconds = _describes_while_one_task_runs(emulator, "1", monkeypatch)
    assert 2 <= capped <= 1 * seconds + 1  # 1 a second, one call of slack
    fast, _ = _describes_while_one_task_runs(emulator, "20", monkeypatch)
    assert fast >= capped + 4  # 30 on a quiet machine
