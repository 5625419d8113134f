"""What happens next to one queueing: ``decide(record, event, now, policy) -> (record, actions)``.

Every rule of the workload lifecycle lives here, as one pure function over one record and one event.
An event is something the executor learnt (a launch result, an observation of the ECS task, a task
MISSING from DescribeTasks, a clock tick, a revoke, a newer queueing of the same task instance, a
shutdown); an action is something the executor adapter carries out (send a RunTask, stop an ECS
task, watch an ARN, report a final state to Airflow, count a metric, log a line). No boto3, no
Airflow, no clock of its own, no threads: ``now`` is passed in.

The promise it keeps, checked by property tests over arbitrary sequences of events:

- every queueing is reported to Airflow exactly once, when ECS says STOPPED or a deadline passes
  (or it is released without a report: revoked by Airflow, superseded by a newer queueing of the
  same task instance, or handed back at shutdown before its RunTask was sent);
- a queueing is never launched again once its container was seen to start;
- a queueing never has two live ECS tasks: a task started for an attempt that is no longer current
  (or for a record that has ended) is stopped;
- ``decide`` never raises: an event that makes no sense for the record is logged and the record is
  kept unchanged.

A *queueing* is one hand-over of a workload by Airflow's scheduler. One Airflow try can be queued
several times (a reschedule-mode sensor's pokes, a deferral resumed on a worker), so everything
that identifies a launch (the record, its clientTokens) belongs to the queueing, never to the try.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from airflow_ecs_executor.core.classify import (
    NOT_OPENED_KIND,
    SPOT_PROVIDER,
    LaunchErrorKind,
    TaskObservation,
    Verdict,
    is_capacity_shortfall,
    is_spot_interruption,
    judge,
)
from airflow_ecs_executor.core.lifecycle import IllegalTransition, Phase, Record, SpotPlan, advance

STOPPED: Final = "STOPPED"


# ---------------------------------------------------------------------------------------------- record
@dataclass(frozen=True)
class Policy:
    """The limits an administrator sets ([ecs_executor] options)."""

    max_launch_attempts: int = 5
    launch_timeout: float = 900.0  # seconds from acceptance to the container's start
    missing_grace: float = 60.0  # seconds a task may be MISSING from DescribeTasks before it fails


# ---------------------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Started:
    """RunTask of ``attempt`` returned this task (a resend with the same clientToken returns the same)."""

    attempt: int
    observation: TaskObservation


@dataclass(frozen=True)
class NotPlaced:
    """RunTask of ``attempt`` answered with ``failures[]``: ECS could not place the task now."""

    attempt: int
    reason: str


@dataclass(frozen=True)
class CallFailed:
    """RunTask of ``attempt`` raised an AWS error; ``kind`` says what it means for the launch."""

    attempt: int
    kind: LaunchErrorKind
    code: str
    message: str


@dataclass(frozen=True)
class Invalid:
    """The RunTask request of ``attempt`` cannot be built (bad executor_config, overrides too long)."""

    attempt: int
    message: str


@dataclass(frozen=True)
class Observed:
    """DescribeTasks (or an ECS event) showed the task in this state."""

    observation: TaskObservation


@dataclass(frozen=True)
class Missing:
    """DescribeTasks reported the ARN MISSING, or cannot describe it at all (``why``)."""

    arn: str
    why: str | None = None


@dataclass(frozen=True)
class Tick:
    """Time passed: deadlines may have expired."""


@dataclass(frozen=True)
class Revoked:
    """Airflow took the task instance back (``revoke_task``): forget it, stop what was started."""


@dataclass(frozen=True)
class Superseded:
    """Airflow queued the same task instance again (a new poke, a resumed deferral, a newer try)."""


@dataclass(frozen=True)
class ShuttingDown:
    """The scheduler is ending; ``unsent`` is True when this record's RunTask was withdrawn unsent."""

    unsent: bool


Event = Started | NotPlaced | CallFailed | Invalid | Observed | Missing | Tick | Revoked | Superseded | ShuttingDown


# ---------------------------------------------------------------------------------------------- actions
class Pace(StrEnum):
    """How long the launcher waits before sending: the adapter turns this into a delay."""

    NOW = "now"
    THROTTLED = "throttled"  # AWS refused for rate; the launcher's bucket already paces everyone
    TRANSIENT = "transient"  # exponential backoff per resend
    RELAUNCH = "relaunch"  # exponential backoff per launch attempt


@dataclass(frozen=True)
class Launch:
    """Send RunTask for ``attempt``: a new request (new clientToken) or the same one again."""

    attempt: int
    new_request: bool
    pace: Pace = Pace.NOW
    step: int = 0  # the backoff exponent
    on_demand: bool = False  # on on-demand capacity: FARGATE_SPOT taken out of the strategy
    within: float | None = None  # the backoff never waits longer than this many seconds


@dataclass(frozen=True)
class CancelLaunch:
    """Withdraw this queueing's RunTask if it has not been sent yet."""


@dataclass(frozen=True)
class StopTask:
    """Stop this ECS task (StopTask)."""

    cluster: str
    arn: str
    reason: str


@dataclass(frozen=True)
class Watch:
    """Track this ECS task until it stops."""

    cluster: str
    arn: str


@dataclass(frozen=True)
class Unwatch:
    """Stop tracking this ECS task."""

    cluster: str
    arn: str


@dataclass(frozen=True)
class Running:
    """Tell Airflow the ECS task ARN (its external_executor_id)."""

    arn: str


@dataclass(frozen=True)
class Report:
    """The queueing's final state for Airflow's event buffer."""

    success: bool
    reason: str | None = None
    kind: str | None = None  # a short name for metrics


@dataclass(frozen=True)
class Release:
    """The record ends without a report to Airflow (revoked, superseded, handed back at shutdown)."""

    why: str


@dataclass(frozen=True)
class Note:
    """A task-instance event for the Airflow UI."""

    event: str
    text: str


@dataclass(frozen=True)
class Count:
    """Add one to the metric ``ecs_executor.<metric>``."""

    metric: str


@dataclass(frozen=True)
class Timing:
    """Record a duration for the metric ``ecs_executor.<metric>``."""

    metric: str
    milliseconds: float


@dataclass(frozen=True)
class WakeAt:
    """Deliver a Tick at this time: a deadline of this record falls due then."""

    at: float


@dataclass(frozen=True)
class OnDemandNextTry:
    """Spot interrupted this try: the task instance's next queueing runs on on-demand capacity."""


@dataclass(frozen=True)
class Log:
    """A line for the scheduler's log."""

    level: int
    message: str


Action = (
    Launch
    | CancelLaunch
    | StopTask
    | Watch
    | Unwatch
    | Running
    | Report
    | Release
    | Note
    | Count
    | Timing
    | WakeAt
    | OnDemandNextTry
    | Log
)
Decision = tuple[Record, list[Action]]


# ---------------------------------------------------------------------------------------------- entry points
def accept(
    queueing: str,
    workload_id: str,
    *,
    cluster: str,
    container: str,
    now: float,
    policy: Policy,
    spot: bool = False,
    plan: SpotPlan | None = None,
    on_demand: bool = False,
) -> Decision:
    """A new queueing: its record, and its first launch.

    ``spot``: its launch strategy includes Fargate Spot. ``on_demand``: the task instance's previous
    try was interrupted on Spot and ``plan`` asks for on-demand capacity after an interruption.
    """
    plan = plan or SpotPlan()
    on_demand = on_demand and plan.on_demand_after_interruption
    rec = Record(queueing, workload_id, cluster, container, accepted_at=now, changed_at=now)
    rec = advance(rec, Phase.LAUNCHING, at=now, attempt=1, spot=spot, plan=plan, on_demand=on_demand)
    actions: list[Action] = [Launch(1, new_request=True, on_demand=on_demand), WakeAt(now + policy.launch_timeout)]
    if on_demand:
        text = "the previous try was interrupted on Fargate Spot: this try runs on on-demand capacity (FARGATE)"
        actions += [
            Count("spot_fallbacks"),
            Count("spot_fallbacks.interruption"),
            Note("ecs task on on-demand capacity", text),
            Log(logging.INFO, f"{workload_id}: {text}"),
        ]
    return rec, actions


def adopt(queueing: str, workload_id: str, *, arn: str, cluster: str, now: float, policy: Policy) -> Decision:
    """A task that an earlier scheduler launched: tracked from here on, never launched twice.

    Its container, launch attempt and workload are learnt from its first observation; until then it
    cannot be relaunched. A task that cannot be described (throttling, errors) is kept and tracked;
    one that ECS reports MISSING fails after ``missing_grace``.
    """
    rec = Record(
        queueing,
        workload_id,
        cluster,
        None,
        accepted_at=now,
        phase=Phase.PROVISIONING,
        task_arn=arn,
        changed_at=now,
        relaunchable=False,
        adopted=True,
    )
    return rec, [Watch(cluster, arn)]


def decide(rec: Record, event: Event, now: float, policy: Policy) -> Decision:
    """The record after ``event``, and what to do about it. Never raises on an odd combination."""
    handler = _HANDLERS.get(type(event))
    if handler is None:
        return rec, [Log(logging.ERROR, f"{rec.workload_id}: unknown event {type(event).__name__}; ignored")]
    try:
        return handler(rec, event, now, policy)
    except IllegalTransition as exc:  # a bug in this module: keep the record as it was, say so loudly
        return rec, [Log(logging.ERROR, f"BUG: {exc} on {type(event).__name__}; the record is kept unchanged")]


def orphan_launch(event: Event, cluster: str) -> list[Action]:
    """A launch result for a queueing the executor no longer holds: stop any task it started."""
    if isinstance(event, Started) and event.observation.last_status != STOPPED:
        arn = event.observation.arn
        return [StopTask(cluster, arn, "no longer wanted by Airflow"), Log(logging.INFO, f"stopping orphan {arn}")]
    return []


# ---------------------------------------------------------------------------------------------- handlers
def _ignored(rec: Record, why: str) -> Decision:
    return rec, [Log(logging.DEBUG, f"{rec.workload_id} [{rec.queueing}]: {why}; ignored")]


def _current_launch(rec: Record, attempt: int) -> bool:
    return not rec.done and rec.phase is Phase.LAUNCHING and attempt == rec.attempt


def _withdraw_launch(rec: Record) -> list[Action]:
    """Withdraw a RunTask not sent yet, unless an earlier send of it may have started a task.

    After a lost response (``resends``) the same-token resend is the only way to learn the task the
    first call may have started: it is kept, and the task it names is stopped as an orphan.
    """
    return [CancelLaunch()] if rec.phase is Phase.LAUNCHING and rec.resends == 0 else []


def _end(rec: Record, phase: Phase, now: float, reason: str | None, kind: str | None) -> Decision:
    """Final state: report it (unless superseded), stop watching, withdraw a pending launch."""
    actions: list[Action] = _withdraw_launch(rec)
    if rec.task_arn:
        actions.append(Unwatch(rec.cluster, rec.task_arn))
    if rec.superseded:
        rec = advance(rec, Phase.RELEASED, at=now, reason=reason)
        return rec, [*actions, Release(f"superseded queueing ended: {reason or phase.value}")]
    rec = advance(rec, phase, at=now, reason=reason)
    if phase is Phase.SUCCEEDED:
        return rec, [*actions, Report(True)]
    return rec, [*actions, Report(False, reason, kind), Count("failures"), Count(f"failures.{kind or 'other'}")]


def _next_attempt(
    rec: Record,
    now: float,
    policy: Policy,
    reason: str,
    metric: str,
    *,
    pace: Pace = Pace.RELAUNCH,
    within: float | None = None,
) -> Decision:
    """A new launch attempt (new clientToken) after a failed placement or start, or give up.

    Attempts lost to a Fargate Spot shortfall (``spot_retries``) do not count against
    max_launch_attempts: Spot's wait is bounded by the plan's ``fallback_after`` instead.
    """
    if rec.started:  # judge never asks this of a started task; the guard keeps the promise regardless
        rec, ended = _end(rec, Phase.FAILED, now, reason, "failed_after_start")
        return rec, [Count(metric), *ended]
    if rec.superseded or not rec.relaunchable or rec.attempt - rec.spot_retries >= policy.max_launch_attempts:
        tail = " (adopted task: its workload cannot be launched again)" if not rec.relaunchable else ""
        reason = f"{reason}; gave up after {rec.attempt} launch attempt(s){tail}"
        rec, ended = _end(rec, Phase.FAILED, now, reason, "launch_attempts")
        return rec, [Count(metric), *ended]
    actions: list[Action] = [Count(metric)]
    if rec.task_arn:
        actions.append(Unwatch(rec.cluster, rec.task_arn))
    attempt = rec.attempt + 1
    if rec.adopted:  # relaunched by this scheduler: from now on bounded by launch_timeout like any launch
        rec = replace(rec, adopted=False, accepted_at=now)
        actions.append(WakeAt(now + policy.launch_timeout))
    if rec.phase is not Phase.PENDING:
        rec = advance(rec, Phase.PENDING, at=now)
    rec = advance(
        rec,
        Phase.LAUNCHING,
        at=now,
        attempt=attempt,
        task_arn=None,
        version=-1,
        missing_since=None,
        resends=0,
        reason=reason,
        capacity=None,
    )
    return rec, [
        *actions,
        Launch(attempt, new_request=True, pace=pace, step=attempt - 1, on_demand=rec.on_demand, within=within),
        Note("ecs task relaunched", reason),
        Log(logging.INFO, f"{rec.workload_id}: {reason}; launching again (attempt {attempt})"),
    ]


def _on_started(rec: Record, ev: Started, now: float, policy: Policy) -> Decision:
    obs = ev.observation
    if obs.arn == rec.task_arn:
        return _ignored(rec, f"launch result for {obs.arn} again")
    if not _current_launch(rec, ev.attempt) or rec.superseded:
        # A task started for an attempt that is no longer current, or after the record ended: the
        # queueing must never have two live ECS tasks.
        stale = Log(logging.INFO, f"{rec.workload_id}: task {obs.arn} of a stale launch")
        return rec, [*orphan_launch(ev, rec.cluster), stale]
    rec = advance(rec, Phase.PROVISIONING, at=now, task_arn=obs.arn, resends=0, missing_since=None)
    where = f" on {obs.capacity_provider}" if obs.capacity_provider else ""
    actions: list[Action] = [
        Watch(rec.cluster, obs.arn),
        Running(obs.arn),
        Log(logging.INFO, f"ECS task launched for {rec.workload_id}: {obs.arn}{where} (attempt {rec.attempt})"),
    ]
    if obs.capacity_provider:
        actions.append(Count(f"capacity.{obs.capacity_provider}"))
        if rec.spot or rec.on_demand:  # where a Spot-minded task landed is worth a line in the UI
            actions.append(Note("ecs task capacity", f"ECS task {obs.arn} runs on {obs.capacity_provider}"))
    rec, more = _on_observed(rec, Observed(obs), now, policy)
    return rec, actions + more


def _on_not_placed(rec: Record, ev: NotPlaced, now: float, policy: Policy) -> Decision:
    if not _current_launch(rec, ev.attempt):
        return _ignored(rec, f"placement failure of attempt {ev.attempt}")
    reason = f"ECS could not place the task: {ev.reason}"
    if _spot_short(rec, ev.reason):
        return _spot_shortfall(rec, now, policy, reason, "placement_failures")
    return _next_attempt(rec, now, policy, reason, "placement_failures")


def _spot_short(rec: Record, reason: str | None) -> bool:
    """A capacity shortfall of a launch that may have gone to Fargate Spot (and has not left it yet)."""
    return rec.spot and not rec.on_demand and rec.capacity in (None, SPOT_PROVIDER) and is_capacity_shortfall(reason)


def _spot_shortfall(rec: Record, now: float, policy: Policy, reason: str, metric: str) -> Decision:
    """Fargate Spot had no capacity: try Spot again until ``fallback_after``, then on-demand; no try spent."""
    since = rec.spot_short_since if rec.spot_short_since is not None else now
    rec = replace(rec, spot_short_since=since, spot_retries=rec.spot_retries + 1)
    waited = now - since
    if waited < rec.plan.fallback_after:
        # Spot again, but never later than the moment the fallback falls due.
        return _next_attempt(rec, now, policy, reason, metric, within=since + rec.plan.fallback_after - now)
    rec = replace(rec, on_demand=True)
    text = (
        f"Fargate Spot had no capacity for {waited:.0f} s ({reason}); "
        "launching on on-demand capacity (FARGATE), the same try"
    )
    rec, actions = _next_attempt(rec, now, policy, text, metric, pace=Pace.NOW)
    if rec.done:
        return rec, actions
    return rec, [Count("spot_fallbacks"), Count("spot_fallbacks.shortfall"), *actions]


def _on_call_failed(rec: Record, ev: CallFailed, now: float, policy: Policy) -> Decision:
    if not _current_launch(rec, ev.attempt):
        return _ignored(rec, f"RunTask error {ev.code} of attempt {ev.attempt}")
    text = f"{ev.code}: {ev.message}"
    if ev.kind is LaunchErrorKind.REJECTED:
        rec, ended = _end(rec, Phase.FAILED, now, f"RunTask rejected the task: {text}", "rejected")
        return rec, [*ended, Count(f"failures.{ev.code}")]
    if ev.kind is LaunchErrorKind.CONFLICT:
        # ECS already used this clientToken for a different request. The task it names is not this
        # queueing's: launch again under a fresh token, never adopt it.
        return _next_attempt(rec, now, policy, f"the clientToken was already used ({text})", "token_conflicts")
    resends = rec.resends + 1
    rec = replace(rec, resends=resends, reason=text)
    pace = Pace.THROTTLED if ev.kind is LaunchErrorKind.THROTTLED else Pace.TRANSIENT
    actions: list[Action] = [Launch(rec.attempt, new_request=False, pace=pace, step=resends, on_demand=rec.on_demand)]
    if ev.kind is LaunchErrorKind.THROTTLED:
        actions.append(Count("run_task_throttles"))
    elif ev.kind is LaunchErrorKind.CREDENTIALS and resends == 1:
        actions.append(Log(logging.WARNING, f"AWS credentials missing or expired ({ev.code}); launches wait"))
    return rec, actions


def _on_invalid(rec: Record, ev: Invalid, now: float, policy: Policy) -> Decision:
    if not _current_launch(rec, ev.attempt):
        return _ignored(rec, f"invalid request of attempt {ev.attempt}")
    return _end(rec, Phase.FAILED, now, f"not launched: {ev.message}", "invalid_request")


def _needs_fresh_look(rec: Record) -> bool:
    """The record waits for any sight of its task, even an unchanged one.

    It was MISSING, or it was superseded and its stop is decided on the next observation.
    """
    return rec.missing_since is not None or (rec.superseded and not rec.stop_requested)


def _on_observed(rec: Record, ev: Observed, now: float, policy: Policy) -> Decision:
    obs = ev.observation
    if rec.done or obs.arn != rec.task_arn:
        return _ignored(rec, f"observation of {obs.arn} ({obs.last_status})")
    if obs.version and obs.version <= rec.version and not _needs_fresh_look(rec):
        # ECS events arrive at least once and in any order, and DescribeTasks may show an older
        # state than an event already applied: the task's version orders them. An equal version is
        # the same state again (a duplicate event, a poll that learnt nothing new).
        return _ignored(rec, f"version {obs.version} of {obs.arn} is not newer than {rec.version}")
    actions: list[Action] = []
    changes: dict[str, object] = {"version": max(rec.version, obs.version), "missing_since": None}
    if rec.adopted and rec.container is None:
        # What the task was launched with: the container whose command we overrode.
        changes["container"] = next((name for name, command in obs.commands if command), None)
    if obs.launch_attempt and obs.launch_attempt > rec.attempt:
        changes["attempt"] = obs.launch_attempt
    if obs.capacity_provider:
        changes["capacity"] = obs.capacity_provider
    started = rec.started or obs.started or obs.last_status == "RUNNING"
    if started and not rec.started:
        changes["started"] = True
        actions.append(Timing("launch_latency", (now - rec.accepted_at) * 1000))
    rec = replace(rec, **changes)  # type: ignore[arg-type]
    outcome = judge(obs, rec.container, started=rec.started)
    if outcome.verdict in (Verdict.WAITING, Verdict.RUNNING):
        if rec.started and rec.phase is Phase.PROVISIONING:
            rec = advance(rec, Phase.RUNNING, at=now)
        if rec.superseded and not rec.started and not rec.stop_requested:
            # ECS shows it has not started: it would run a stale workload. Stop it.
            rec = replace(rec, stop_requested=True)
            actions.append(StopTask(rec.cluster, obs.arn, "superseded by a newer queueing"))
        return rec, actions
    if outcome.verdict is Verdict.SUCCEEDED:
        rec, more = _end(rec, Phase.SUCCEEDED, now, None, None)
    elif outcome.verdict is Verdict.RELAUNCH:
        reason = outcome.reason or "the ECS task failed to start"
        if outcome.kind == NOT_OPENED_KIND:  # the container ran, Airflow's task did not: a start failure
            rec = replace(rec, started=False)
        if _spot_short(rec, obs.stopped_reason):
            rec, more = _spot_shortfall(rec, now, policy, reason, "failed_to_start")
        else:
            rec, more = _next_attempt(rec, now, policy, reason, "failed_to_start")
    elif is_spot_interruption(outcome.kind, rec.capacity):
        # The container ran: the try is spent and Airflow's retries apply. The next try may avoid Spot.
        reason = outcome.reason or "Spot interruption"
        follow: list[Action] = [Count("spot_interruptions")]
        if rec.plan.on_demand_after_interruption and not rec.superseded:
            reason += "; the next try runs on on-demand capacity (FARGATE)"
            follow.append(OnDemandNextTry())
        rec, more = _end(rec, Phase.FAILED, now, reason, outcome.kind)
        more = follow + more
    else:
        rec, more = _end(rec, Phase.FAILED, now, outcome.reason, outcome.kind)
    return rec, actions + more


def _on_missing(rec: Record, ev: Missing, now: float, policy: Policy) -> Decision:
    if rec.done or ev.arn != rec.task_arn:
        return _ignored(rec, f"MISSING {ev.arn}")
    if rec.missing_since is not None:
        return replace(rec, reason=ev.why or rec.reason), []
    # ECS is eventually consistent: a task just returned by RunTask can briefly be MISSING from
    # DescribeTasks. Only after the grace period is it a failure (see Tick).
    rec = replace(rec, missing_since=now, reason=ev.why or rec.reason)
    return rec, [WakeAt(now + policy.missing_grace + 0.001)]


def _on_tick(rec: Record, ev: Tick, now: float, policy: Policy) -> Decision:
    if rec.done:
        return rec, []
    if rec.missing_since is not None and now - rec.missing_since > policy.missing_grace:
        arn = rec.task_arn
        why = f": {rec.reason}" if rec.reason and rec.adopted else ""
        # Stopped as well, should ECS come to know it again: the queueing ends with no task left behind.
        stop: list[Action] = [StopTask(rec.cluster, arn, "MISSING from DescribeTasks")] if arn else []
        rec, actions = _end(
            rec, Phase.FAILED, now, f"ECS no longer knows task {arn} (DescribeTasks: MISSING){why}", "missing"
        )
        return rec, stop + actions
    if not rec.started and not rec.adopted and now - rec.accepted_at > policy.launch_timeout:
        last = f" (last problem: {rec.reason})" if rec.reason else ""
        arn = rec.task_arn
        reason = f"the ECS task did not start within {policy.launch_timeout:.0f} s{last}"
        rec, actions = _end(rec, Phase.FAILED, now, reason, "launch_timeout")
        return rec, ([StopTask(rec.cluster, arn, "did not start within launch_timeout")] if arn else []) + actions
    return rec, []


def _withdraw(rec: Record, now: float, why: str, stop_reason: str) -> Decision:
    """End the record without a report, stopping its task if it has one."""
    actions: list[Action] = _withdraw_launch(rec)
    if rec.task_arn:
        actions += [StopTask(rec.cluster, rec.task_arn, stop_reason), Unwatch(rec.cluster, rec.task_arn)]
    rec = advance(rec, Phase.RELEASED, at=now, reason=why)
    return rec, [*actions, Release(why)]


def _on_revoked(rec: Record, ev: Revoked, now: float, policy: Policy) -> Decision:
    if rec.done:
        return rec, []
    return _withdraw(rec, now, "revoked by Airflow", "revoked by Airflow")


def _on_superseded(rec: Record, ev: Superseded, now: float, policy: Policy) -> Decision:
    if rec.done or rec.superseded:
        return rec, []
    if rec.task_arn is None:
        # No ECS task yet: its workload is stale, Airflow has handed the task instance over again.
        return _withdraw(rec, now, "superseded by a newer queueing", "superseded by a newer queueing")
    # Usually the container ran (a poke that asked to be rescheduled, a task that deferred) and is
    # about to stop: follow it to STOPPED and report nothing (Airflow already knows how it ended).
    # An observation that shows it never started stops it (see _on_observed).
    rec = replace(rec, superseded=True)
    return rec, [Log(logging.INFO, f"{rec.workload_id} [{rec.queueing}]: superseded by a newer queueing")]


def _on_shutting_down(rec: Record, ev: ShuttingDown, now: float, policy: Policy) -> Decision:
    if rec.done or not ev.unsent or rec.phase is not Phase.LAUNCHING:
        return rec, []
    rec = advance(rec, Phase.RELEASED, at=now, reason="scheduler shutting down before launch")
    return rec, [Release("not launched before the scheduler shut down; Airflow queues it again")]


_Handler = Callable[[Record, object, float, Policy], Decision]
_HANDLERS: Final[dict[type, _Handler]] = {
    Started: _on_started,  # type: ignore[dict-item]
    NotPlaced: _on_not_placed,  # type: ignore[dict-item]
    CallFailed: _on_call_failed,  # type: ignore[dict-item]
    Invalid: _on_invalid,  # type: ignore[dict-item]
    Observed: _on_observed,  # type: ignore[dict-item]
    Missing: _on_missing,  # type: ignore[dict-item]
    Tick: _on_tick,  # type: ignore[dict-item]
    Revoked: _on_revoked,  # type: ignore[dict-item]
    Superseded: _on_superseded,  # type: ignore[dict-item]
    ShuttingDown: _on_shutting_down,  # type: ignore[dict-item]
}
