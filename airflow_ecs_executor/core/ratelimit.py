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
