"""RunTask's clientToken: one request per token, per cluster, remembered for 24 hours.

AWS ("Ensuring idempotency", ECS section): a repeated RunTask with the same token and the same
parameters returns the original tasks instead of starting new ones; the same token with different
parameters is a ``ConflictException`` naming the original tasks. Tokens are scoped to one cluster
(the same token in another cluster is a new request) and kept for 24 hours after the first call,
whether or not the tasks have stopped since.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ecs_emulator.errors import ConflictException

TOKEN_LIFETIME: Final = 24 * 3600.0  # seconds ("Ensuring idempotency")


@dataclass(frozen=True)
class _Entry:
    fingerprint: str
    task_arns: tuple[str, ...]
    expires: float


def fingerprint(req: Mapping[str, Any]) -> str:
    """What must match for a repeated request to be "the same request": everything but the token."""
    return json.dumps({k: v for k, v in req.items() if k != "clientToken"}, sort_keys=True, default=str)


class ClientTokens:
    """The tokens seen in the last 24 hours, keyed by (cluster ARN, token). Not thread-safe: callers lock."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        lifetime: float = TOKEN_LIFETIME,
        on_forget: Callable[[tuple[str, ...]], None] = lambda arns: None,
    ) -> None:
        """``on_forget`` hears the task ARNs of each token as it expires."""
        self._clock = clock
        self._lifetime = lifetime
        self._on_forget = on_forget
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._order: deque[tuple[float, tuple[str, str]]] = deque()

    def _forget_expired(self) -> None:
        now = self._clock()
        while self._order and self._order[0][0] <= now:
            _, key = self._order.popleft()
            entry = self._entries.get(key)
            if entry is not None and entry.expires <= now:
                del self._entries[key]
                self._on_forget(entry.task_arns)

    def replay(self, cluster_arn: str, token: str | None, req: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The task ARNs of the original request, or None when ``token`` is new in this cluster.

        Raises ``ConflictException`` when the token was used with different parameters.
        """
        self._forget_expired()
        if not token:
            return None
        entry = self._entries.get((cluster_arn, token))
        if entry is None:
            return None
        if entry.fingerprint != fingerprint(req):
            raise ConflictException(
                "The clientToken is already in use with a different RunTask request.",
                extra={"resourceIds": list(entry.task_arns)},
            )
        return entry.task_arns

    def remember(self, cluster_arn: str, token: str | None, req: Mapping[str, Any], task_arns: list[str]) -> None:
        self._forget_expired()
        if not token or not task_arns:
            return
        expires = self._clock() + self._lifetime
        key = (cluster_arn, token)
        self._entries[key] = _Entry(fingerprint(req), tuple(task_arns), expires)
        self._order.append((expires, key))
