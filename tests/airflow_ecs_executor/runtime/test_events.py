"""runtime.events.Reconciler: which tasks DescribeTasks looks at while events track them."""

from __future__ import annotations

from airflow_ecs_executor.runtime.events import Reconciler

A, B = "arn:aws:ecs:us-east-1:123456789012:task/airflow/a", "arn:aws:ecs:us-east-1:123456789012:task/airflow/b"


def test_a_new_task_waits_for_its_events_then_is_described_when_silent() -> None:
    r = Reconciler(interval=60, silence=30)
    assert r.due({"airflow": {A}}, now=0) == {}
    assert r.due({"airflow": {A}}, now=29) == {}
    assert r.due({"airflow": {A}}, now=30) == {"airflow": [A]}
    assert r.due({"airflow": {A}}, now=31) == {}  # asked: not again at once


def test_a_running_task_is_described_once_per_interval_and_news_resets_the_clock() -> None:
    r = Reconciler(interval=60, silence=30)
    r.due({"airflow": {A, B}}, now=0)
    r.heard(A, "RUNNING", 10)
    r.heard(B, "DEACTIVATING", 10)
    assert r.due({"airflow": {A, B}}, now=40) == {"airflow": [B]}  # between two states: silence bound
    r.heard(A, "RUNNING", 50)  # an event: the clock starts again
    assert r.due({"airflow": {A}}, now=100) == {}
    assert r.due({"airflow": {A}}, now=110) == {"airflow": [A]}


def test_an_adopted_task_is_described_at_once() -> None:
    r = Reconciler(interval=60, silence=30)
    r.ask(A)
    assert r.due({"airflow": {A}}, now=0) == {"airflow": [A]}
