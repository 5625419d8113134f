"""The I/O side of the executor.

The scheduler thread hands over launch jobs (``submit``; a job's RunTask request may be a recipe that
the launcher thread builds, so serialising and validating it costs the scheduler nothing), the set of task ARNs to watch
(``track``) and stop requests (``stop``); it collects results with ``drain`` and never waits on AWS.
A launcher thread paces RunTask calls with an adaptive token bucket (``core.ratelimit``: CUBIC, cut
on throttling, climbing back while calls succeed) and runs them on a pool whose calls in flight
follow the measured RunTask latency (rate x latency, bounded); a
tracker thread describes the watched ARNs in batches of at most 100. Workers own no executor state:
every result goes into one queue and the scheduler thread decides what it means.

Both threads are supervised: an exception that escapes a loop is logged with its traceback, reported
as ``WorkerRestarted`` and the loop starts again; ``ensure_alive`` (called from every ``sync``)
restarts a thread that died any other way. Jobs are keyed by queueing id: one hand-over of a workload.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from airflow_ecs_executor.aws.client import DESCRIBE_BATCH, AwsCallError, EcsClient, LaunchResult
from airflow_ecs_executor.aws.requests import RequestError
from airflow_ecs_executor.core.classify import LaunchErrorKind, TaskObservation
from airflow_ecs_executor.core.ratelimit import AdaptiveBucket, InFlightLimit, TokenBucket, saved_burst

_log = logging.getLogger(__name__)
MIN_IN_FLIGHT = 4  # RunTask calls under way at once, at least (unless launch_concurrency is lower)

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
    queueing: str = field(compare=False)
    attempt: int = field(compare=False)
    request: RequestSource = field(compare=False, repr=False)  # holds the JWT: never logged


@dataclass(frozen=True)
class LaunchDone:
    """The outcome of one RunTask call, or why its request could not be built (``invalid``)."""

    queueing: str
    attempt: int
    result: LaunchResult | None
    error: AwsCallError | None
    seconds: float
    invalid: str | None = None  # the request cannot be sent: the message is for the Airflow UI
    withdrawn: bool = False  # never sent: launching stopped (end()) or the launch was cancelled


@dataclass(frozen=True)
class Described:
    """What one DescribeTasks batch said."""

    cluster: str
    observations: Sequence[TaskObservation]
    missing: Sequence[str]
    error: AwsCallError | None = None
    # ARNs DescribeTasks refuses to describe at all (another account or Region, for instance), with
    # AWS's words; found by splitting a refused batch so one bad ARN never hides the others.
    unreadable: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class StopDone:
    """The outcome of one StopTask call."""

    arn: str
    error: AwsCallError | None


@dataclass(frozen=True)
class WorkerRestarted:
    """A worker thread failed and was started again; ``error`` is the exception in words."""

    name: str
    error: str


Result = LaunchDone | Described | StopDone | WorkerRestarted
RESTART_PAUSE = 1.0  # seconds before a failed worker loop starts again
STOP_ATTEMPTS = 6  # StopTask calls per stop (about 15 s of backoff in all)


class Supervisor:
    """Runs named loops on daemon threads until ``closed`` is set.

    A loop that raises is logged with its traceback, reported as ``WorkerRestarted`` and started
    again after ``RESTART_PAUSE``; ``ensure_alive`` starts again a thread that is gone.
    """

    def __init__(
        self,
        loops: Mapping[str, Callable[[], None]],
        closed: threading.Event,
        report: Callable[[WorkerRestarted], None],
    ) -> None:
        self._loops = dict(loops)
        self._closed = closed
        self._report = report
        self._threads: dict[str, threading.Thread] = {}
        for name in self._loops:
            self._start(name)

    def threads(self) -> list[threading.Thread]:
        return list(self._threads.values())

    def _start(self, name: str) -> None:
        thread = threading.Thread(target=self._run, args=(name,), name=name, daemon=True)
        self._threads[name] = thread
        thread.start()

    def _run(self, name: str) -> None:
        while not self._closed.is_set():
            try:
                self._loops[name]()
                return  # a loop returns only when its owner closes
            except Exception as exc:
                _log.exception("%s failed; starting it again in %.0f s", name, RESTART_PAUSE)
                self._report(WorkerRestarted(name, f"{type(exc).__name__}: {exc}"))
                self._closed.wait(RESTART_PAUSE)

    def ensure_alive(self) -> list[str]:
        """Start again any thread that died; returns their names."""
        if self._closed.is_set():
            return []
        dead = [name for name, thread in self._threads.items() if not thread.is_alive()]
        for name in dead:
            _log.error("%s is not running; starting it again", name)
            self._report(WorkerRestarted(name, "the thread had stopped"))
            self._start(name)
        return dead


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
        # The launch rate adapts to throttling (other schedulers and ECS users share the account's
        # quota); the calls in flight follow the measured RunTask latency, up to launch_concurrency.
        self._bucket = AdaptiveBucket(launch_rate, saved_burst(launch_rate), clock(), min_rate=min(0.5, launch_rate))
        self._in_flight = InFlightLimit(min(MIN_IN_FLIGHT, launch_concurrency), launch_concurrency)
        self._describe_bucket = TokenBucket(describe_rate, max(1.0, describe_rate), clock())
        self._bucket_lock = threading.Lock()
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
        self._holding = False  # end(): nothing more is sent
        self._cancelled: set[str] = set()  # queueings whose job may be in the launcher's hands
        self._in_hand: set[str] = set()  # queueings whose job the launcher took and has not sent or withdrawn
        self.launches_in_flight = 0
        self._stops: set[Future[None]] = set()
        self._stops_lock = threading.Lock()
        self._supervisor = Supervisor(
            {"ecs-executor-launcher": self._launch_loop, "ecs-executor-tracker": self._track_loop},
            self._closed,
            self._results.put,
        )

    def ensure_alive(self) -> list[str]:
        """Start again any worker thread that died; returns their names (the scheduler thread calls this)."""
        return self._supervisor.ensure_alive()

    # -- the scheduler thread's side: never blocks on AWS ---------------------------------------
    def submit(self, queueing: str, attempt: int, request: RequestSource, *, priority: int, delay: float = 0.0) -> None:
        job = LaunchJob(priority, next(self._seq), self._clock() + delay, queueing, attempt, request)
        with self._cond:
            if self._holding:  # launching has stopped (end()): it comes straight back, unsent
                self._results.put(LaunchDone(queueing, attempt, None, None, 0.0, withdrawn=True))
                return
            if delay > 0:
                heapq.heappush(self._delayed, (job.not_before, job.seq, job))
            else:
                heapq.heappush(self._jobs, job)
            self._cond.notify()

    def cancel(self, queueing: str) -> int:
        """Drop the queueing's launch if it has not been sent yet; returns how many jobs were dropped.

        A job the launcher already holds (waiting for a rate token or a slot) is withdrawn before it
        is sent. A launch already sent cannot be recalled: its result still arrives, and the
        executor stops the task it started.
        """
        with self._cond:
            jobs = [j for j in self._jobs if j.queueing != queueing]
            delayed = [d for d in self._delayed if d[2].queueing != queueing]
            dropped = len(self._jobs) - len(jobs) + len(self._delayed) - len(delayed)
            if dropped:
                heapq.heapify(jobs)
                heapq.heapify(delayed)
                self._jobs, self._delayed = jobs, delayed
            elif queueing in self._in_hand:
                self._cancelled.add(queueing)
            return dropped

    def withdraw_all(self) -> list[str]:
        """Stop launching (the scheduler is ending): the queueings whose launches were never sent.

        A job the launcher holds at this moment comes back as a ``LaunchDone`` with ``withdrawn``.
        """
        with self._cond:
            self._holding = True
            ids = [j.queueing for j in self._jobs] + [d[2].queueing for d in self._delayed]
            self._jobs, self._delayed = [], []
            self._cond.notify_all()
            return ids

    def launches_unsettled(self) -> int:
        """RunTask calls sent or about to be sent whose results have not been queued yet."""
        with self._cond:
            return len(self._in_hand) + self.launches_in_flight

    def track(self, arns_by_cluster: Mapping[str, frozenset[str]]) -> None:
        with self._watch_lock:
            self._watch = dict(arns_by_cluster)

    def stop(self, cluster: str, arn: str, reason: str) -> None:
        if self._closed.is_set():
            _log.warning("not stopping ECS task %s: the executor's workers are already shut down", arn)
            return
        future = self._pool.submit(self._stop, cluster, arn, reason)
        with self._stops_lock:
            self._stops.add(future)
        future.add_done_callback(self._stop_settled)

    def _stop_settled(self, future: Future[None]) -> None:
        with self._stops_lock:
            self._stops.discard(future)

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

    def close(self, timeout: float = 10.0) -> None:
        """Stop the threads; StopTask calls already asked for are waited for, up to ``timeout`` seconds."""
        deadline = self._clock() + timeout
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._supervisor.threads():
            t.join(timeout=max(0.0, deadline - self._clock()))
        with self._stops_lock:
            stops = list(self._stops)
        _, unfinished = wait(stops, timeout=max(0.0, deadline - self._clock()))
        if unfinished:
            _log.warning("%d StopTask call(s) did not finish within %.0f s", len(unfinished), timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- launcher -------------------------------------------------------------------------------
    def _next_job(self) -> LaunchJob | None:
        with self._cond:
            while not self._closed.is_set():
                now = self._clock()
                while self._delayed and self._delayed[0][0] <= now:
                    heapq.heappush(self._jobs, heapq.heappop(self._delayed)[2])
                if self._jobs and not self._holding:
                    job = heapq.heappop(self._jobs)
                    self._in_hand.add(job.queueing)
                    return job
                self._cond.wait(min(1.0, self._delayed[0][0] - now) if self._delayed else 1.0)
        return None

    def _release_hand(self, job: LaunchJob, *, sent: bool) -> bool:
        """The held job is sent now (True), or withdrawn because launching stopped or it was cancelled."""
        with self._cond:
            self._in_hand.discard(job.queueing)
            withdrawn = self._holding or job.queueing in self._cancelled
            self._cancelled.discard(job.queueing)
            if sent and not withdrawn:
                self.launches_in_flight += 1
                return True
        self._results.put(LaunchDone(job.queueing, job.attempt, None, None, 0.0, withdrawn=True))
        return False

    def _build(self, job: LaunchJob) -> Request | None:
        """The job's request, built here on the launcher thread; None (and a result) when it cannot be."""
        if not callable(job.request):
            return job.request
        try:
            return job.request()
        except RequestError as exc:
            invalid = str(exc)
        except Exception as exc:  # a bug in our code: fail this workload loudly, never retry it
            _log.error("building the RunTask request for %s failed unexpectedly: %s", job.queueing, type(exc).__name__)
            # The type only: the text of an unexpected exception could quote the command and its JWT.
            invalid = f"internal error ({type(exc).__name__}) while building the RunTask request: an executor bug"
        with self._cond:
            self._in_hand.discard(job.queueing)
        self._results.put(LaunchDone(job.queueing, job.attempt, None, None, 0.0, invalid=invalid))
        return None

    def _launch_loop(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                self._send(job)
            except Exception as exc:  # a bug in our own code: this workload fails, never waits for ever
                self._drop_held(job, exc)
                raise  # the supervisor logs it, reports it and starts the launcher again

    def _drop_held(self, job: LaunchJob, exc: Exception) -> None:
        """A job the launcher took and neither sent nor withdrew ends as invalid instead of staying held."""
        with self._cond:
            held = job.queueing in self._in_hand
            self._in_hand.discard(job.queueing)
        if held:
            # The type only: the text of an unexpected exception could quote the command and its JWT.
            invalid = f"internal error ({type(exc).__name__}) while launching: an executor bug"
            self._results.put(LaunchDone(job.queueing, job.attempt, None, None, 0.0, invalid=invalid))

    def _send(self, job: LaunchJob) -> None:
        request = self._build(job)
        if request is None:
            return  # no token or slot spent on a request that cannot be sent
        while not self._closed.is_set():
            with self._bucket_lock:
                pause = self._bucket.take(self._clock())
            if pause <= 0:
                break
            self._closed.wait(pause)
        if not self._wait_for_slot():
            self._release_hand(job, sent=False)
            return
        if not self._release_hand(job, sent=True):
            return
        try:
            self._pool.submit(self._launch, job, request)
        except RuntimeError:  # the pool shut down meanwhile: the launch was never sent
            with self._cond:
                self.launches_in_flight -= 1
                self._cond.notify_all()
            self._results.put(LaunchDone(job.queueing, job.attempt, None, None, 0.0, withdrawn=True))

    def _wait_for_slot(self) -> bool:
        """Wait until fewer calls are under way than the latency asks for; False when the workers close."""
        with self._cond:
            while not self._closed.is_set():
                with self._bucket_lock:
                    limit = self._in_flight.limit(self._bucket.rate(self._clock()))
                if self.launches_in_flight < limit:
                    return True
                self._cond.wait(0.5)
        return False

    def launch_pacing(self) -> tuple[float, int]:
        """The launch rate allowed now and the RunTask calls allowed in flight (for metrics and tests)."""
        with self._bucket_lock:
            rate = self._bucket.rate(self._clock())
            return rate, self._in_flight.limit(rate)

    def _launch(self, job: LaunchJob, request: Request) -> None:
        started = self._clock()
        try:
            result: LaunchResult | None = self._ecs.run_task(request)
            error = None
        except AwsCallError as exc:
            result, error = None, exc
        except Exception as exc:  # a bug in our code: fail this workload loudly, never retry it
            _log.error("RunTask for %s failed unexpectedly: %s", job.queueing, type(exc).__name__)
            result, error = None, AwsCallError(LaunchErrorKind.REJECTED, type(exc).__name__, "internal error")
        ended = self._clock()
        with self._bucket_lock:
            self._in_flight.observe(ended - started)
            if error is not None and error.kind is LaunchErrorKind.THROTTLED:
                # One cut per episode: calls sent before the cut and throttled after it change nothing.
                # The throttled call itself is sent again after its own short backoff; no one else waits.
                self._bucket.throttled(ended, started)
        self._results.put(LaunchDone(job.queueing, job.attempt, result, error, ended - started))
        with self._cond:
            self.launches_in_flight -= 1
            self._cond.notify_all()

    # -- tracker --------------------------------------------------------------------------------
    def _track_loop(self) -> None:
        # poll_interval is the period of the rounds: a round starts poll_interval after the last one
        # started, or at once when that one (paced by describe_rate) took longer.
        next_round = self._clock() + self._poll_interval
        while not self._closed.wait(max(0.0, next_round - self._clock())):
            next_round = self._clock() + self._poll_interval
            with self._watch_lock:
                watch = dict(self._watch)
            futures = []
            for cluster, arns in watch.items():
                ordered = sorted(arns)
                for i in range(0, len(ordered), DESCRIBE_BATCH):
                    if not self._describe_token():
                        return
                    futures.append(
                        self._pool.submit(self._describe_into_queue, cluster, ordered[i : i + DESCRIBE_BATCH])
                    )
            for f in futures:
                f.result()

    def describe(self, arns_by_cluster: Mapping[str, Sequence[str]]) -> None:
        """One DescribeTasks round over these ARNs (batches of 100), beside the tracker's polling.

        Used while ECS events track the tasks: the reconciliation describes a few tasks now and then.
        Paced by the same bucket as the tracker; results arrive as ``Described``.
        """
        if self._closed.is_set():
            return
        for cluster, arns in arns_by_cluster.items():
            ordered = sorted(arns)
            for i in range(0, len(ordered), DESCRIBE_BATCH):
                self._pool.submit(self._paced_describe, cluster, ordered[i : i + DESCRIBE_BATCH])

    def _describe_token(self) -> bool:
        """Wait for a DescribeTasks token and take it (describe_rate); False once closing."""
        while True:
            with self._bucket_lock:
                pause = self._describe_bucket.take(self._clock())
            if pause <= 0:
                return True
            if self._closed.wait(pause):
                return False

    def _paced_describe(self, cluster: str, arns: list[str]) -> None:
        if self._describe_token():
            self._describe_into_queue(cluster, arns)

    def _describe(self, cluster: str, arns: list[str]) -> Described:
        try:
            seen, missing = self._ecs.describe_tasks(cluster, arns)
            return Described(cluster, seen, missing)
        except AwsCallError as exc:
            if exc.code != "InvalidParameterException":
                # Throttled, 5xx, credentials, AccessDenied, network: nothing is known of these tasks;
                # they are kept and the next poll tries again.
                return Described(cluster, [], [], exc)
            if len(arns) == 1:
                return Described(cluster, [], [], unreadable=[(arns[0], f"{exc.code}: {exc.message}")])
        # DescribeTasks refuses the whole call for one ARN it cannot describe (InvalidParameterException
        # for an ARN of another account or Region): split the batch so the others are still seen, each
        # half's call paced by describe_rate like any other.
        half = len(arns) // 2
        left, right = self._paced_half(cluster, arns[:half]), self._paced_half(cluster, arns[half:])
        return Described(
            cluster,
            [*left.observations, *right.observations],
            [*left.missing, *right.missing],
            left.error or right.error,
            [*left.unreadable, *right.unreadable],
        )

    def _paced_half(self, cluster: str, arns: list[str]) -> Described:
        if not self._describe_token():  # closing: nothing learnt, nothing concluded
            return Described(cluster, [], [])
        return self._describe(cluster, arns)

    def _describe_into_queue(self, cluster: str, arns: list[str]) -> None:
        self._results.put(self._describe(cluster, arns))

    def _stop(self, cluster: str, arn: str, reason: str) -> None:
        """StopTask, sent again while AWS throttles or fails (a stop that never lands leaves a task running)."""
        for attempt in range(1, STOP_ATTEMPTS + 1):
            try:
                self._ecs.stop_task(cluster, arn, reason)
                self._results.put(StopDone(arn, None))
                return
            except AwsCallError as exc:
                retry = exc.kind in (LaunchErrorKind.THROTTLED, LaunchErrorKind.TRANSIENT, LaunchErrorKind.CREDENTIALS)
                if not retry or attempt == STOP_ATTEMPTS:
                    self._results.put(StopDone(arn, exc))
                    return
            time.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
