"""``EcsExecutor``: the only module that touches Airflow objects.

The scheduler thread calls ``_process_workloads``, ``sync`` and ``heartbeat``; none of them waits on
AWS. Each hand-over of a workload (a *queueing*) gets one record; what happens to it is decided by
``core.decide`` from events (launch results, observations, ticks, revokes, newer queueings, shutdown)
and this adapter carries out the actions it returns: it translates, it never decides.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from airflow.executors import workloads
from airflow.executors.base_executor import BaseExecutor

from airflow_ecs_executor import cli, redaction
from airflow_ecs_executor.aws import capacity
from airflow_ecs_executor.aws.arns import parse_task_arn
from airflow_ecs_executor.aws.client import EcsClient, Launched, PlacementFailed
from airflow_ecs_executor.aws.events import EventQueue
from airflow_ecs_executor.aws.requests import (
    RequestError,
    Sealer,
    WorkloadSpec,
    load_request_model,
    request_cluster,
)
from airflow_ecs_executor.aws.sealing import KmsSealer, PrefetchingSealer, launch_context
from airflow_ecs_executor.aws.session import client_config, ecs_client_config
from airflow_ecs_executor.check import connection_problems, refuse_quietly, startup_problems
from airflow_ecs_executor.config import ConfigError, ExecutorConfig, parse_config
from airflow_ecs_executor.connection import make_client, read_section
from airflow_ecs_executor.core import decide as core
from airflow_ecs_executor.core.backoff import Backoff
from airflow_ecs_executor.core.lifecycle import Phase, Record
from airflow_ecs_executor.logs import read_try_log
from airflow_ecs_executor.runtime import events as task_events
from airflow_ecs_executor.runtime.workers import (
    Described,
    LaunchDone,
    LazyRequest,
    StopDone,
    WorkerRestarted,
    Workers,
)

try:  # Airflow 3.2+
    from airflow.observability.stats import Stats
except ImportError:  # Airflow 3.1
    from airflow.stats import Stats  # type: ignore[no-redef,assignment,unused-ignore]

COMMAND = ("python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string")
TERMINATE_SECONDS = 30.0  # terminate(): how long StopTask calls are waited for
END_SECONDS = 30.0  # end(): how long RunTask calls already sent are waited for
GAUGE_SECONDS = 5.0  # phase gauges are counted at most this often (StatsD samples every 10 s)


@dataclass
class _Held:
    """One queueing the executor holds: Airflow's key, the launch spec, and the core's record."""

    key: Any
    ident: Any  # the task instance without its try number (or the callback key)
    spec: WorkloadSpec | None  # None for an adopted task whose workload is not known (yet)
    priority: int
    record: Record
    request: LazyRequest | None = None  # the current attempt's, built by the launcher thread
    executor_config: Mapping[str, Any] | None = None  # an adopted task instance's (not in its workload JSON)


def _workload_id(key: Any) -> str:
    if hasattr(key, "dag_id"):
        return f"{key.dag_id}/{key.task_id}/{key.run_id}/{key.map_index}/{key.try_number}"
    return f"callback/{key}"


def _identity(key: Any) -> Any:
    """The task instance a key names, whatever its try: newer queueings supersede older ones."""
    if hasattr(key, "dag_id"):
        return ("ti", key.dag_id, key.task_id, key.run_id, key.map_index)
    return ("callback", key)


def _command(workload: Any) -> tuple[Callable[[], list[str]], Callable[[], str]]:
    """The container command of a workload and its JSON, serialised when first asked: by the launcher thread."""

    @functools.cache
    def payload() -> str:
        return str(workload.model_dump_json())

    def command() -> list[str]:
        return [*COMMAND, payload()]

    return command, payload


def _spec_for(workload: Any, queueing: str) -> tuple[Any, WorkloadSpec, int]:
    """The key, launch spec and launch priority of an ExecuteTask or ExecuteCallback workload.

    Cheap on purpose: it runs on the scheduler thread; the workload is serialised later, off it.
    """
    callback_type: Any = getattr(workloads, "ExecuteCallback", ())  # Airflow 3.3+
    if isinstance(workload, workloads.ExecuteTask):
        ti = workload.ti
        key: Any = ti.key
        tags = {
            "dag_id": ti.dag_id,
            "task_id": ti.task_id,
            "run_id": ti.run_id,
            "map_index": str(ti.map_index),
            "try_number": str(ti.try_number),
        }
        queue, executor_config = ti.queue, ti.executor_config or {}
        priority = -int(ti.priority_weight or 0)  # higher weight launches first
    elif isinstance(workload, callback_type):
        key = workload.callback.key
        tags, queue, executor_config = {"callback_id": str(key)}, None, {}
        priority = -(2**31)  # callbacks complete existing work: before any task
    else:
        raise RuntimeError(f"EcsExecutor cannot run workloads of type {type(workload).__name__}")
    command, payload = _command(workload)
    spec = WorkloadSpec(
        workload_id=_workload_id(key),
        queueing=queueing,
        command=command,
        queue=queue,
        executor_config=executor_config,
        tags=tags,
        payload=payload,
    )
    return key, spec, priority


def _spec_from_command(command: Sequence[str], queueing: str) -> WorkloadSpec | None:
    """The launch spec of the workload an ECS task's command carries (to relaunch an adopted task)."""
    if "--json-string" not in command or command.index("--json-string") + 1 >= len(command):
        return None
    payload = command[command.index("--json-string") + 1]
    try:
        _, spec, _ = _spec_for(workloads.ExecuteTask.model_validate_json(payload), queueing)
    except Exception:
        return None
    return spec


class _QueueingIds:
    """Queueing ids: 128 random bits per hand-over, never equal to an earlier queueing's.

    Unique in this scheduler and in any other deployment in the account (the clientTokens derive
    from them, see aws.requests.client_token). Drawn from a generator seeded with 256 bits of the
    operating system's randomness, once per process (again in a forked child, which would otherwise
    repeat its parent's ids): ``uuid4`` asks the kernel for every id, about 0.4 ms each on a small
    VM, which a burst of 300 workloads paid in the scheduler's heartbeat before the first RunTask
    went out. The ids are no secret: they only have to be unique.
    """

    def __init__(self) -> None:
        self._rng = random.Random(os.urandom(32))
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._rng.seed(os.urandom(32))

    def __call__(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"


_new_queueing = _QueueingIds()


class EcsExecutor(BaseExecutor):
    """Runs every Airflow workload as one Amazon ECS task."""

    supports_ad_hoc_ti_run = True
    supports_callbacks = True
    supports_multi_team = True
    is_local = False
    serve_logs = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config: ExecutorConfig | None = None
        self._workers: Workers | None = None
        self._policy = core.Policy()
        self._held: dict[str, _Held] = {}  # queueing id -> what the executor holds for it
        self._current: dict[Any, str] = {}  # task instance (without try) -> its newest queueing
        self._by_arn: dict[str, str] = {}  # ECS task ARN -> queueing id
        # Kept up to date on each action, so a heartbeat costs what changed, not what is running:
        self._watch: dict[str, set[str]] = {}  # cluster -> ARNs the tracker describes
        self._watch_changed = False
        self._wakeups: list[tuple[float, int, str]] = []  # (when, seq, queueing): deadlines, soonest first
        self._seq = itertools.count()
        self._gauges_at = float("-inf")
        self._rng = random.Random()
        self._backoff = Backoff(base=1.0, cap=30.0)
        self._throttle_backoff = Backoff(base=0.25, cap=2.0)
        self._clock: Callable[[], float] = time.monotonic
        self._new_queueing: Callable[[], str] = _new_queueing
        self._ending = False
        self._event_logs_kept: list[Any] = []  # see _release_kept_event_logs
        self._sealer: PrefetchingSealer | None = None  # set in start() unless workload_delivery = plain
        self._feed: task_events.EventFeed | None = None  # ECS events from SQS, when configured
        self._reconciler: task_events.Reconciler | None = None
        # Task instances (without try) whose last try Spot interrupted: their next queueing runs on
        # on-demand capacity. Kept in this scheduler's memory only: a restart forgets it (docs/setup.md).
        self._on_demand_next: set[Any] = set()

    # ------------------------------------------------------------------ start and configuration
    def _section(self) -> dict[str, Any]:
        """The raw section: global values, overlaid for a team by its own section and variables."""
        return read_section(getattr(self, "team_name", None))

    def _refuse(self, exc: ConfigError) -> ConfigError:
        """Log the problems, each with its fix, and have the process end on that list, not on a traceback.

        Airflow's scheduler logs whatever ``start()`` raises with its traceback and lets it end the
        process; the list is logged here first, and Python's last word for this error is the list alone.
        """
        self.log.error("%s", exc)
        refuse_quietly(exc)
        return exc

    def start(self) -> None:
        redaction.install()
        try:
            self.config = parse_config(self._section())
            problems = connection_problems(self.config, make_client)
            if problems:
                raise ConfigError(problems)
        except ConfigError as exc:
            raise self._refuse(exc) from None
        self._policy = core.Policy(
            max_launch_attempts=self.config.max_launch_attempts,
            launch_timeout=self.config.launch_timeout,
            missing_grace=self.config.missing_grace,
        )
        client = make_client(self.config, "ecs", config=ecs_client_config(self.config.launch_concurrency))
        self._sealer = self._make_sealer(self.config)
        if self.config.check_health_on_startup:
            problems = startup_problems(self.config, make_client)
            if problems:
                raise self._refuse(ConfigError(problems))
        load_request_model()
        self._workers = Workers(
            EcsClient(client, self.config.cluster),
            launch_rate=self.config.launch_rate,
            launch_concurrency=self.config.launch_concurrency,
            poll_interval=self.config.poll_interval,
            describe_rate=self.config.describe_rate,
        )
        self._start_events()
        self.log.info(
            "EcsExecutor started: cluster %s, task definition %s, launch rate %.1f/s",
            self.config.cluster,
            self.config.task_definition,
            self.config.launch_rate,
        )

    @staticmethod
    def _make_sealer(cfg: ExecutorConfig) -> PrefetchingSealer | None:
        """Workload delivery: a KMS sealer (the default), or None for plain delivery."""
        if cfg.workload_delivery == "plain" or not cfg.workload_kms_key:
            return None
        # Standard retries: a throttled or failed GenerateDataKey is tried again before a launch gives up.
        kms = make_client(cfg, "kms", config=client_config(attempts=5, read_timeout=10, pool=cfg.launch_concurrency))
        return PrefetchingSealer(KmsSealer(kms, cfg.workload_kms_key), workers=cfg.launch_concurrency)

    @property
    def _cfg(self) -> ExecutorConfig:
        if self.config is None:
            raise RuntimeError("EcsExecutor.start() has not run")
        return self.config

    @property
    def _io(self) -> Workers:
        if self._workers is None:
            raise RuntimeError("EcsExecutor.start() has not run")
        return self._workers

    @staticmethod
    def get_cli_commands() -> list[Any]:
        """``airflow ecs-executor ...`` for Airflow 3.1, which asks the executor class for its commands."""
        return cli.get_cli_commands()

    # ------------------------------------------------------------------ logs (called in the API server)
    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        """A running try's container output, read from its ECS task's CloudWatch Logs stream.

        The API server calls this on an executor it never started; the configuration is read here.
        """
        return read_try_log(ti, try_number, self._section())

    # ------------------------------------------------------------------ accepting workloads
    def _process_workloads(self, workload_items: Sequence[Any]) -> None:
        for workload in workload_items:
            key, spec, priority = _spec_for(workload, self._new_queueing())
            if hasattr(key, "dag_id"):
                self.queued_tasks.pop(key, None)
            else:
                self.queued_callbacks.pop(key, None)
            self.running.add(key)
            self._accept(key, spec, priority)

    def _accept(self, key: Any, spec: WorkloadSpec, priority: int) -> None:
        cfg = self._cfg
        ident = _identity(key)
        ec = spec.executor_config
        cluster = str(ec.get("cluster") or cfg.cluster) if isinstance(ec, Mapping) else cfg.cluster
        container = cfg.profile_for(spec.queue).container_name or cfg.container_name
        if hasattr(key, "dag_id"):
            # Airflow keeps the previous queueing's ARN in external_executor_id until told otherwise;
            # cleared now, so a scheduler restart before this launch is recorded never adopts that task.
            self.running_state(key, None)
        now = self._clock()
        try:
            plan = capacity.spot_plan(cfg, ec)
        except RequestError:  # the launch request reports it (and fails the task) on the launcher thread
            plan = capacity.spot_plan(cfg, None)
        # A Spot interruption of the previous try sends this one to on-demand capacity (if its plan says so).
        record, actions = core.accept(
            spec.queueing,
            spec.workload_id,
            cluster=cluster,
            container=container,
            now=now,
            policy=self._policy,
            spot=capacity.includes_spot(capacity.strategy_of(cfg, spec)),
            plan=plan,
            on_demand=ident in self._on_demand_next,
        )
        self._on_demand_next.discard(ident)
        self._hold(_Held(key, ident, spec, priority, record), actions)

    def _hold(self, held: _Held, actions: Sequence[core.Action]) -> None:
        """Hold a new queueing; an earlier queueing of the same task instance is superseded by it.

        A reschedule-mode sensor's next poke, a resumed deferral, a newer try: the earlier queueing
        must never report over this one (Airflow would apply its final state to the new queueing).
        """
        previous = self._current.get(held.ident)
        self._held[held.record.queueing] = held
        self._current[held.ident] = held.record.queueing
        if previous is not None:
            self._decide(previous, core.Superseded())
        self._apply(held, actions)

    # ------------------------------------------------------------------ decisions and their actions
    def _decide(self, queueing: str, event: core.Event) -> None:
        held = self._held.get(queueing)
        if held is None:
            return
        record, actions = core.decide(held.record, event, self._clock(), self._policy)
        held.record = record
        self._apply(held, actions)

    def _apply(self, held: _Held, actions: Sequence[core.Action]) -> None:
        for action in actions:
            self._carry_out(held, action)
        if held.record.done:
            self._forget(held)

    def _carry_out(self, held: _Held, action: core.Action) -> None:
        rec = held.record
        match action:
            case core.Launch():
                self._send_launch(held, action)
            case core.CancelLaunch():
                self._io.cancel(rec.queueing)
            case core.StopTask(cluster=cluster, arn=arn, reason=reason):
                self._io.stop(cluster, arn, reason)
            case core.Watch(cluster=cluster, arn=arn):
                self._by_arn[arn] = rec.queueing
                self._watch.setdefault(cluster, set()).add(arn)
                self._watch_changed = True
            case core.Unwatch(cluster=cluster, arn=arn):
                self._unwatch(rec.queueing, cluster, arn)
            case core.Running(arn=arn):
                self.running_state(held.key, arn)
            case core.Report(success=True):
                self.log.info("%s succeeded (ECS task %s)", rec.workload_id, rec.task_arn)
                self.success(held.key, rec.task_arn)
            case core.Report(reason=reason):
                self.log.warning("%s failed: %s", rec.workload_id, reason)
                self.fail(held.key, reason)
                self._task_event(held, "ecs task failed", reason or "unknown reason")
            case core.Release(why=why):
                self.log.info("%s [%s] released: %s", rec.workload_id, rec.queueing, why)
                newest = self._held.get(self._current.get(held.ident, ""))
                if newest is None or newest is held or newest.key != held.key:
                    self.running.discard(held.key)  # the key is not held by a newer queueing
            case core.Note(event=event, text=text):
                self._task_event(held, event, text)
            case core.Count(metric=metric):
                Stats.incr(f"ecs_executor.{metric}")
            case core.Timing(metric=metric, milliseconds=ms):
                Stats.timing(f"ecs_executor.{metric}", ms)
            case core.OnDemandNextTry():
                self._on_demand_next.add(held.ident)
            case core.WakeAt(at=at):
                heapq.heappush(self._wakeups, (at, next(self._seq), rec.queueing))
            case core.Log(level=level, message=message):
                self.log.log(level, "%s", message)

    def _send_launch(self, held: _Held, launch: core.Launch) -> None:
        if held.spec is None:  # the core relaunches only records it knows to be relaunchable
            self.log.error("BUG: %s has no workload to launch", held.record.workload_id)
            return
        if launch.new_request or held.request is None:
            spec = held.spec
            sealer: Sealer | None = None
            if self._sealer is not None and spec.payload is not None:
                # The data key is asked for now, on the sealing pool: the launcher thread, which builds
                # requests one at a time, finds it ready instead of waiting on KMS per launch.
                context = launch_context(request_cluster(self._cfg, spec), spec.queueing, launch.attempt)
                sealer = self._sealer.prefetch(spec.payload, context)
            held.request = LazyRequest(
                functools.partial(
                    capacity.build_launch,
                    self._cfg,
                    spec,
                    attempt=launch.attempt,
                    on_demand=launch.on_demand,
                    sealer=sealer,
                )
            )
        backoff = {core.Pace.THROTTLED: self._throttle_backoff, core.Pace.NOW: None}.get(launch.pace, self._backoff)
        delay = backoff.delay(launch.step, self._rng) if backoff is not None else 0.0
        if launch.within is not None:
            delay = min(delay, max(0.0, launch.within))
        self._io.submit(held.record.queueing, launch.attempt, held.request, priority=held.priority, delay=delay)

    def _unwatch(self, queueing: str, cluster: str, arn: str) -> None:
        if self._by_arn.get(arn) == queueing:
            del self._by_arn[arn]
        self._watch.get(cluster, set()).discard(arn)
        self._watch_changed = True

    def _forget(self, held: _Held) -> None:
        rec = held.record
        self._held.pop(rec.queueing, None)
        if self._current.get(held.ident) == rec.queueing:
            del self._current[held.ident]
        if rec.task_arn and self._by_arn.get(rec.task_arn) == rec.queueing:
            self._unwatch(rec.queueing, rec.cluster, rec.task_arn)

    def _task_event(self, held: _Held, event: str, extra: str) -> None:
        """A task-instance event for the UI; a problem recording it never stops the state change."""
        if not hasattr(held.key, "dag_id"):
            return  # callbacks have no task instance to attach an event to
        try:
            self.log_task_event(event=event, extra=extra, ti_key=held.key)
            if self._task_event_logs:
                self._event_logs_kept.append(self._task_event_logs[-1])
        except Exception:  # the event is a courtesy; the state change already happened
            self.log.warning("Could not record task-instance event %r for %s", event, held.record.workload_id)

    def _release_kept_event_logs(self) -> None:
        """Let go of the event rows the scheduler has saved since the last sync.

        Airflow's scheduler saves the executor's task-instance events by handing SQLAlchemy a
        generator that pops them from the deque; SQLAlchemy keeps only weak references, so a row no
        one else holds is collected before the flush and the insert fails (``INSERT INTO log (id)``,
        NOT NULL on ``event``): the UI never showed why a task failed. The executor holds each row
        until the scheduler has taken it from the deque (the scheduler saves between two syncs, on
        the same thread).
        """
        if self._event_logs_kept:
            waiting = {id(row) for row in self._task_event_logs}
            self._event_logs_kept = [row for row in self._event_logs_kept if id(row) in waiting]

    # ------------------------------------------------------------------ sync: never waits on AWS
    def sync(self) -> None:
        self._release_kept_event_logs()
        try:
            self._io.ensure_alive()
        except Exception:
            self.log.exception("EcsExecutor could not check its worker threads")
        # Events drained before launch results: a launch result that came before an event is applied first.
        feed = self._feed.drain() if self._feed is not None else []
        for result in self._io.drain():
            try:
                self._on_result(result)
            except Exception:  # one bad result never loses another: each is applied on its own
                self.log.exception("BUG: applying a %s failed; the other results are applied", type(result).__name__)
        self._on_feed(feed)
        try:
            self._wake_due()
            if self._watch_changed:
                self._io.track({c: frozenset(a) for c, a in self._watch.items() if a and not self._events_tracking})
                self._watch_changed = False
            self._reconcile()
            if self._clock() - self._gauges_at >= GAUGE_SECONDS:
                self._emit_gauges()
        except Exception:
            self.log.exception("BUG: EcsExecutor.sync failed; it will run again at the next heartbeat")

    def _on_result(self, result: LaunchDone | Described | StopDone | WorkerRestarted) -> None:
        if isinstance(result, LaunchDone):
            self._on_launch(result)
        elif isinstance(result, Described):
            self._on_described(result)
        elif isinstance(result, StopDone) and result.error is not None:
            self.log.warning("StopTask %s failed: %s", result.arn, result.error)
        elif isinstance(result, WorkerRestarted):
            Stats.incr("ecs_executor.worker_restarts")
            self.log.error("EcsExecutor worker %s was restarted after: %s", result.name, result.error)

    def _on_launch(self, done: LaunchDone) -> None:
        event: core.Event
        if done.withdrawn:
            if not self._ending:
                return  # cancelled because its record ended: nothing was sent
            event = core.ShuttingDown(unsent=True)
        elif done.invalid is not None:
            event = core.Invalid(done.attempt, done.invalid)
        elif isinstance(done.result, Launched):
            event = core.Started(done.attempt, done.result.observation)
        elif isinstance(done.result, PlacementFailed):
            event = core.NotPlaced(done.attempt, done.result.reason)
        elif done.error is not None:
            err = done.error
            event = core.CallFailed(done.attempt, err.kind, err.code, err.message)
        else:
            return
        if not done.withdrawn and done.invalid is None:
            Stats.timing("ecs_executor.launch_call", done.seconds * 1000)
        if done.queueing in self._held and self._ending and isinstance(event, core.Started):
            # No event is read after end(): Airflow would never learn this ARN, so nobody could adopt
            # the task. Hand the queueing back and stop the task (below) instead.
            self._decide(done.queueing, core.ShuttingDown(unsent=True))
        if done.queueing in self._held:
            held = self._held[done.queueing]
            parsed = parse_task_arn(event.observation.arn) if isinstance(event, core.Started) else None
            if parsed and parsed.cluster and held.record.task_arn is None:
                held.record = replace(held.record, cluster=parsed.cluster)  # the ARN names its cluster
            self._decide(done.queueing, event)
            return
        if isinstance(event, core.Started):  # revoked or ended while RunTask was under way
            parsed = parse_task_arn(event.observation.arn)
            cluster = (parsed.cluster if parsed else None) or self._cfg.cluster
            for action in core.orphan_launch(event, cluster):
                if isinstance(action, core.StopTask):
                    self._io.stop(action.cluster, action.arn, action.reason)

    def _on_described(self, described: Described) -> None:
        if described.error is not None:
            self.log.warning("DescribeTasks failed (%s); will try again", described.error.code)
        if self._reconciler is not None:
            now = self._clock()
            for seen in described.observations:
                self._reconciler.heard(seen.arn, seen.last_status, now)
        items: list[tuple[str, core.Event]] = [(o.arn, core.Observed(o)) for o in described.observations]
        items += [(arn, core.Missing(arn)) for arn in described.missing]
        items += [(arn, core.Missing(arn, why)) for arn, why in described.unreadable]
        for arn, event in items:
            try:  # each task on its own: one that cannot be applied never loses the others
                self._on_task_event(arn, event)
            except Exception:
                self.log.exception("BUG: applying what DescribeTasks said of %s failed; the others are applied", arn)

    def _on_task_event(self, arn: str, event: core.Event) -> None:
        queueing = self._by_arn.get(arn)
        held = self._held.get(queueing) if queueing is not None else None
        if held is None:
            return
        if isinstance(event, core.Observed) and held.spec is None and event.observation.commands:
            # An adopted task: its own command carries its workload, so a task that failed to
            # start can be launched again (next attempt, new clientToken) without spending a try.
            command = next(cmd for _, cmd in event.observation.commands if cmd)
            held.spec = _spec_from_command(command, held.record.queueing)
            if held.spec is not None and held.executor_config:
                # The workload JSON leaves executor_config out; the task instance still has it.
                held.spec = replace(held.spec, executor_config=held.executor_config)
            if held.spec is not None:
                held.record = replace(held.record, relaunchable=True)
        self._decide(held.record.queueing, event)

    def _wake_due(self) -> None:
        now = self._clock()
        while self._wakeups and self._wakeups[0][0] <= now:
            _, _, queueing = heapq.heappop(self._wakeups)
            self._decide(queueing, core.Tick())

    def _emit_gauges(self) -> None:
        self._gauges_at = self._clock()
        counts = dict.fromkeys(Phase, 0)
        for held in self._held.values():
            counts[held.record.phase] += 1
        Stats.gauge("ecs_executor.pending", counts[Phase.PENDING])
        Stats.gauge("ecs_executor.launching", counts[Phase.LAUNCHING])
        Stats.gauge("ecs_executor.provisioning", counts[Phase.PROVISIONING])
        Stats.gauge("ecs_executor.running", counts[Phase.RUNNING])

    # ------------------------------------------------------------------ Airflow's lifecycle duties
    def revoke_task(self, *, ti: Any) -> None:
        self.running.discard(ti.key)
        self.queued_tasks.pop(ti.key, None)
        queueing = self._current.get(_identity(ti.key))
        held = self._held.get(queueing) if queueing is not None else None
        if held is None or held.key != ti.key:
            return
        self._decide(held.record.queueing, core.Revoked())
        self.log.info("%s revoked", held.record.workload_id)

    def try_adopt_task_instances(self, tis: Sequence[Any]) -> Sequence[Any]:
        """Adopt every task instance whose external_executor_id is an ECS task ARN; no AWS call here.

        Each adopted task is tracked in the cluster its ARN names; what it was launched with (its
        container, launch attempt and workload) comes from its first observation. A task that cannot
        be described is kept and tracked, never handed back to be launched a second time. A task
        instance without an ARN is handed back to be reset, unless this executor is launching it.
        """
        not_adopted = []
        now = self._clock()
        for ti in tis:
            parsed = parse_task_arn(ti.external_executor_id)
            if parsed is None:
                if self._launches_itself(ti.key):
                    # Airflow took this scheduler for dead and hands back a task instance it queued
                    # whose ECS task is not started (or its ARN not yet recorded). This executor still
                    # launches it: a reset now would queue a second try beside the launch under way.
                    self.log.info("kept %s: this scheduler queued it and launches it", _workload_id(ti.key))
                else:
                    not_adopted.append(ti)
                continue
            tracked = self._held.get(self._by_arn.get(parsed.arn, ""))
            if tracked is not None and not tracked.record.done:
                # Already ours: Airflow took this scheduler for dead (a heartbeat late under load) and
                # hands its own tasks back to it. A second record would track and report it twice.
                self.running.add(ti.key)
                continue
            queueing = self._new_queueing()
            record, actions = core.adopt(
                queueing,
                _workload_id(ti.key),
                arn=parsed.arn,
                cluster=parsed.cluster or self._cfg.cluster,
                now=now,
                policy=self._policy,
            )
            self.running.add(ti.key)
            priority = -int(getattr(ti, "priority_weight", 0) or 0)
            config = getattr(ti, "executor_config", None)
            held = _Held(ti.key, _identity(ti.key), None, priority, record)
            held.executor_config = config if isinstance(config, Mapping) else None
            self._hold(held, actions)
            if self._reconciler is not None:  # its earlier events went to the dead scheduler's queue
                self._reconciler.ask(parsed.arn)
            self.log.info("adopted %s: ECS task %s", record.workload_id, parsed.arn)
        return not_adopted

    def _launches_itself(self, key: Any) -> bool:
        """Whether this executor holds the try ``key`` names, still to be launched or launching."""
        if key in self.queued_tasks:  # queued with the executor, not yet handed to _process_workloads
            return True
        held = self._held.get(self._current.get(_identity(key), ""))
        return held is not None and held.key == key and not held.record.done

    def terminate(self) -> None:
        """Stop every ECS task this executor holds; StopTask calls are waited for, bounded."""
        if self._workers is None or self._workers.closed:
            return
        self._ending = True  # a RunTask answered from now on is stopped at once (_on_launch)
        for queueing in self._io.withdraw_all():
            self._decide(queueing, core.ShuttingDown(unsent=True))
        for held in list(self._held.values()):
            rec = held.record
            if rec.task_arn and not rec.done:
                self._io.stop(rec.cluster, rec.task_arn, "Airflow scheduler terminated")
        # RunTask calls already sent may still start tasks: wait for their answers and stop those too.
        deadline = self._clock() + TERMINATE_SECONDS
        while self._io.launches_unsettled() and self._clock() < deadline:
            self.sync()
            time.sleep(0.1)
        self.sync()
        if self._io.launches_unsettled():
            self.log.warning("EcsExecutor.terminate: RunTask calls still under way after %.0f s", TERMINATE_SECONDS)
        self._io.close(timeout=TERMINATE_SECONDS)
        if self._sealer is not None:
            self._sealer.close()
        self._close_events()

    def end(self) -> None:
        """Launch nothing more: unsent launches go back to Airflow; ECS tasks keep running (adoptable)."""
        if self._workers is None or self._workers.closed:
            return
        self._ending = True
        for queueing in self._io.withdraw_all():
            self._decide(queueing, core.ShuttingDown(unsent=True))
        deadline = self._clock() + END_SECONDS
        while self._io.launches_unsettled() and self._clock() < deadline:
            self.sync()
            time.sleep(0.1)
        self.sync()
        self.sync()  # a launch result of the last round may have asked for a launch: withdrawn now
        if self._io.launches_unsettled():
            self.log.warning("EcsExecutor.end: RunTask calls still under way after %.0f s", END_SECONDS)
        self._io.close(timeout=TERMINATE_SECONDS)
        if self._sealer is not None:
            self._sealer.close()
        self._close_events()

    # ------------------------------------------------------------------ tracking by ECS events (runtime/events.py)
    def _start_events(self) -> None:
        cfg = self._cfg
        if not cfg.task_events_queue_url:
            return
        sqs = make_client(cfg, "sqs")
        self._feed = task_events.EventFeed(EventQueue(sqs, cfg.task_events_queue_url))
        self._reconciler = task_events.Reconciler(cfg.task_events_reconcile_interval, cfg.task_events_silence)
        self.log.info("EcsExecutor tracks tasks by ECS events from %s", cfg.task_events_queue_url)

    @property
    def _events_tracking(self) -> bool:
        """Events flow: the tracker stops polling; the reconciler describes now and then instead."""
        return self._feed is not None and self._feed.healthy

    def _on_feed(self, results: Sequence[task_events.FeedResult]) -> None:
        feed = self._feed
        if feed is None:
            return
        try:
            feed.ensure_alive()
        except Exception:
            self.log.exception("EcsExecutor could not check its events threads")
        for result in results:
            try:
                if isinstance(result, task_events.EventsReceived):
                    feed.ack(self._apply_events(result))
                elif isinstance(result, task_events.FeedDown):
                    feed.healthy = False
                    self._watch_changed = True
                    Stats.incr("ecs_executor.events.fallback")
                    self.log.error(
                        "ECS events queue %s cannot be read (%s): tracking tasks by polling DescribeTasks until "
                        "it can; check the queue, its policy and the scheduler's sqs:ReceiveMessage permission",
                        self._cfg.task_events_queue_url,
                        result.error,
                    )
                elif isinstance(result, task_events.FeedUp):
                    feed.healthy = True
                    self._watch_changed = True
                    Stats.incr("ecs_executor.events.recovered")
                    self.log.info("ECS events queue readable: tracking tasks by events")
                elif isinstance(result, WorkerRestarted):
                    Stats.incr("ecs_executor.worker_restarts")
                    self.log.error("EcsExecutor worker %s was restarted after: %s", result.name, result.error)
            except Exception:
                self.log.exception("BUG: applying a %s failed; the other results are applied", type(result).__name__)

    def _apply_events(self, received: task_events.EventsReceived) -> list[str]:
        """Apply each event to its task's record; returns the receipts to delete.

        Every message is deleted once handled: applied, of a task this scheduler does not hold, or unreadable.
        """
        done: list[str] = []
        now = self._clock()
        for message in received.messages:
            seen = message.observation
            try:
                if seen is None:
                    Stats.incr("ecs_executor.events.unreadable")
                    self.log.warning("ignoring a message of the ECS events queue: %s", message.problem)
                elif seen.arn not in self._by_arn:
                    # Another scheduler's task (every scheduler's queue gets every event), or one that ended here.
                    Stats.incr("ecs_executor.events.foreign")
                else:
                    Stats.incr("ecs_executor.events.applied")
                    if self._reconciler is not None:
                        self._reconciler.heard(seen.arn, seen.last_status, now)
                    self._on_task_event(seen.arn, core.Observed(seen))
                done.append(message.receipt)
            except Exception:  # not deleted: seen again after the visibility timeout
                self.log.exception("BUG: applying an ECS event of %s failed", seen.arn if seen else "?")
        return done

    def _reconcile(self) -> None:
        if self._reconciler is None or not self._events_tracking:
            return
        due = self._reconciler.due(self._watch, self._clock())
        if due:
            self._io.describe(due)

    def _close_events(self) -> None:
        if self._feed is not None:
            self._feed.close()
