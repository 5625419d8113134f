"""runtime.events.Reconciler: which tasks DescribeTasks looks at while events track them."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ecs_executor.aws.client import DESCRIBE_BATCH
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
    r.heard(A, "RUNNING", 20)
    r.heard(B, "DEACTIVATING", 10)
    assert r.due({"airflow": {A, B}}, now=40) == {"airflow": [B]}  # between two states: silence bound
    r.heard(A, "RUNNING", 50)  # an event: the clock starts again
    assert r.due({"airflow": {A}}, now=100) == {}
    assert r.due({"airflow": {A}}, now=110) == {"airflow": [A]}


def test_an_adopted_task_is_described_at_once() -> None:
    r = Reconciler(interval=60, silence=30)
    r.ask(A)
    assert r.due({"airflow": {A}}, now=0) == {"airflow": [A]}


def _arn(i: int) -> str:
    return f"arn:aws:ecs:us-east-1:123456789012:task/airflow/{i:05d}"


def test_a_short_call_is_filled_with_the_tasks_due_soonest() -> None:
    """3 tasks due, 200 running: the call takes 97 more, the ones heard of longest ago, none heard of recently."""
    r = Reconciler(interval=60, silence=30)
    arns = [_arn(i) for i in range(200)]
    watch = {"airflow": set(arns)}
    r.due(watch, now=0)
    for i, arn in enumerate(arns):
        r.heard(arn, "RUNNING", 59 - i * 0.29)  # arn 0 heard at 59, arn 199 at 1.29: 100 of them by 30
    for arn in arns[:3]:
        r.heard(arn, "RUNNING", 0.0)  # silent for a minute at 60
    due = r.due(watch, now=60)["airflow"]
    assert len(due) == DESCRIBE_BATCH
    assert set(arns[:3]) <= set(due)
    heard_at = {arn: 59 - i * 0.29 for i, arn in enumerate(arns)}
    filled = [heard_at[a] for a in due if a not in arns[:3]]
    assert max(filled) <= 60 - 30  # heard of at least half an interval ago
    assert max(filled) < min(heard_at[a] for a in arns[3:] if a not in due)  # the stalest first
    assert r.due(watch, now=61) == {}


def test_nothing_due_sends_nothing_even_with_stale_tasks() -> None:
    r = Reconciler(interval=60, silence=30)
    r.due({"airflow": {A}}, now=0)
    r.heard(A, "RUNNING", 0)
    assert r.due({"airflow": {A}}, now=50) == {}  # stale, not due: filling only fills a call being sent


@settings(max_examples=60, deadline=None)
@given(
    starts=st.lists(st.floats(0.0, 300.0), min_size=1, max_size=700),
    tick=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_every_task_is_described_within_the_interval_with_fewer_calls(starts: list[float], tick: float) -> None:
    """Tasks launched at any times, RUNNING and silent: none waits longer than the interval for a
    describe (one tick of lateness at most), and the calls are no more than without filling."""
    interval = 60.0
    filled, plain = Reconciler(interval, 30.0), Reconciler(interval, 30.0, batch=1)  # batch=1: no filling
    plain_calls = filled_calls = 0
    last: dict[str, float] = {}
    t = 0.0
    while t < 600.0:
        watch = {"airflow": {_arn(i) for i, s in enumerate(starts) if s <= t}}
        for arn in watch["airflow"]:
            if arn not in last:
                last[arn] = t
                for r in (filled, plain):
                    r.heard(arn, "RUNNING", t)  # its RUNNING event
        got = filled.due(watch, now=t).get("airflow", [])
        filled_calls += math.ceil(len(got) / DESCRIBE_BATCH)
        for arn in got:
            assert t - last[arn] <= interval + tick
            last[arn] = t
        plain_due = plain.due(watch, now=t).get("airflow", [])
        plain_calls += math.ceil(len(plain_due) / DESCRIBE_BATCH)
        t += tick
    assert all(600.0 - tick - seen <= interval + tick for seen in last.values())
    assert filled_calls <= plain_calls


def test_tasks_launched_over_a_minute_are_described_in_full_calls() -> None:
    """1,000 tasks launched at 20/s, each running ten minutes: a call per 100 tasks due, not one per tick."""
    arns = [_arn(i) for i in range(1000)]
    calls = {}
    for batch in (DESCRIBE_BATCH, 1):
        r = Reconciler(60.0, 30.0, batch=batch)
        calls[batch] = 0
        for tick in range(660):
            t = float(tick)
            for arn in arns[max(0, (tick - 1) * 20 + 1) if tick else 0 : tick * 20 + 1]:
                r.heard(arn, "RUNNING", t)  # launched and RUNNING in the last second
            live = {"airflow": set(arns[max(0, (tick - 600) * 20) : tick * 20 + 1])}
            calls[batch] += math.ceil(len(r.due(live, now=t).get("airflow", [])) / DESCRIBE_BATCH)
    # Every task is described about once a minute: 1,000 x 10 / 100 = 100 calls at best.
    assert calls[DESCRIBE_BATCH] <= 110 < 150 <= calls[1], calls
