"""Exponential backoff with full jitter; randomness is injected so tests are exact."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay before retry number ``n`` (1-based): uniform in [0, min(cap, base * 2**(n-1))]."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, n: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(0, n - 1))
        return rng.uniform(0, ceiling)
