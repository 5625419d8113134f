"""Faults: drawn at random from the profile (seeded) or injected now by a test.

The ECS service and the HTTP server ask this plan what should go wrong; the plan counts every
fault it hands out, by kind, so a test or benchmark can report what it injected.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from ecs_emulator.profile import Faults

ApiFaultKind = Literal["server_error", "connection_reset", "lost_response", "throttle"]
API_FAULT_KINDS: tuple[ApiFaultKind, ...] = ("server_error", "connection_reset", "lost_response", "throttle")
TASK_FAULT_KINDS = ("fail_to_start", "spot_interruption", "describe_missing", "oom")
# access_denied: the caller's policy does not allow the API (one-shot, injected only; never drawn at random).
OTHER_FAULT_KINDS = ("expired_credentials", "throttle_storm", "access_denied")
FAULT_KINDS = API_FAULT_KINDS + TASK_FAULT_KINDS + OTHER_FAULT_KINDS

START_FAILURES = {
    "CannotPullContainerError": (
        "CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to resolve ref "
        "{image}: not found"
    ),
    "ResourceInitializationError": (
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
        "failed: unable to retrieve secret from asm: service call has been retried 5 time(s): "
        "failed to fetch secret: AccessDeniedException"
    ),
    "NetworkInterfaceTimeout": "Timeout waiting for network interface provisioning to complete.",
}


@dataclass
class _Pending:
    kind: str
    remaining: int
    api: str | None = None
    reason: str | None = None
    seconds: float | None = None


class FaultPlan:
    """Answers "should this call or task fail, and how?" and counts the answers."""

    def __init__(self, settings: Faults, rng: random.Random) -> None:
        self.settings = settings
        self._rng = rng
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._credentials_expired_until = 0.0
        self.injected: Counter[str] = Counter()

    # -- injection --------------------------------------------------------------------------
    def inject(
        self,
        kind: str,
        *,
        api: str | None = None,
        count: int = 1,
        reason: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """Queue a one-shot fault. Task-targeted faults (by ARN) are applied by the ECS service."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if kind == "fail_to_start" and reason is not None and reason not in START_FAILURES:
            raise ValueError(f"unknown start failure {reason!r}; known: {', '.join(START_FAILURES)}")
        with self._lock:
            if kind == "expired_credentials":
                self._credentials_expired_until = time.monotonic() + (seconds or 5.0)
                self.injected[kind] += 1
                return
            self._pending.append(_Pending(kind, max(1, count), api, reason, seconds))

    def _take(self, kind: str, api: str | None = None) -> _Pending | None:
        with self._lock:
            for item in self._pending:
                if item.kind == kind and (item.api is None or item.api == api):
                    item.remaining -= 1
                    if item.remaining <= 0:
                        self._pending.remove(item)
                    self.injected[kind] += 1
                    return item
        return None

    def _draw(self, kind: str, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            hit = self._rng.random() < probability
            if hit:
                self.injected[kind] += 1
            return hit

    # -- questions asked per API call ------------------------------------------------------------
    def credentials_expired(self) -> bool:
        return time.monotonic() < self._credentials_expired_until

    def api_fault(self, api: str) -> ApiFaultKind | None:
        for kind in API_FAULT_KINDS:
            if self._take(kind, api):
                return kind
        probabilities = self.settings.api.get(api)
        if probabilities is None:
            return None
        for kind in API_FAULT_KINDS:
            if self._draw(kind, getattr(probabilities, kind)):
                return kind
        return None

    def access_denied(self, api: str) -> bool:
        """The caller is not allowed ``api`` this time (an injected ``access_denied`` fault)."""
        return self._take("access_denied", api) is not None

    def throttle_storm(self) -> float | None:
        item = self._take("throttle_storm")
        return (item.seconds or 2.0) if item else None

    # -- questions asked per task ----------------------------------------------------------------
    def start_failure(self, image: str) -> str | None:
        """The stoppedReason of a task that will fail to start, or None."""
        item = self._take("fail_to_start")
        if item is None and not self._draw("fail_to_start", self.settings.fail_to_start):
            return None
        with self._lock:
            name = (item.reason if item and item.reason else None) or self._rng.choice(sorted(START_FAILURES))
        return START_FAILURES[name].format(image=image)

    def invisible_for(self) -> float:
        item = self._take("describe_missing")
        if item:
            return item.seconds or 1.0
        if self.settings.describe_missing_for > 0:
            with self._lock:
                self.injected["describe_missing"] += 1
            return self.settings.describe_missing_for
        return 0.0

    def spot_interruption_after(self, is_spot: bool) -> float | None:
        """Seconds after start at which this task's Spot capacity is reclaimed, or None."""
        item = self._take("spot_interruption")
        if item:
            return item.seconds or 0.0
        if is_spot and self._draw("spot_interruption", self.settings.spot_interruption):
            with self._lock:
                return self.settings.spot_interruption_after.sample(self._rng)
        return None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "injected": dict(self.injected),
                "pending": [vars(p).copy() for p in self._pending],
                "credentials_expired": self.credentials_expired(),
            }
