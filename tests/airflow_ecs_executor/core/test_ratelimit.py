"""The adaptive launch pacing (core.ratelimit): CUBIC cut on throttling, bounded, fair between schedulers."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ecs_executor.core.ratelimit import (
    BETA,
    PEAK,
    RECOVERY,
    AdaptiveBucket,
    AdaptiveRate,
    InFlightLimit,
    saved_burst,
)


def test_starts_at_the_full_rate_and_cuts_once_per_episode() -> None:
    rate = AdaptiveRate(20.0, 0.0)
    assert rate.rate(0.0) == 20.0
    assert rate.throttled(1.0, sent_at=0.9)
    assert rate.rate(1.0) == pytest.approx(20.0 * BETA)
    # Calls that were under way when the rate was cut are the same episode: no second cut.
    assert not rate.throttled(1.1, sent_at=0.95)
    assert rate.rate(1.1) < 16.0  # climbing back from the one cut, not cut again
    assert rate.cuts == 1


def test_climbs_back_to_the_last_peak_within_seconds() -> None:
    rate = AdaptiveRate(20.0, 0.0)
    rate.throttled(0.0, sent_at=0.0)
    # Back to the rate of the cut after RECOVERY seconds, fast at first; never beyond max_rate.
    assert rate.rate(0.5) - rate.rate(0.0) > rate.rate(2.5) - rate.rate(2.0) > 0
    assert rate.rate(RECOVERY) == pytest.approx(20.0)
    assert rate.rate(30.0) == 20.0


def test_probes_gently_beyond_the_last_cut() -> None:
    """A scheduler sharing the quota finds it again within seconds, not within one second."""
    rate = AdaptiveRate(20.0, 0.0)
    rate.throttled(0.0, sent_at=0.0)  # at 20/s: back to 20 by RECOVERY
    rate.throttled(RECOVERY + 1, sent_at=RECOVERY + 1)  # at 20/s again: cut to 14, w_max 20
    assert rate.rate(RECOVERY + 1 + RECOVERY) == pytest.approx(20.0)


def test_a_throttle_never_pauses_launching_for_a_second() -> None:
    bucket = AdaptiveBucket(20.0, 20.0, 0.0)
    now = 0.0
    sent = 0
    while sent < 20:  # the saved burst goes out at PEAK x the rate, not all in one instant
        wait = bucket.take(now)
        sent += wait == 0.0
        now += wait
    assert now == pytest.approx(19 / (PEAK * 20.0))
    bucket.throttled(now + 0.1, sent_at=now)
    wait = bucket.take(now + 0.1)
    assert 0 < wait <= 1 / (20.0 * BETA) + 1e-9


def test_a_burst_spends_the_quota_as_fast_as_aws_refills_it() -> None:
    """20 saved + 20/s sent at PEAK x 20/s: the 40th call goes within the first two seconds, as an instant burst would."""
    bucket = AdaptiveBucket(20.0, 20.0, 0.0)
    now, sent = 0.0, 0
    while sent < 40:
        wait = bucket.take(now)
        if wait == 0.0:
            sent += 1
        else:
            now += wait
    assert now <= 2.0 + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    max_rate=st.floats(1.0, 100.0),
    events=st.lists(st.tuples(st.floats(0.0, 5.0), st.booleans(), st.floats(0.0, 3.0)), max_size=60),
)
def test_rate_stays_within_bounds(max_rate: float, events: list[tuple[float, bool, float]]) -> None:
    """Whatever the order of throttles and quiet spells, the rate stays in [min_rate, max_rate]."""
    rate = AdaptiveRate(max_rate, 0.0, min_rate=0.5)
    now = 0.0
    for gap, throttle, latency in events:
        now += gap
        if throttle:
            rate.throttled(now, sent_at=now - latency)
        assert 0.5 <= rate.rate(now) <= max_rate


def _simulate(n: int, quota: float, seconds: float, dt: float = 0.01) -> tuple[list[float], int]:
    """N controllers against one server bucket (burst = quota, refill quota/s), with 100 ms calls."""
    controllers = [AdaptiveBucket(quota, quota, 0.0) for _ in range(n)]
    tokens, launched, throttled = quota, [0.0] * n, 0
    in_flight: list[tuple[float, int, float, bool]] = []  # (answer at, who, sent at, throttled)
    t = 0.0
    rng = random.Random(7)
    while t < seconds:
        tokens = min(quota, tokens + quota * dt)
        order = list(enumerate(controllers))
        rng.shuffle(order)  # calls of different schedulers reach AWS in no fixed order
        for i, c in order:
            while c.take(t) == 0.0:
                ok = tokens >= 1
                tokens -= 1 if ok else 0
                in_flight.append((t + 0.1, i, t, not ok))
        for item in [f for f in in_flight if f[0] <= t]:
            in_flight.remove(item)
            _, who, sent, refused = item
            if refused:
                throttled += t > seconds / 2
                controllers[who].throttled(t, sent)
            elif t > seconds / 2:
                launched[who] += 1
        t += dt
    return launched, throttled


@pytest.mark.parametrize("n", [1, 2, 3])
def test_schedulers_share_one_quota_fairly(n: int) -> None:
    launched, throttled = _simulate(n, 20.0, 120.0)
    total = sum(launched) / 60.0  # launches per second over the second half, once converged
    assert total >= 0.9 * 20.0
    assert max(launched) / min(launched) < 1.5
    assert throttled / sum(launched) < 0.1


def _lone_burst(saved: float, median: float, seed: int, n: int = 300) -> tuple[float, int]:
    """One executor's burst of n calls against AWS's RunTask bucket (20 + 20/s), each call's latency
    (lognormal, 99th percentile three times the median) spent before it reaches the bucket.

    Returns the seconds from the first call's arrival to the last one's, and the throttled calls.
    """
    rng = random.Random(seed)
    sigma = math.log(3) / 2.326
    bucket = AdaptiveBucket(20.0, saved, 0.0)
    tokens, stamp = 20.0, 0.0
    arrivals: list[tuple[float, float]] = []  # (arrives at, sent at), ordered by arrival
    admitted: list[float] = []
    backlog, throttled, t, dt = n, 0, 0.0, 0.005
    while len(admitted) < n and t < 60.0:
        while backlog and bucket.take(t) == 0.0:
            backlog -= 1
            arrivals.append((t + median * math.exp(rng.gauss(0.0, sigma)), t))
        arrivals.sort()
        while arrivals and arrivals[0][0] <= t:
            at, sent = arrivals.pop(0)
            tokens, stamp = min(20.0, tokens + (at - stamp) * 20.0), at
            if tokens >= 1:
                tokens -= 1
                admitted.append(at)
            else:  # refused: the executor hears of it a latency later and sends the call again
                throttled += 1
                bucket.throttled(at + median, sent)
                backlog += 1
        t += dt
    return max(admitted) - min(admitted), throttled


@pytest.mark.parametrize("median", [0.05, 0.15])
def test_a_lone_burst_leaves_aws_a_few_calls_and_is_not_throttled(median: float) -> None:
    """Saving a little less than AWS keeps the calls that arrive early off a throttle; the burst ends
    within 3 % of the quota's floor (280 calls after the 20 saved: 14 s) where saving all 20 was throttled."""
    ours = [_lone_burst(saved_burst(20.0), median, seed) for seed in range(4)]
    whole = [_lone_burst(20.0, median, seed) for seed in range(4)]
    assert sum(thr for _, thr in ours) == 0 < sum(thr for _, thr in whole)
    assert max(span for span, _ in ours) < 14.0 * 1.03
    assert sum(span for span, _ in ours) < sum(span for span, _ in whole)


def test_in_flight_follows_latency_within_bounds() -> None:
    limit = InFlightLimit(4, 64)
    for _ in range(100):
        limit.observe(0.5)
    assert limit.limit(20.0) >= 20  # 20/s at 500 ms needs 10 in flight; twice that for the tail
    for _ in range(200):
        limit.observe(0.01)
    assert limit.limit(20.0) == 4
    for _ in range(200):
        limit.observe(30.0)
    assert limit.limit(20.0) == 64


def test_the_first_burst_is_paced_by_the_rate_alone_until_a_call_is_measured() -> None:
    limit = InFlightLimit(4, 64)
    assert limit.limit(20.0) == 64  # nothing measured: no guess of the latency holds the first burst back
    limit.observe(0.5)
    assert limit.latency == 0.5  # the first measurement is taken as it is, not blended with a guess
    assert limit.limit(20.0) == 21  # 2 x 20/s x 0.5 s, plus one
