"""Tracking by ECS events: an SQS consumer thread, and the slow reconciliation that keeps it honest.

``EventFeed`` runs supervised threads: ``receivers`` receivers that long-poll the queue (batches of
10) and hand each batch to the scheduler thread through a queue (``drain``), and ``deleters``
deleters that delete, in batches, the messages the scheduler thread has applied (``ack``). One
receiver takes at most 10 messages per round trip: at thousands of running tasks the stops of a
burst come faster than that, and a single receiver left the last stops of a burst seconds behind.
Several long polls at once keep a burst's events flowing; a long poll returns as soon as a message
is there, so idle receivers cost one request per 20 s each. A message is deleted only after
``sync()`` applied its event; one never acknowledged comes back after the queue's visibility
timeout and is applied again, harmlessly (``decide`` ignores a version it has already seen).

When the queue fails (AccessDenied, a queue that does not exist, throttling, the network) the feed
reports ``FeedDown`` once, keeps trying with backoff (the first receiver only: the others wait until
it reads again), and reports ``FeedUp`` when a receive works again; meanwhile the executor tracks by
polling, as without events.

``Reconciler`` decides, on the scheduler thread, which tasks to describe while events flow: every
task at least once per ``interval`` (events that were dropped, a rule that matches nothing), and a
task between two states (not RUNNING) that has been silent for ``silence`` seconds sooner.
"""

from __future__ import annotations

import functools
import heapq
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from airflow_ecs_executor.aws.client import DESCRIBE_BATCH, AwsCallError
from airflow_ecs_executor.aws.events import DELETE_BATCH, EventMessage, EventQueue
from airflow_ecs_executor.core.backoff import Backoff
from airflow_ecs_executor.runtime.workers import Supervisor, WorkerRestarted

_log = logging.getLogger(__name__)
RETRY: Final = Backoff(base=2.0, cap=60.0)  # between receives while the queue fails
RECEIVERS: Final = 4  # long polls at once: 40 messages per round trip
DELETERS: Final = 2
# A task in one of these statuses may stay so for hours without an event: only the sweep looks at it.
QUIET_STATUSES: Final = frozenset({"RUNNING"})


@dataclass(frozen=True)
class EventsReceived:
    """One ReceiveMessage batch."""

    messages: Sequence[EventMessage]


@dataclass(frozen=True)
class FeedDown:
    """The queue cannot be read: tracking falls back to polling until ``FeedUp``."""

    error: str


@dataclass(frozen=True)
class FeedUp:
    """The queue can be read again (or for the first time)."""


FeedResult = EventsReceived | FeedDown | FeedUp | WorkerRestarted


class EventFeed:
    """The receiver and deleter threads of one SQS queue."""

    def __init__(
        self,
        events: EventQueue,
        *,
        wait_seconds: float = 20.0,
        retry: Backoff = RETRY,
        rng: random.Random | None = None,
        receivers: int = RECEIVERS,
        deleters: int = DELETERS,
    ) -> None:
        if receivers < 1 or deleters < 1:
            raise ValueError("an event feed needs at least one receiver and one deleter")
        self._events = events
        self._wait = wait_seconds
        self._retry = retry
        self._rng = rng or random.Random()
        self._results: queue.SimpleQueue[FeedResult] = queue.SimpleQueue()
        self._acks: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._state = threading.Lock()  # guards _up and _failures, shared by the receivers
        self._up = False  # the receivers' view: the last receive worked
        self._readable = threading.Event()  # set while _up: the other receivers poll only then
        self._failures = 0
        self._deleters = deleters
        self.healthy = False  # set by the scheduler thread from FeedUp / FeedDown
        loops: dict[str, Callable[[], None]] = {"ecs-executor-events": functools.partial(self._receive_loop, True)}
        for n in range(1, receivers):
            loops[f"ecs-executor-events-{n}"] = functools.partial(self._receive_loop, False)
        loops["ecs-executor-events-delete"] = self._delete_loop
        for n in range(1, deleters):
            loops[f"ecs-executor-events-delete-{n}"] = self._delete_loop
        self._supervisor = Supervisor(loops, self._closed, self._results.put)

    def ensure_alive(self) -> list[str]:
        return self._supervisor.ensure_alive()

    # -- the scheduler thread's side ----------------------------------------------------------
    def drain(self, limit: int = 1_000) -> list[FeedResult]:
        out: list[FeedResult] = []
        while len(out) < limit:
            try:
                out.append(self._results.get_nowait())
            except queue.Empty:
                break
        return out

    def ack(self, receipts: Sequence[str]) -> None:
        """These messages' events were applied: delete them."""
        for receipt in receipts:
            self._acks.put(receipt)

    def close(self, timeout: float = 5.0) -> None:
        self._closed.set()
        self._readable.set()  # wakes the receivers waiting for the queue to be readable
        for _ in range(self._deleters):
            self._acks.put("")  # wakes the deleters
        # The deleters finish the deletes asked for; a receiver in a long poll is not waited for (it
        # may still hand a batch over, which nobody applies nor deletes: it comes back to the queue).
        deadline = time.monotonic() + timeout
        for thread in self._supervisor.threads():
            if thread.name.startswith("ecs-executor-events-delete"):
                thread.join(timeout=max(0.0, deadline - time.monotonic()))

    # -- threads ------------------------------------------------------------------------------
    def _receive_loop(self, first: bool) -> None:
        """One receiver; the ``first`` also probes a queue that fails, the others wait until it reads."""
        while not self._closed.is_set():
            if not first and not self._readable.is_set():
                self._readable.wait(self._wait or 1.0)
                continue
            with self._state:
                up = self._up
            try:
                # While down (or at start) a short receive, so a working queue is known at once.
                messages = self._events.receive(self._wait if up else 0)
            except AwsCallError as exc:
                with self._state:
                    self._failures += 1
                    failures = self._failures
                    if self._up or failures == 1:
                        self._results.put(FeedDown(f"{exc.code}: {exc.message}"))
                    self._up = False
                    self._readable.clear()
                self._closed.wait(self._retry.delay(failures, self._rng) + 0.5)
                continue
            with self._state:
                self._failures = 0
                if not self._up:
                    self._up = True
                    self._readable.set()
                    self._results.put(FeedUp())
            if messages:
                self._results.put(EventsReceived(messages))  # after close: never applied, so never deleted

    def _delete_loop(self) -> None:
        while not self._closed.is_set():
            receipts = [self._acks.get()]
            while len(receipts) < DELETE_BATCH:  # one call per round: the deleters work side by side
                try:
                    receipts.append(self._acks.get_nowait())
                except queue.Empty:
                    break
            receipts = [r for r in receipts if r]
            if not receipts:
                continue
            try:
                failed = self._events.delete(receipts)
            except AwsCallError as exc:
                # Not deleted: the messages come back after the visibility timeout and are applied
                # again without effect. The receiver reports a queue that stays broken.
                _log.warning("deleting %d event message(s) failed (%s); they will be seen again", len(receipts), exc)
                continue
            if failed:
                _log.warning("SQS did not delete %d event message(s); they will be seen again", len(failed))


class Reconciler:
    """Which watched tasks to describe now, while events are the main source of news."""

    def __init__(self, interval: float, silence: float, *, batch: int = DESCRIBE_BATCH) -> None:
        self.interval = interval
        self.silence = silence
        self.batch = batch  # ARNs per DescribeTasks call: short calls are filled up to it
        self._heard: dict[str, tuple[float, str | None]] = {}  # ARN -> (last news or describe asked, status)

    def heard(self, arn: str, status: str | None, now: float) -> None:
        """An event or a DescribeTasks answer told us where the task stands."""
        self._heard[arn] = (now, status)

    def ask(self, arn: str) -> None:
        """Describe this task at the next round: an adopted task, whose past events went elsewhere."""
        self._heard[arn] = (float("-inf"), None)

    def due(self, watch: Mapping[str, set[str]], now: float) -> dict[str, list[str]]:
        """Per cluster, the ARNs to describe now; each is counted as asked, so it is not asked again at once.

        A DescribeTasks call takes 100 ARNs and costs the same with 3: when a cluster's due tasks
        leave the last call short, it is filled with the tasks that will be due soonest (among those
        last heard of at least half an interval ago). Tasks launched over a few minutes fall due a
        few at a time; filled calls describe each a little early instead of sending a call for each
        few (at 5,000 running tasks, calls of about 66 ARNs on average before).
        """
        out: dict[str, list[str]] = {}
        live: set[str] = set()
        for cluster, arns in watch.items():
            picked: list[str] = []
            soon: list[tuple[float, str]] = []  # not due yet, heard of at least half an interval ago
            for arn in arns:
                live.add(arn)
                when, status = self._heard.get(arn) or (None, None)
                if when is None:
                    self._heard[arn] = (now, None)  # first seen here: the launch result told us
                    continue
                quiet = status in QUIET_STATUSES
                if now - when >= self.interval or (not quiet and now - when >= self.silence):
                    picked.append(arn)
                elif now - when >= self.interval / 2:
                    soon.append((when, arn))
            room = -len(picked) % self.batch
            if picked and room and soon:
                picked += [arn for _, arn in heapq.nsmallest(room, soon)]
            for arn in picked:
                self._heard[arn] = (now, self._heard[arn][1])
            if picked:
                out[cluster] = picked
        if len(self._heard) > 2 * len(live) + 100:
            self._heard = {arn: v for arn, v in self._heard.items() if arn in live}
        return out
