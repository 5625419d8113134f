"""The I/O side of the executor.

The scheduler thread hands over launch jobs (``submit``; a job's RunTask request may be a recipe that
the launcher thread builds, so serialising and validating it costs the scheduler nothing), the set of task ARNs to watch
(``track``) and stop requests (``stop``); it collects results with ``drain`` and never waits on AWS.
A launcher thread paces RunTask calls with a token bucket and runs them on a bounded pool; a
tracker thread describes the watched ARNs in batches of at most 100. Workers own no executor state:
every result goes into one queue and the scheduler thread decides what it means.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from airflow_ecs_executor.aws.client import DESCRIBE_BATCH, AwsCallError, EcsClient, LaunchResult
from airflow_ecs_executor.aws.requests import RequestError
from airflow_ecs_executor.core.classify import LaunchErrorKind, TaskObservation
from airflow_ecs_executor.core.ratelimit import TokenBucket

_log = logging.getLogger(__name__)
THROTTLE_PENALTY = 1.0  # seconds the launcher holds back after AWS throttled a RunTask

Request = Mapping[str, Any]
RequestSource = Request | Callable[[], Request]  # a built request, or a recipe the launcher builds


class LazyRequest:
    """A RunTask request built once, on first use, by whichever thread needs it first.

    A retry of the same launch attempt reuses the built request (same clientToken, same body).
    """

    def __init__(self, build: Callable[[], Request]) -> None:
        self._build: Callable[[], Request] | None = build
        self._value: Request | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Request:
        with self._lock:
            if self._value is None:
                assert self._build is not None
                self._value = self._build()
                self._build = None  # drop the workload it closed over
            return self._value


@dataclass(frozen=True, order=True)
class LaunchJob:
    """One RunTask to make. Ready jobs go out by priority (lower first), then in arrival order."""

    priority: int
    seq: int
    not_before: float = field(compare=False)
    workload_id: str = field(compare=False)
    attempt: int = field(compare=False)
    request: RequestSource = field(compare=False, repr=False)  # holds the JWT: never logged


@dataclass(frozen=True)
class LaunchDone:
    """The outcome of one RunTask call, or why its request could not be built (``invalid``)."""

    workload_id: str
    attempt: int
    result: LaunchResult | None
    error: AwsCallError | None
    seconds: float
    invalid: str | None = None  # the request cannot be sent: the message is for the Airflow UI


@dataclass(frozen=True)
class Described:
    """What one DescribeTasks batch said."""

    cluster: str
    observations: Sequence[TaskObservation]
    missing: Sequence[str]
    error: AwsCallError | None = None


@dataclass(frozen=True)
class StopDone:
    """The outcome of one StopTask call."""

    arn: str
    error: AwsCallError | None


Result = LaunchDone | Described | StopDone


class Workers:
    """The launcher and tracker threads and their pool."""

    def __init__(
        self,
        ecs: EcsClient,
        *,
        launch_rate: float,
        launch_concurrency: int,
        poll_interval: float = 2.0,
        describe_rate: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ecs = ecs
        self._clock = clock
        self._bucket = TokenBucket(launch_rate, max(1.0, launch_rate), clock())
        self._describe_bucket = TokenBucket(describe_rate, max(1.0, describe_rate), clock())
        self._bucket_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(launch_concurrency)
        self._pool = ThreadPoolExecutor(max_workers=launch_concurrency + 4, thread_name_prefix="ecs-executor-io")
        self._jobs: list[LaunchJob] = []  # ready now, by priority
        self._delayed: list[tuple[float, int, LaunchJob]] = []  # waiting for a backoff to pass
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._results: queue.SimpleQueue[Result] = queue.SimpleQueue()
        self._watch: dict[str, frozenset[str]] = {}
        self._watch_lock = threading.Lock()
        self._poll_interval = poll_interval
        self._closed = threading.Event()
        self.launches_in_flight = 0
        self._threads = [
            threading.Thread(target=self._launch_loop, name="ecs-executor-launcher", daemon=True),
            threading.Thread(target=self._track_loop, name="ecs-executor-tracker", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- the scheduler thread's side: never blocks on AWS ---------------------------------------
    def submit(
        self, workload_id: str, attempt: int, request: RequestSource, *, priority: int, delay: float = 0.0
    ) -> None:
        job = LaunchJob(priority, next(self._seq), self._clock() + delay, workload_id, attempt, request)
        with self._cond:
            if delay > 0:
                heapq.heappush(self._delayed, (job.not_before, job.seq, job))
            else:
                heapq.heappush(self._jobs, job)
            self._cond.notify()

    def cancel(self, workload_id: str) -> int:
        """Drop the workload's launches that have not been sent yet; returns how many were dropped.

        A launch already sent cannot be recalled: its result still arrives and the executor stops
        the task it started.
        """
        with self._cond:
            jobs = [j for j in self._jobs if j.workload_id != workload_id]
            delayed = [d for d in self._delayed if d[2].workload_id != workload_id]
            dropped = len(self._jobs) - len(jobs) + len(self._delayed) - len(delayed)
            if dropped:
                heapq.heapify(jobs)
                heapq.heapify(delayed)
                self._jobs, self._delayed = jobs, delayed
            return dropped

    def track(self, arns_by_cluster: Mapping[str, frozenset[str]]) -> None:
        with self._watch_lock:
            self._watch = dict(arns_by_cluster)

    def stop(self, cluster: str, arn: str, reason: str) -> None:
        if self._closed.is_set():
            _log.warning("not stopping ECS task %s: the executor's workers are already shut down", arn)
            return
        self._pool.submit(self._stop, cluster, arn, reason)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def drain(self, limit: int = 10_000) -> list[Result]:
        out: list[Result] = []
        while len(out) < limit:
            try:
                out.append(self._results.get_nowait())
            except queue.Empty:
                break
        return out

    def pending_launches(self) -> int:
        with self._cond:
            return len(self._jobs) + len(self._delayed)

    def describe_now(self, cluster: str, arns: Sequence[str]) -> list[Described]:
        """Describe ARNs synchronously (adoption at start only; never from sync())."""
        return [
            self._describe(cluster, list(arns[i : i + DESCRIBE_BATCH]), include_tags=True)
            for i in range(0, len(arns), DESCRIBE_BATCH)
        ]

    def close(self, timeout: float = 10.0) -> None:
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- launcher -------------------------------------------------------------------------------
    def _next_job(self) -> LaunchJob | None:
        with self._cond:
            while not self._closed.is_set():
                now = self._clock()
                while self._delayed and self._delayed[0][0] <= now:
                    heapq.heappush(self._jobs, heapq.heappop(self._delayed)[2])
                if self._jobs:
                    return heapq.heappop(self._jobs)
                self._cond.wait(min(1.0, self._delayed[0][0] - now) if self._delayed else 1.0)
        return None

    def _build(self, job: LaunchJob) -> Request | None:
        """The job's request, built here on the launcher thread; None (and a result) when it cannot be."""
        if not callable(job.request):
            return job.request
        try:
            return job.request()
        except RequestError as exc:
            invalid = str(exc)
        except Exception as exc:  # a bug in our code: fail this workload loudly, never retry it
            _log.exception("building the RunTask request for %s failed unexpectedly", job.workload_id)
            invalid = f"internal error while building the RunTask request: {type(exc).__name__}: {exc}"
        self._results.put(LaunchDone(job.workload_id, job.attempt, None, None, 0.0, invalid=invalid))
        return None

    def _launch_loop(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            request = self._build(job)
            if request is None:
                continue  # no token or slot spent on a request that cannot be sent
            while not self._closed.is_set():
                with self._bucket_lock:
                    wait = self._bucket.take(self._clock())
                if wait <= 0:
                    break
                self._closed.wait(wait)
            while not self._slots.acquire(timeout=0.5):
                if self._closed.is_set():
                    return
            if self._closed.is_set():
                return
            self.launches_in_flight += 1
            self._pool.submit(self._launch, job, request)

    def _launch(self, job: LaunchJob, request: Request) -> None:
        started = self._clock()
        try:
            result: LaunchResult | None = self._ecs.run_task(request)
            error = None
        except AwsCallError as exc:
            result, error = None, exc
            if exc.kind is LaunchErrorKind.THROTTLED:
                with self._bucket_lock:
                    self._bucket.penalise(self._clock(), THROTTLE_PENALTY)
        except Exception as exc:  # a bug in our code: fail this workload loudly, never retry it
            _log.exception("RunTask for %s failed unexpectedly", job.workload_id)
            result, error = None, AwsCallError(LaunchErrorKind.REJECTED, type(exc).__name__, f"internal error: {exc}")
        finally:
            self.launches_in_flight -= 1
            self._slots.release()
        self._results.put(LaunchDone(job.workload_id, job.attempt, result, error, self._clock() - started))

    # -- tracker --------------------------------------------------------------------------------
    def _track_loop(self) -> None:
        while not self._closed.wait(self._poll_interval):
            with self._watch_lock:
                watch = dict(self._watch)
            futures = []
            for cluster, arns in watch.items():
                ordered = sorted(arns)
                for i in range(0, len(ordered), DESCRIBE_BATCH):
                    with self._bucket_lock:
                        wait = self._describe_bucket.take(self._clock())
                    if wait > 0 and self._closed.wait(wait):
                        return
                    futures.append(
                        self._pool.submit(self._describe_into_queue, cluster, ordered[i : i + DESCRIBE_BATCH])
                    )
            for f in futures:
                f.result()

    def _describe(self, cluster: str, arns: list[str], *, include_tags: bool = False) -> Described:
        try:
            seen, missing = self._ecs.describe_tasks(cluster, arns, include_tags=include_tags)
            return Described(cluster, seen, missing)
        except AwsCallError as exc:
            return Described(cluster, [], [], exc)

    def _describe_into_queue(self, cluster: str, arns: list[str]) -> None:
        self._results.put(self._describe(cluster, arns))

    def _stop(self, cluster: str, arn: str, reason: str) -> None:
        try:
            self._ecs.stop_task(cluster, arn, reason)
            self._results.put(StopDone(arn, None))
        except AwsCallError as exc:
            self._results.put(StopDone(arn, exc))
