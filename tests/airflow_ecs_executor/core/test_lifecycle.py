from __future__ import annotations

import random

import pytest

from airflow_ecs_executor.core.backoff import Backoff
from airflow_ecs_executor.core.lifecycle import ALLOWED, IllegalTransition, Phase, Record, advance
from airflow_ecs_executor.core.ratelimit import TokenBucket


def rec(phase: Phase = Phase.PENDING) -> Record:
    return Record("q", "dag/task/run/-1/1", "cluster", "base", accepted_at=0.0, phase=phase)


def test_happy_path() -> None:
    r = advance(rec(), Phase.LAUNCHING, at=1.0, attempt=1)
    r = advance(r, Phase.PROVISIONING, at=2.0, task_arn="arn:t")
    r = advance(r, Phase.RUNNING, at=3.0)
    r = advance(r, Phase.SUCCEEDED, at=4.0)
    assert (r.phase, r.attempt, r.task_arn, r.changed_at, r.done) == (Phase.SUCCEEDED, 1, "arn:t", 4.0, True)


def test_relaunch_after_failed_start_goes_back_to_pending() -> None:
    r = advance(advance(rec(), Phase.LAUNCHING, at=0), Phase.PROVISIONING, at=1, task_arn="a")
    r = advance(r, Phase.PENDING, at=2, task_arn=None, reason="CannotPullContainerError")
    assert r.phase is Phase.PENDING


def test_a_running_container_is_never_launched_again() -> None:
    # RUNNING -> PENDING exists only for a container that could not open its sealed workload (Airflow's
    # task never began); core.decide allows it for that case alone (test_decide's
    # test_a_workload_that_could_not_be_opened_is_a_start_failure and its property test).
    assert Phase.LAUNCHING not in ALLOWED[Phase.RUNNING]


@pytest.mark.parametrize(
    ("start", "target"),
    [(p, t) for p in Phase for t in Phase if t not in ALLOWED[p]],
)
def test_every_illegal_move_raises(start: Phase, target: Phase) -> None:
    with pytest.raises(IllegalTransition):
        advance(rec(start), target, at=0)


def test_terminal_phases_have_no_way_out() -> None:
    assert ALLOWED[Phase.SUCCEEDED] == frozenset()
    assert ALLOWED[Phase.FAILED] == frozenset()
    assert ALLOWED[Phase.RELEASED] == frozenset()


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
