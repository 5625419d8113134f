"""``EcsExecutor``: the only module that touches Airflow objects.

The scheduler thread calls ``_process_workloads``, ``sync`` and ``heartbeat``; none of them waits on
AWS. Workloads become launch jobs for the worker threads; results come back through one queue and
are turned into transitions of one record per workload, following the failure classification of
DESIGN.md (``core.classify``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from airflow.configuration import conf
from airflow.executors import workloads
from airflow.executors.base_executor import BaseExecutor
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from airflow_ecs_executor import cli, redaction
from airflow_ecs_executor.aws.client import EcsClient, Launched, PlacementFailed
from airflow_ecs_executor.aws.requests import ATTEMPT_TAG, WorkloadSpec, build_run_task
from airflow_ecs_executor.config import SECTION, ConfigError, ExecutorConfig, parse_config
from airflow_ecs_executor.connection import make_client
from airflow_ecs_executor.core.backoff import Backoff
from airflow_ecs_executor.core.classify import LaunchErrorKind, TaskObservation, Verdict, judge
from airflow_ecs_executor.core.lifecycle import Phase, Workload, advance
from airflow_ecs_executor.logs import read_try_log
from airflow_ecs_executor.runtime.workers import Described, LaunchDone, LazyRequest, RequestSource, StopDone, Workers

try:  # Airflow 3.2+
    from airflow.observability.stats import Stats
except ImportError:  # Airflow 3.1
    from airflow.stats import Stats  # type: ignore[no-redef,assignment,unused-ignore]

COMMAND = ("python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string")
TERMINATE_SECONDS = 30.0
END_SECONDS = 300.0
GAUGE_SECONDS = 5.0  # phase gauges are counted at most this often (StatsD samples every 10 s)
_STARTING = (Phase.PENDING, Phase.LAUNCHING, Phase.PROVISIONING)


@dataclass
class _Entry:
    """Everything the executor keeps about one workload it owns."""

    key: Any
    record: Workload
    spec: WorkloadSpec | None  # None for an adopted task whose workload its ECS task did not carry
    cluster: str
    container: str
    priority: int
    accepted_at: float
    request: RequestSource | None = None  # the current attempt's, built by the launcher thread
    transient_errors: int = 0
    version: int = -1
    missing_since: float | None = None
    start_seen: bool = False


def _workload_id(key: Any) -> str:
    if hasattr(key, "dag_id"):
        return f"{key.dag_id}/{key.task_id}/{key.run_id}/{key.map_index}/{key.try_number}"
    return f"callback/{key}"


def _command(workload: Any) -> Callable[[], list[str]]:
    """The container command of a workload, serialised when first asked: by the launcher thread."""

    @functools.cache
    def command() -> list[str]:
        return [*COMMAND, workload.model_dump_json()]

    return command


def _spec_for(workload: Any) -> tuple[Any, WorkloadSpec, int]:
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
    spec = WorkloadSpec(
        workload_id=_workload_id(key),
        command=_command(workload),
        queue=queue,
        executor_config=executor_config,
        tags=tags,
    )
    return key, spec, priority


def _spec_from_command(command: Sequence[str]) -> WorkloadSpec | None:
    """The launch spec of the workload an ECS task's command carries (for relaunching an adopted task)."""
    if "--json-string" not in command or command.index("--json-string") + 1 >= len(command):
        return None
    payload = command[command.index("--json-string") + 1]
    try:
        _, spec, _ = _spec_for(workloads.ExecuteTask.model_validate_json(payload))
    except Exception:
        return None
    return spec


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
        self._entries: dict[Any, _Entry] = {}
        self._keys: dict[str, Any] = {}  # workload id -> key of its entry
        # Kept up to date on each transition, so a heartbeat costs what changed, not what is running:
        self._watch: dict[str, set[str]] = {}  # cluster -> ARNs the tracker describes
        self._watch_changed = False
        self._deadlines: deque[tuple[float, Any]] = deque()  # (accepted_at, key), oldest first
        self._gauges_at = float("-inf")
        self._by_arn: dict[str, Any] = {}
        self._rng = random.Random()
        self._backoff = Backoff(base=1.0, cap=30.0)
        self._throttle_backoff = Backoff(base=0.25, cap=2.0)
        self._clock: Callable[[], float] = time.monotonic
        self._revoked_launches: set[str] = set()

    # ------------------------------------------------------------------ start and configuration
    def _section(self) -> dict[str, Any]:
        """The raw section: global values, overlaid for a team by its own section and variables."""
        raw: dict[str, Any] = dict(conf.getsection(SECTION) or {})
        team = getattr(self, "team_name", None)
        if team:
            # conf.getsection(section, team_name=...) answers None when no team section exists in a
            # config file, even if AIRFLOW__<TEAM>___ECS_EXECUTOR__* variables are set; read both.
            with contextlib.suppress(TypeError):  # Airflow 3.1 has no team sections; variables still work
                raw.update(conf.getsection(SECTION, team_name=team) or {})
            prefix = f"AIRFLOW__{team.upper()}___{SECTION.upper()}__"
            raw.update({k[len(prefix) :].lower(): v for k, v in os.environ.items() if k.startswith(prefix)})
        return {k: v for k, v in raw.items() if v is not None}

    def start(self) -> None:
        redaction.install()
        self.config = parse_config(self._section())
        client = self._make_client(self.config)
        ecs = EcsClient(client, self.config.cluster)
        if self.config.check_health_on_startup:
            problems = check_health(client, self.config)
            if problems:
                raise ConfigError(problems)
        self._workers = Workers(
            ecs, launch_rate=self.config.launch_rate, launch_concurrency=self.config.launch_concurrency
        )
        self.log.info(
            "EcsExecutor started: cluster %s, task definition %s, launch rate %.1f/s",
            self.config.cluster,
            self.config.task_definition,
            self.config.launch_rate,
        )

    @staticmethod
    def _make_client(cfg: ExecutorConfig) -> Any:
        # One attempt per call: retries are ours, with the same clientToken and off the worker thread.
        config = Config(
            retries={"total_max_attempts": 1},
            connect_timeout=5,
            read_timeout=20,
            max_pool_connections=cfg.launch_concurrency + 8,
        )
        return make_client(cfg, "ecs", config=config)

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
            key, spec, priority = _spec_for(workload)
            if hasattr(key, "dag_id"):
                self.queued_tasks.pop(key, None)
            else:
                self.queued_callbacks.pop(key, None)
            self.running.add(key)
            self._accept(key, spec, priority)

    def _accept(self, key: Any, spec: WorkloadSpec, priority: int) -> None:
        cfg = self._cfg
        now = self._clock()
        profile = cfg.queue_profiles.get(spec.queue or "")
        entry = _Entry(
            key=key,
            record=Workload(spec.workload_id, changed_at=now),
            spec=spec,
            cluster=str(spec.executor_config.get("cluster") or cfg.cluster)
            if isinstance(spec.executor_config, Mapping)
            else cfg.cluster,
            container=(profile.container_name if profile and profile.container_name else cfg.container_name),
            priority=priority,
            accepted_at=now,
        )
        self._add(entry)
        self._launch(entry, attempt=1, delay=0.0)

    def _add(self, entry: _Entry) -> None:
        self._entries[entry.key] = entry
        self._keys[entry.record.id] = entry.key
        self._deadlines.append((entry.accepted_at, entry.key))

    def _track(self, entry: _Entry, arn: str) -> None:
        """Watch the entry's ECS task until it is finished, relaunched or revoked."""
        self._by_arn[arn] = entry.key
        self._watch.setdefault(entry.cluster, set()).add(arn)
        self._watch_changed = True

    def _untrack(self, entry: _Entry) -> None:
        arn = entry.record.task_arn
        if arn:
            self._by_arn.pop(arn, None)
            self._watch.get(entry.cluster, set()).discard(arn)
            self._watch_changed = True

    def _launch(self, entry: _Entry, *, attempt: int, delay: float) -> None:
        """Hand one launch attempt to the launcher, which builds (and checks) its request off this thread."""
        assert entry.spec is not None
        entry.request = LazyRequest(functools.partial(build_run_task, self._cfg, entry.spec, attempt=attempt))
        entry.record = advance(entry.record, Phase.LAUNCHING, at=self._clock(), attempt=attempt, task_arn=None)
        self._io.submit(entry.record.id, attempt, entry.request, priority=entry.priority, delay=delay)

    # ------------------------------------------------------------------ sync: never waits on AWS
    def sync(self) -> None:
        try:
            for result in self._io.drain():
                if isinstance(result, LaunchDone):
                    self._on_launch(result)
                elif isinstance(result, Described):
                    self._on_described(result)
                elif isinstance(result, StopDone) and result.error is not None:
                    self.log.warning("StopTask %s failed: %s", result.arn, result.error)
            self._check_deadlines()
            if self._watch_changed:
                self._io.track({c: frozenset(a) for c, a in self._watch.items() if a})
                self._watch_changed = False
            if self._clock() - self._gauges_at >= GAUGE_SECONDS:
                self._emit_gauges()
        except Exception:  # the only catch-all: a bug here must not take the scheduler down
            self.log.exception("EcsExecutor.sync failed; it will run again at the next heartbeat")

    def _entry_for(self, workload_id: str) -> _Entry | None:
        key = self._keys.get(workload_id)
        return self._entries.get(key) if key is not None else None

    def _on_launch(self, done: LaunchDone) -> None:
        entry = self._entry_for(done.workload_id)
        if entry is None or entry.record.attempt != done.attempt or entry.record.phase is not Phase.LAUNCHING:
            if isinstance(done.result, Launched):  # revoked or superseded while RunTask was under way
                self._io.stop(self._cfg.cluster, done.result.observation.arn, "no longer wanted by Airflow")
            return
        if done.invalid is not None:
            self._finish(entry, Phase.FAILED, f"not launched: {done.invalid}", kind="invalid_request")
            return
        Stats.timing("ecs_executor.launch_call", done.seconds * 1000)
        if isinstance(done.result, Launched):
            arn = done.result.observation.arn
            entry.record = advance(entry.record, Phase.PROVISIONING, at=self._clock(), task_arn=arn)
            self._track(entry, arn)
            self.running_state(entry.key, arn)
            self.log.info("ECS task launched for %s: %s (attempt %d)", entry.record.id, arn, done.attempt)
            self._observe(entry, done.result.observation)
        elif isinstance(done.result, PlacementFailed):
            Stats.incr("ecs_executor.placement_failures")
            self._retry_attempt(entry, f"ECS could not place the task: {done.result.reason}")
        elif done.error is not None:
            err = done.error
            if err.kind is LaunchErrorKind.REJECTED:
                Stats.incr(f"ecs_executor.failures.{err.code}")
                self._finish(
                    entry, Phase.FAILED, f"RunTask rejected the task: {err.code}: {err.message}", kind="rejected"
                )
                return
            entry.transient_errors += 1
            throttled = err.kind is LaunchErrorKind.THROTTLED
            if throttled:
                Stats.incr("ecs_executor.run_task_throttles")
            if err.kind is LaunchErrorKind.CREDENTIALS:
                self.log.warning("AWS credentials missing or expired (%s); launches wait until they return", err.code)
            # Throttling is paced globally (the launcher's bucket pauses for everyone), so a throttled
            # launch comes back soon; other transient errors back off exponentially per workload.
            backoff = self._throttle_backoff if throttled else self._backoff
            delay = backoff.delay(entry.transient_errors, self._rng)
            entry.record = replace(entry.record, reason=f"{err.code}: {err.message}")
            # Same attempt, same request, same clientToken: ECS never starts a second task for it.
            assert entry.request is not None
            self._io.submit(entry.record.id, done.attempt, entry.request, priority=entry.priority, delay=delay)

    def _retry_attempt(self, entry: _Entry, reason: str) -> None:
        """A new launch attempt (new clientToken) after a placement failure or a failed start."""
        attempt = entry.record.attempt
        if entry.spec is None or attempt >= self._cfg.max_launch_attempts:
            tail = "" if entry.spec is not None else " (adopted task: its workload cannot be relaunched)"
            self._finish(
                entry,
                Phase.FAILED,
                f"{reason}; gave up after {attempt} launch attempt(s){tail}",
                kind="launch_attempts",
            )
            return
        delay = self._backoff.delay(attempt, self._rng)
        self.log.info("%s: %s; launching again (attempt %d) in %.1f s", entry.record.id, reason, attempt + 1, delay)
        self._task_event(entry, "ecs task relaunched", reason)
        self._untrack(entry)
        entry.record = advance(entry.record, Phase.PENDING, at=self._clock(), task_arn=None, reason=reason)
        entry.version = -1
        self._launch(entry, attempt=attempt + 1, delay=delay)

    def _on_described(self, described: Described) -> None:
        if described.error is not None:
            self.log.warning("DescribeTasks failed (%s); will try again", described.error.code)
            return
        for obs in described.observations:
            key = self._by_arn.get(obs.arn)
            entry = self._entries.get(key) if key is not None else None
            if entry is not None and entry.record.task_arn == obs.arn:
                entry.missing_since = None
                self._observe(entry, obs)
        now = self._clock()
        for arn in described.missing:
            key = self._by_arn.get(arn)
            entry = self._entries.get(key) if key is not None else None
            if entry is None:
                continue
            if entry.missing_since is None:
                entry.missing_since = now
            # ECS is eventually consistent: a task just returned by RunTask can briefly be MISSING
            # from DescribeTasks (AWS_FACTS.md). Only after the grace period is it a failure.
            elif now - entry.missing_since > self._cfg.missing_grace:
                reason = f"ECS no longer knows task {arn} (DescribeTasks reports it MISSING)"
                self._finish(entry, Phase.FAILED, reason, kind="missing")

    def _observe(self, entry: _Entry, obs: TaskObservation) -> None:
        if obs.version and obs.version < entry.version:
            return  # an older observation than one already applied
        entry.version = max(entry.version, obs.version)
        if obs.started and not entry.start_seen:
            # Accepted -> container started; a short task may already be STOPPED when first seen.
            entry.start_seen = True
            Stats.timing("ecs_executor.launch_latency", (self._clock() - entry.accepted_at) * 1000)
        outcome = judge(obs, entry.container)
        if outcome.verdict is Verdict.RUNNING and entry.record.phase is Phase.PROVISIONING:
            entry.record = advance(entry.record, Phase.RUNNING, at=self._clock())
        elif outcome.verdict is Verdict.SUCCEEDED:
            self._finish(entry, Phase.SUCCEEDED, None)
        elif outcome.verdict is Verdict.FAILED:
            self._finish(entry, Phase.FAILED, outcome.reason, kind=outcome.kind)
        elif outcome.verdict is Verdict.RELAUNCH:
            Stats.incr("ecs_executor.failed_to_start")
            self._retry_attempt(entry, outcome.reason or "the ECS task failed to start")

    def _finish(self, entry: _Entry, phase: Phase, reason: str | None, *, kind: str | None = None) -> None:
        entry.record = advance(entry.record, phase, at=self._clock(), reason=reason)
        self._forget(entry)
        self._untrack(entry)
        if phase is Phase.SUCCEEDED:
            self.log.info("%s succeeded (ECS task %s)", entry.record.id, entry.record.task_arn)
            self.success(entry.key, entry.record.task_arn)
            return
        Stats.incr("ecs_executor.failures")
        Stats.incr(f"ecs_executor.failures.{kind or 'other'}")
        self.log.warning("%s failed: %s", entry.record.id, reason)
        self.fail(entry.key, reason)
        self._task_event(entry, "ecs task failed", reason or "unknown reason")

    def _forget(self, entry: _Entry) -> None:
        self._entries.pop(entry.key, None)
        self._keys.pop(entry.record.id, None)

    def _task_event(self, entry: _Entry, event: str, extra: str) -> None:
        """A task-instance event for the UI; a problem recording it never stops the state change."""
        if not hasattr(entry.key, "dag_id"):
            return  # callbacks have no task instance to attach an event to
        try:
            self.log_task_event(event=event, extra=extra, ti_key=entry.key)
        except Exception:  # the event is a courtesy; the state change already happened
            self.log.warning("Could not record task-instance event %r for %s", event, entry.record.id, exc_info=True)

    def _check_deadlines(self) -> None:
        """Fail what has not started within launch_timeout; only entries past their deadline are looked at.

        Entries are queued oldest first; one that started before its deadline never goes back to a
        starting phase (lifecycle.ALLOWED), so it is dropped from the queue when its deadline passes.
        """
        now = self._clock()
        limit = self._cfg.launch_timeout
        while self._deadlines and now - self._deadlines[0][0] > limit:
            accepted_at, key = self._deadlines.popleft()
            entry = self._entries.get(key)
            if entry is not None and entry.accepted_at == accepted_at and entry.record.phase in _STARTING:
                last = f" (last error: {entry.record.reason})" if entry.record.reason else ""
                if entry.record.task_arn:
                    self._io.stop(entry.cluster, entry.record.task_arn, "did not start within launch_timeout")
                self._finish(
                    entry, Phase.FAILED, f"the ECS task did not start within {limit:.0f} s{last}", kind="launch_timeout"
                )

    def _emit_gauges(self) -> None:
        self._gauges_at = self._clock()
        counts = {phase: 0 for phase in Phase}
        for entry in self._entries.values():
            counts[entry.record.phase] += 1
        Stats.gauge("ecs_executor.pending", counts[Phase.PENDING])
        Stats.gauge("ecs_executor.launching", counts[Phase.LAUNCHING])
        Stats.gauge("ecs_executor.provisioning", counts[Phase.PROVISIONING])
        Stats.gauge("ecs_executor.running", counts[Phase.RUNNING])

    # ------------------------------------------------------------------ Airflow's lifecycle duties
    def revoke_task(self, *, ti: Any) -> None:
        entry = self._entries.get(ti.key)
        self.running.discard(ti.key)
        self.queued_tasks.pop(ti.key, None)
        if entry is None:
            return
        self._forget(entry)
        self._untrack(entry)
        self._io.cancel(entry.record.id)  # launches not sent yet never reach ECS
        if entry.record.task_arn:
            self._io.stop(entry.cluster, entry.record.task_arn, "revoked by Airflow")
        self.log.info("%s revoked", entry.record.id)

    def try_adopt_task_instances(self, tis: Sequence[Any]) -> Sequence[Any]:
        by_cluster: dict[str, list[Any]] = {}
        not_adopted = []
        for ti in tis:
            arn = ti.external_executor_id or ""
            if arn.startswith("arn:") and ":task/" in arn:
                by_cluster.setdefault(self._cfg.cluster, []).append(ti)
            else:
                not_adopted.append(ti)
        for cluster, group in by_cluster.items():
            known: dict[str, TaskObservation] = {}
            for described in self._io.describe_now(cluster, [ti.external_executor_id for ti in group]):
                known.update({o.arn: o for o in described.observations})
            for ti in group:
                obs = known.get(ti.external_executor_id)
                if obs is None:
                    not_adopted.append(ti)  # ECS no longer knows it: the scheduler takes it back
                    continue
                now = self._clock()
                tags = dict(obs.tags)
                attempt = int(tags.get(ATTEMPT_TAG, "1")) if tags.get(ATTEMPT_TAG, "1").isdigit() else 1
                container = self._cfg.container_name
                # The task's own command carries its workload: an adopted task that failed to start
                # can then be launched again (next attempt, next clientToken) without spending a try.
                spec = next((_spec_from_command(cmd) for name, cmd in obs.commands if name == container and cmd), None)
                record = Workload(
                    _workload_id(ti.key), phase=Phase.PROVISIONING, attempt=attempt, task_arn=obs.arn, changed_at=now
                )
                entry = _Entry(
                    ti.key, record, spec, cluster, container, -int(getattr(ti, "priority_weight", 0) or 0), now
                )
                self._add(entry)
                self._track(entry, obs.arn)
                self.running.add(ti.key)
                self.log.info("adopted %s: ECS task %s (%s)", record.id, obs.arn, obs.last_status)
                self._observe(entry, obs)
        return not_adopted

    def terminate(self) -> None:
        if self._workers is None or self._workers.closed:
            return
        for entry in list(self._entries.values()):
            if entry.record.task_arn:
                self._io.stop(entry.cluster, entry.record.task_arn, "Airflow scheduler terminated")
        if self._workers is not None:
            self._workers.close(timeout=TERMINATE_SECONDS)

    def end(self) -> None:
        deadline = self._clock() + END_SECONDS
        while self._entries and self._clock() < deadline:
            self.sync()
            time.sleep(1.0)
        if self._entries:
            self.log.warning(
                "EcsExecutor.end: %d workload(s) still unfinished after %.0f s", len(self._entries), END_SECONDS
            )
        if self._workers is not None:
            self._workers.close(timeout=TERMINATE_SECONDS)


def check_health(client: Any, cfg: ExecutorConfig) -> list[str]:
    """Start-up checks; each problem names its fix. Empty when all is well."""
    problems: list[str] = []
    try:
        clusters = client.describe_clusters(clusters=[cfg.cluster])
        found = [c for c in clusters.get("clusters", []) if c.get("status") == "ACTIVE"]
        if not found:
            problems.append(
                f"cluster {cfg.cluster!r} does not exist or is not ACTIVE: create it, or fix [ecs_executor] cluster"
            )
    except (ClientError, BotoCoreError) as exc:
        return [f"cannot reach ECS with connection {cfg.conn_id!r}: {exc}. Check the credentials and endpoint_url."]
    try:
        definition = client.describe_task_definition(taskDefinition=cfg.task_definition)["taskDefinition"]
    except ClientError as exc:
        problems.append(
            f"task definition {cfg.task_definition!r} not found ({exc.response['Error']['Message']}): "
            "register it, or fix [ecs_executor] task_definition"
        )
        return problems
    names = [c["name"] for c in definition.get("containerDefinitions", [])]
    if cfg.container_name not in names:
        problems.append(
            f"task definition {cfg.task_definition!r} has no container {cfg.container_name!r} "
            f"(it has {names}): fix [ecs_executor] container_name"
        )
    if (
        definition.get("networkMode") == "awsvpc"
        and not cfg.subnets
        and "networkConfiguration" not in cfg.run_task_kwargs
    ):
        problems.append("the task definition uses awsvpc networking but no subnets are set: set [ecs_executor] subnets")
    if cfg.launch_type == "FARGATE" and "FARGATE" not in definition.get("compatibilities", []):
        problems.append(f"task definition {cfg.task_definition!r} is not FARGATE-compatible but launch_type is FARGATE")
    return problems
