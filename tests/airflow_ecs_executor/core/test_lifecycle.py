from __future__ import annotations

import random

import pytest

from airflow_ecs_executor.core.backoff import Backoff
from airflow_ecs_executor.core.lifecycle import ALLOWED, IllegalTransition, Phase, Workload, advance
from airflow_ecs_executor.core.ratelimit import TokenBucket


def test_happy_path() -> None:
    rec = Workload("w1")
    rec = advance(rec, Phase.LAUNCHING, at=1.0, attempt=1)
    rec = advance(rec, Phase.PROVISIONING, at=2.0, task_arn="arn:t")
    rec = advance(rec, Phase.RUNNING, at=3.0)
    rec = advance(rec, Phase.SUCCEEDED, at=4.0)
    assert (rec.phase, rec.attempt, rec.task_arn, rec.changed_at, rec.done) == (Phase.SUCCEEDED, 1, "arn:t", 4.0, True)


def test_relaunch_after_failed_start_goes_back_to_pending() -> None:
    rec = advance(advance(Workload("w"), Phase.LAUNCHING, at=0), Phase.PROVISIONING, at=1, task_arn="a")
    rec = advance(rec, Phase.PENDING, at=2, task_arn=None, not_before=10.0, reason="CannotPullContainerError")
    assert rec.phase is Phase.PENDING
    assert rec.not_before == 10.0


@pytest.mark.parametrize(
    ("start", "target"),
    [(p, t) for p in Phase for t in Phase if t not in ALLOWED[p]],
)
def test_every_illegal_move_raises(start: Phase, target: Phase) -> None:
    with pytest.raises(IllegalTransition):
        advance(Workload("w", phase=start), target, at=0)


def test_terminal_phases_have_no_way_out() -> None:
    assert ALLOWED[Phase.SUCCEEDED] == frozenset()
    assert ALLOWED[Phase.FAILED] == frozenset()


def test_backoff_grows_and_caps() -> None:
    rng = random.Random(0)
    backoff = Backoff(base=1.0, cap=8.0)
    ceilings = [max(backoff.delay(n, rng) for _ in range(500)) for n in (1, 2, 3, 4, 5, 10)]
    assert ceilings[0] <= 1.0 and ceilings[1] <= 2.0 and ceilings[2] <= 4.0
    assert all(c <= 8.0 for c in ceilings)
    assert ceilings[-1] > 7.0


def test_token_bucket_paces_with_a_manual_clock() -> None:
    bucket = TokenBucket(rate=20, burst=2, now=0.0)
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(0.05)
    assert bucket.take(0.05) == 0.0
    bucket.penalise(0.05, 1.0)
    assert bucket.take(0.05) == pytest.approx(1.0)
    assert bucket.take(1.1) == 0.0
