"""A token bucket that paces RunTask calls; the clock is passed in, never read."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up.

    ``take(now)`` returns 0.0 when a token was taken, or the seconds to wait before one will be
    there. Callers own the clock and the waiting; this class only decides.
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = now

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def take(self, now: float) -> float:
        self._refill(now)
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    def penalise(self, now: float, seconds: float) -> None:
        """AWS throttled us: spend the bucket so the next call waits at least ``seconds``."""
        self._refill(now)
        self._tokens = min(self._tokens, 1 - seconds * self.rate)


# ---------------------------------------------------------------------------------------------- adaptive pacing
# CUBIC's shape, as in botocore's adaptive retry mode (botocore/retries/adaptive.py): a throttle cuts
# the rate to BETA of what it was; afterwards the rate climbs back along a cubic curve, quickly at
# first, slowly near the rate of the last cut, then probes beyond it. Two changes, measured with
# several schedulers against one RunTask quota (benchmarks/pacing.py): the climb back takes RECOVERY
# seconds whatever the rate (CUBIC's K = cbrt(w_max x (1 - BETA) / 0.4) is under 2 s for a scheduler
# at a third of 20/s, so three schedulers ran into the quota again every second or two), and the
# probe beyond the last cut is gentle (PROBE_SCALE). One scheduler alone is capped at max_rate and
# never probes; its climb after a stray throttle costs it about a fifth of a second.
BETA = 0.7
RECOVERY = 3.0  # seconds from a cut back to the rate of the cut
PROBE_SCALE = 0.05  # calls/s gained beyond the last cut: PROBE_SCALE x (seconds past RECOVERY) cubed
# A burst is sent at most PEAK times the rate: the quota's burst is spent as fast as AWS refills
# it allows (20 saved + 20/s, sent at 30/s: 40 calls in the first 2 s either way), and several
# schedulers starting bursts at once learn of the throttling before they have sent theirs in full.
PEAK = 1.5
# AWS's RunTask bucket saves as many calls as it refills in a second (20 + 20/s); ours saves
# SAVED_SHARE of that. Our burst then ends while AWS's bucket still holds a few calls, and the calls
# whose latency brings them to AWS early or together land on those instead of on a throttle (which
# costs a scheduler alone a cut of its rate: about a quarter of a second of launches). Measured in a
# simulation of a 300-call burst against AWS's bucket with the latency ahead of the bucket: at 50,
# 150 and 500 ms median 1.1 / 1.3 / 1.3 throttles and 14.39 / 14.59 / 15.28 s with the whole burst
# saved, none / none / 0.1 and 14.27 / 14.39 / 15.06 s with 0.8 of it. Several schedulers are not
# affected: they live on the refill, not on the saved burst.
SAVED_SHARE = 0.8


def saved_burst(rate: float) -> float:
    """How many calls an executor launching at ``rate`` per second saves up: a little less than AWS does."""
    return max(1.0, SAVED_SHARE * rate)


class AdaptiveRate:
    """A launch rate that follows AWS's throttling: CUBIC-shaped between ``min_rate`` and ``max_rate``.

    It starts at ``max_rate`` (one scheduler alone gets the whole quota at once). ``throttled(now,
    sent_at)`` cuts the rate once per congestion episode: a throttle of a call sent before the last
    cut is the same episode and changes nothing, so a burst of throttled calls in flight cuts once.
    Several schedulers (or other users of the account's RunTask quota) running this controller
    against one quota converge to about equal shares, as TCP flows do. The clock is passed in.
    """

    def __init__(self, max_rate: float, now: float, *, min_rate: float = 0.5) -> None:
        if not 0 < min_rate <= max_rate:
            raise ValueError("an adaptive rate needs 0 < min_rate <= max_rate")
        self.max_rate = max_rate
        self.min_rate = min_rate
        self._w_max = max_rate  # the rate at the last cut
        self._cut_at: float | None = None  # when the last cut happened; None: never throttled
        self._floor = max_rate  # the rate just after the last cut
        self.cuts = 0

    def _clamp(self, rate: float) -> float:
        return min(self.max_rate, max(self.min_rate, rate))

    def rate(self, now: float) -> float:
        """Calls per second allowed at ``now``."""
        if self._cut_at is None:
            return self.max_rate
        t = max(0.0, now - self._cut_at)
        if t < RECOVERY:  # concave: from the cut back to w_max, fast at first
            climbed = self._w_max - (self._w_max - self._floor) * ((RECOVERY - t) / RECOVERY) ** 3
        else:  # convex: a gentle probe beyond the rate of the last cut
            climbed = self._w_max + PROBE_SCALE * (t - RECOVERY) ** 3
        return self._clamp(max(self._floor, climbed))

    def throttled(self, now: float, sent_at: float) -> bool:
        """AWS throttled a call sent at ``sent_at``; returns True when this cut the rate."""
        if self._cut_at is not None and sent_at <= self._cut_at:
            return False  # reacted already: this call was under way when the rate was cut
        current = self.rate(now)
        # CUBIC's fast convergence: a flow that is cut below its previous peak gives up more of it,
        # so a newcomer's share grows (botocore does the same).
        self._w_max = current * (1 + BETA) / 2 if current < self._w_max else current
        self._floor = self._clamp(current * BETA)
        self._cut_at = now
        self.cuts += 1
        return True


class AdaptiveBucket:
    """A token bucket whose refill rate is an ``AdaptiveRate``: what the launcher asks before each RunTask.

    ``take(now)`` returns 0.0 when the call may go now, or the seconds to wait. Saved tokens are
    spent at most ``PEAK`` times the current rate. A throttle empties the saved burst as well as
    cutting the rate, so nothing is sent in a rush right after AWS said no; no call waits more than
    one interval at the new rate because of it (never a fixed pause).
    """

    def __init__(self, max_rate: float, burst: float, now: float, *, min_rate: float = 0.5) -> None:
        if burst < 1:
            raise ValueError("a token bucket needs burst >= 1")
        self.control = AdaptiveRate(max_rate, now, min_rate=min_rate)
        self.burst = burst
        self._tokens = burst
        self._stamp = now
        self._next_at = now  # the earliest moment of the next call: PEAK x rate at most

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.control.rate(now))
            self._stamp = now

    def take(self, now: float) -> float:
        if now < self._next_at:
            return self._next_at - now
        self._refill(now)
        rate = self.control.rate(now)
        if self._tokens >= 1:
            self._tokens -= 1
            self._next_at = now + 1 / (PEAK * rate)
            return 0.0
        return (1 - self._tokens) / rate

    def throttled(self, now: float, sent_at: float) -> bool:
        self._refill(now)
        cut = self.control.throttled(now, sent_at)
        if cut:
            self._tokens = min(self._tokens, 0.0)
        return cut

    def rate(self, now: float) -> float:
        return self.control.rate(now)


class InFlightLimit:
    """How many RunTask calls may be under way at once: enough to keep up the rate at the measured latency.

    A rate of R calls per second with calls that take L seconds needs R x L calls in flight; twice
    that absorbs the slow tail of the latency. The latency is an exponentially weighted mean of the
    calls measured; the limit stays within ``[low, high]``. Until the first call has been measured
    the limit is ``high``: the first burst is paced by the rate alone, whatever the latency turns out
    to be (a guess of 200 ms let a 500 ms RunTask send its first burst of 20 nine at a time).
    """

    def __init__(self, low: int, high: int, *, weight: float = 0.2) -> None:
        if not 1 <= low <= high:
            raise ValueError("an in-flight limit needs 1 <= low <= high")
        self.low = low
        self.high = high
        self.latency: float | None = None  # seconds; None until a call has been measured
        self._weight = weight

    def observe(self, seconds: float) -> None:
        """A RunTask call took ``seconds`` (success or throttle: both are round trips)."""
        if seconds < 0:
            return
        if self.latency is None:
            self.latency = seconds
        else:
            self.latency += self._weight * (seconds - self.latency)

    def limit(self, rate: float) -> int:
        if self.latency is None:
            return self.high
        wanted = int(-(-2 * rate * self.latency // 1)) + 1
        return min(self.high, max(self.low, wanted))
