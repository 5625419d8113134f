"""core.decide: table tests for the orders people thought of, properties for every other order.

The stateful test feeds one record arbitrary sequences of events: launch results of current and
stale attempts, observations with every ECS lastStatus and stopCode in any order and version
(repeats, older versions, other tasks' ARNs), MISSING, DescribeTasks refusals, throttles, revokes,
newer queueings, shutdowns and clock ticks. After every step it checks the promise.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from airflow_ecs_executor.core import decide as core
from airflow_ecs_executor.core.classify import UNSEAL_EXIT_CODE, ContainerObservation, LaunchErrorKind, TaskObservation
from airflow_ecs_executor.core.lifecycle import Phase, Record, SpotPlan

POLICY = core.Policy(max_launch_attempts=3, launch_timeout=100.0, missing_grace=10.0)
# Every lastStatus and stopCode of the ECS API model (DescribeTasks Task.lastStatus, TaskStopCode).
STATUSES = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED")
STOP_CODES = (
    None,
    "TaskFailedToStart",
    "EssentialContainerExited",
    "UserInitiated",
    "ServiceSchedulerInitiated",
    "SpotInterruption",
    "TerminationNotice",
    "InfrastructureHealth",
)
ARN = "arn:aws:ecs:us-east-1:123456789012:task/airflow/"
# Fargate's words for a capacity shortfall (AWS knowledge center, ecs-fargate-runtask-capacity).
CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone"


def obs(
    arn: str,
    status: str,
    *,
    started: bool = False,
    exit_code: int | None = None,
    stop_code: str | None = None,
    version: int = 0,
    reason: str | None = None,
    capacity: str | None = None,
) -> TaskObservation:
    return TaskObservation(
        arn=arn,
        last_status=status,
        desired_status="STOPPED" if status == "STOPPED" else "RUNNING",
        version=version,
        started=started,
        stop_code=stop_code,
        stopped_reason=reason,
        containers=(ContainerObservation("base", status, exit_code),),
        capacity_provider=capacity,
    )


def accepted(now: float = 0.0) -> Record:
    rec, actions = core.accept("q1", "dag/t/run/-1/1", cluster="airflow", container="base", now=now, policy=POLICY)
    assert core.Launch(1, new_request=True) in actions
    return rec


def step(rec: Record, event: core.Event, now: float = 1.0) -> tuple[Record, list[core.Action]]:
    return core.decide(rec, event, now, POLICY)


def kinds(actions: list[core.Action]) -> list[str]:
    return [type(a).__name__ for a in actions if not isinstance(a, core.Log)]


# ------------------------------------------------------------------------------------------ table tests
def test_a_never_started_task_seen_stopping_waits_for_stopped_then_is_relaunched() -> None:
    """The bug: a task that failed to start was judged RUNNING while STOPPING, then lost."""
    rec, _ = step(accepted(), core.Started(1, obs(ARN + "a", "PROVISIONING")))
    for status in ("STOPPING", "DEPROVISIONING"):
        rec, actions = step(rec, core.Observed(obs(ARN + "a", status, stop_code="TaskFailedToStart")))
        assert rec.phase is Phase.PROVISIONING and not rec.started and kinds(actions) == []
    rec, actions = step(
        rec, core.Observed(obs(ARN + "a", "STOPPED", stop_code="TaskFailedToStart", reason="CannotPullContainerError"))
    )
    assert rec.phase is Phase.LAUNCHING and rec.attempt == 2 and rec.task_arn is None
    assert core.Launch(2, new_request=True, pace=core.Pace.RELAUNCH, step=1) in actions
    assert not any(isinstance(a, core.Report) for a in actions)


def test_a_started_task_that_stops_is_failed_never_relaunched() -> None:
    rec, _ = step(accepted(), core.Started(1, obs(ARN + "a", "PENDING")))
    rec, _ = step(rec, core.Observed(obs(ARN + "a", "RUNNING", started=True, version=3)))
    assert rec.phase is Phase.RUNNING
    # ECS cannot contradict itself into a relaunch: a later TaskFailedToStart is still a failure.
    rec, actions = step(rec, core.Observed(obs(ARN + "a", "STOPPED", stop_code="TaskFailedToStart", version=5)))
    assert rec.phase is Phase.FAILED
    assert not any(isinstance(a, core.Launch) for a in actions)


def test_an_older_version_is_ignored() -> None:
    rec, _ = step(accepted(), core.Started(1, obs(ARN + "a", "PENDING", version=2)))
    rec, _ = step(rec, core.Observed(obs(ARN + "a", "STOPPED", started=True, exit_code=0, version=9)))
    assert rec.phase is Phase.SUCCEEDED
    same, actions = step(rec, core.Observed(obs(ARN + "a", "RUNNING", started=True, version=4)))
    assert same == rec and kinds(actions) == []


def test_a_conflicting_client_token_is_never_taken_for_our_task() -> None:
    rec, actions = step(accepted(), core.CallFailed(1, LaunchErrorKind.CONFLICT, "ConflictException", "token used"))
    assert rec.attempt == 2 and rec.task_arn is None
    assert core.Launch(2, new_request=True, pace=core.Pace.RELAUNCH, step=1) in actions


@pytest.mark.parametrize("kind", [LaunchErrorKind.THROTTLED, LaunchErrorKind.TRANSIENT, LaunchErrorKind.CREDENTIALS])
def test_an_unknown_outcome_is_resent_with_the_same_request(kind: LaunchErrorKind) -> None:
    rec, actions = step(accepted(), core.CallFailed(1, kind, "Code", "message"))
    launches = [a for a in actions if isinstance(a, core.Launch)]
    assert launches == [core.Launch(1, new_request=False, pace=launches[0].pace, step=1)]
    assert rec.attempt == 1


def test_a_launch_of_a_stale_attempt_is_stopped() -> None:
    rec, _ = step(accepted(), core.NotPlaced(1, "RESOURCE:MEMORY"))
    rec, actions = step(rec, core.Started(1, obs(ARN + "late", "PENDING")))
    assert core.StopTask("airflow", ARN + "late", "no longer wanted by Airflow") in actions
    assert rec.task_arn is None


def test_a_superseded_queueing_that_ran_is_followed_to_its_end_and_never_reported() -> None:
    """A reschedule-mode sensor's first poke: Airflow already knows how it ended."""
    rec, _ = step(accepted(), core.Started(1, obs(ARN + "a", "RUNNING", started=True)))
    rec, actions = step(rec, core.Superseded())
    assert rec.superseded and not rec.done
    rec, actions = step(rec, core.Observed(obs(ARN + "a", "STOPPED", started=True, exit_code=0)))
    assert rec.phase is Phase.RELEASED
    assert not any(isinstance(a, core.Report) for a in actions)
    assert any(isinstance(a, core.Release) for a in actions)


def test_a_superseded_queueing_is_stopped_only_when_ecs_shows_it_never_started() -> None:
    rec, _ = step(accepted(), core.Started(1, obs(ARN + "a", "PENDING")))
    rec, actions = step(rec, core.Superseded())
    assert rec.superseded and not rec.done and kinds(actions) == []  # not seen started yet: maybe it ran
    rec, actions = step(rec, core.Observed(obs(ARN + "a", "PENDING", version=2)))
    assert core.StopTask("airflow", ARN + "a", "superseded by a newer queueing") in actions
    rec, actions = step(rec, core.Observed(obs(ARN + "a", "STOPPED", stop_code="UserInitiated", version=4)))
    assert rec.phase is Phase.RELEASED and not any(isinstance(a, core.Report | core.Launch) for a in actions)


def test_a_superseded_queueing_without_a_task_is_withdrawn() -> None:
    rec, actions = step(accepted(), core.Superseded())
    assert rec.phase is Phase.RELEASED and core.CancelLaunch() in actions


def test_launch_timeout_fails_what_never_started_and_stops_it() -> None:
    rec, _ = step(accepted(), core.Started(1, obs(ARN + "a", "PENDING")))
    rec, actions = step(rec, core.Tick(), now=POLICY.launch_timeout + 1)
    assert rec.phase is Phase.FAILED
    assert core.StopTask("airflow", ARN + "a", "did not start within launch_timeout") in actions
    assert "did not start within 100 s" in (rec.reason or "")


def test_shutdown_hands_back_only_launches_never_sent() -> None:
    rec, actions = step(accepted(), core.ShuttingDown(unsent=True))
    assert rec.phase is Phase.RELEASED and any(isinstance(a, core.Release) for a in actions)
    running, _ = step(accepted(), core.Started(1, obs(ARN + "a", "RUNNING", started=True)))
    assert step(running, core.ShuttingDown(unsent=True))[0] == running


def test_adopted_task_learns_its_container_and_attempt_from_its_observation() -> None:
    rec, actions = core.adopt("q", "dag/t/run/-1/1", arn=ARN + "a", cluster="airflow", now=0.0, policy=POLICY)
    assert actions == [core.Watch("airflow", ARN + "a")] and rec.container is None
    seen = TaskObservation(
        arn=ARN + "a",
        last_status="STOPPED",
        desired_status="STOPPED",
        started=True,
        containers=(ContainerObservation("sidecar", "STOPPED", 1), ContainerObservation("worker", "STOPPED", 0)),
        commands=(("worker", ("python", "-m", "x")),),
        launch_attempt=2,
    )
    rec, actions = step(rec, core.Observed(seen))
    assert (rec.container, rec.attempt, rec.phase) == ("worker", 2, Phase.SUCCEEDED)


def test_an_adopted_task_that_cannot_be_described_is_kept() -> None:
    rec, _ = core.adopt("q", "dag/t/run/-1/1", arn=ARN + "a", cluster="airflow", now=0.0, policy=POLICY)
    rec, _ = step(rec, core.Tick(), now=10_000.0)
    assert not rec.done
    rec, _ = step(rec, core.Missing(ARN + "a", "InvalidParameterException: Identifier is for account 1"), now=10.0)
    rec, _ = step(rec, core.Tick(), now=10.0 + POLICY.missing_grace + 1)
    assert rec.phase is Phase.FAILED and "Identifier is for account 1" in (rec.reason or "")


# ------------------------------------------------------------------------------------------ properties
class OneQueueing(RuleBasedStateMachine):
    """A record fed events in any order, ECS tasks tracked as ECS would keep them."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.rec: Record | None = None
        self.sent: set[int] = set()  # attempts the executor asked to launch
        self.arns: list[str] = []
        self.live: set[str] = set()  # ECS tasks of this queueing that run and were not asked to stop
        self.ended: set[str] = set()  # tasks ECS showed STOPPED or the executor asked to stop
        self.reports = 0
        self.releases = 0
        self.n = 0
        self.unopened = False  # the event being applied shows exit 77 (sealed workload not opened)
        self.spot_launch_after_on_demand = False

    def _apply(self, event: core.Event) -> None:
        assert self.rec is not None
        was_started = self.rec.started
        was_done = self.rec.done
        self.unopened = isinstance(event, core.Observed) and any(
            c.exit_code == UNSEAL_EXIT_CODE for c in event.observation.containers
        )
        rec, actions = core.decide(self.rec, event, self.now, POLICY)  # never raises: checked by running it
        self._check_actions(rec, actions, was_started=was_started, was_done=was_done)
        self.rec = rec

    def _check_actions(self, rec: Record, actions: list[core.Action], *, was_started: bool, was_done: bool) -> None:
        for action in actions:
            if isinstance(action, core.Log):
                assert not action.message.startswith("BUG"), action.message
            if isinstance(action, core.Launch):
                # A container that could not open its sealed workload ran no Airflow task: the one exception.
                assert not was_started or self.unopened, "relaunched after its container started"
                assert not was_done, "launched after the record ended"
                assert rec.phase is Phase.LAUNCHING
                self.sent.add(action.attempt)
                # Once on on-demand capacity, a queueing never goes back to Spot.
                assert action.on_demand == rec.on_demand
                if action.on_demand:
                    assert rec.spot or self.accepted_on_demand, "on-demand launch of a queueing that never met Spot"
                # A Spot retry never waits beyond the moment the fallback falls due.
                if action.within is not None and rec.spot_short_since is not None:
                    assert self.now + action.within <= rec.spot_short_since + rec.plan.fallback_after + 1e-6
            if isinstance(action, core.OnDemandNextTry):
                assert any(isinstance(a, core.Report) and not a.success for a in actions), actions
                assert rec.plan.on_demand_after_interruption
            if isinstance(action, core.StopTask):
                self.live.discard(action.arn)
                self.ended.add(action.arn)
            if isinstance(action, core.Report):
                self.reports += 1
            if isinstance(action, core.Release):
                self.releases += 1
            if was_done:
                assert not isinstance(action, core.Report | core.Release | core.Watch | core.Running), action

    def _new_arn(self) -> str:
        self.n += 1
        arn = f"{ARN}{self.n:032x}"
        self.arns.append(arn)
        return arn

    @initialize(
        adopted=st.booleans(),
        spot=st.booleans(),
        on_demand=st.booleans(),
        fallback_after=st.sampled_from([0.0, 5.0, 60.0]),
        after_interruption=st.booleans(),
    )
    def start(
        self, adopted: bool, spot: bool, on_demand: bool, fallback_after: float, after_interruption: bool
    ) -> None:
        self.accepted_on_demand = False
        if adopted:
            arn = self._new_arn()
            self.live.add(arn)
            self.rec, _ = core.adopt("q", "w", arn=arn, cluster="airflow", now=0.0, policy=POLICY)
        else:
            plan = SpotPlan(fallback_after, after_interruption)
            self.rec, _ = core.accept(
                "q",
                "w",
                cluster="airflow",
                container="base",
                now=0.0,
                policy=POLICY,
                spot=spot,
                plan=plan,
                on_demand=on_demand,
            )
            self.accepted_on_demand = self.rec.on_demand
            self.sent.add(1)

    @rule(data=st.data(), same_arn=st.booleans(), status=st.sampled_from(STATUSES))
    def launch_started(self, data: st.DataObject, same_arn: bool, status: str) -> None:
        attempt = data.draw(st.sampled_from(sorted(self.sent))) if self.sent else 1
        arn = self.arns[-1] if same_arn and self.arns else self._new_arn()
        if status != "STOPPED" and arn not in self.ended:
            self.live.add(arn)
        self._apply(core.Started(attempt, obs(arn, status)))

    @rule(attempt=st.integers(1, 4), kind=st.sampled_from(list(LaunchErrorKind)))
    def launch_failed(self, attempt: int, kind: LaunchErrorKind) -> None:
        self._apply(core.CallFailed(attempt, kind, "Code", "message"))

    @rule(attempt=st.integers(1, 4), reason=st.sampled_from(["RESOURCE:CPU", CAPACITY]))
    def not_placed(self, attempt: int, reason: str) -> None:
        self._apply(core.NotPlaced(attempt, reason))

    @rule(attempt=st.integers(1, 4))
    def invalid(self, attempt: int) -> None:
        self._apply(core.Invalid(attempt, "overrides too long"))

    @precondition(lambda self: bool(self.arns))
    @rule(
        data=st.data(),
        status=st.sampled_from(STATUSES),
        started=st.booleans(),
        exit_code=st.sampled_from([None, 0, 1, 137, UNSEAL_EXIT_CODE]),
        stop_code=st.sampled_from(STOP_CODES),
        version=st.integers(0, 20),
        capacity=st.sampled_from([None, "FARGATE", "FARGATE_SPOT"]),
        reason=st.sampled_from([None, CAPACITY, "Essential container in task exited"]),
    )
    def observed(
        self,
        data: st.DataObject,
        status: str,
        started: bool,
        exit_code: int | None,
        stop_code: str | None,
        version: int,
        capacity: str | None,
        reason: str | None,
    ) -> None:
        arn = data.draw(st.sampled_from(self.arns))
        if status == "STOPPED" or (status in ("DEACTIVATING", "STOPPING", "DEPROVISIONING") and exit_code is not None):
            # STOPPED, or its container has exited and ECS is winding it down: it runs nothing more.
            self.live.discard(arn)
            self.ended.add(arn)
        self._apply(
            core.Observed(
                obs(
                    arn,
                    status,
                    started=started,
                    exit_code=exit_code,
                    stop_code=stop_code,
                    version=version,
                    capacity=capacity,
                    reason=reason,
                )
            )
        )

    @precondition(lambda self: bool(self.arns))
    @rule(data=st.data(), refused=st.booleans())
    def missing(self, data: st.DataObject, refused: bool) -> None:
        arn = data.draw(st.sampled_from(self.arns))
        self._apply(core.Missing(arn, "InvalidParameterException: no" if refused else None))

    @rule(seconds=st.floats(0, 300))
    def tick(self, seconds: float) -> None:
        self.now += seconds
        self._apply(core.Tick())

    @rule()
    def revoked(self) -> None:
        self._apply(core.Revoked())

    @rule()
    def superseded(self) -> None:
        self._apply(core.Superseded())

    @rule(unsent=st.booleans())
    def shutting_down(self, unsent: bool) -> None:
        self._apply(core.ShuttingDown(unsent=unsent))

    @invariant()
    def reported_at_most_once(self) -> None:
        assert self.reports + self.releases <= 1
        if self.rec is not None and self.rec.done:
            assert self.reports + self.releases == 1

    @invariant()
    def never_two_live_tasks(self) -> None:
        assert len(self.live) <= 1, self.live

    @invariant()
    def an_ended_record_leaves_no_task_running(self) -> None:
        if self.rec is not None and self.rec.done and not self.rec.superseded:
            assert not self.live, self.live

    def teardown(self) -> None:
        """Whatever happened, ECS saying STOPPED (or the deadlines passing) ends the record, reported once."""
        if self.rec is None:
            return
        for _ in range(POLICY.max_launch_attempts + 2):
            if self.rec.done:
                break
            if self.rec.task_arn:
                stopped = obs(self.rec.task_arn, "STOPPED", started=self.rec.started, exit_code=1, version=99)
                self._apply(core.Observed(stopped))
            elif self.rec.phase is Phase.LAUNCHING:
                self._apply(core.NotPlaced(self.rec.attempt, "RESOURCE:CPU"))
            else:
                self.now += 10_000
                self._apply(core.Tick())
        assert self.rec.done, self.rec
        assert self.reports + self.releases == 1


OneQueueing.TestCase.settings = settings(
    max_examples=300, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestOneQueueing = OneQueueing.TestCase


def test_unknown_event_is_logged_not_raised() -> None:
    rec = accepted()
    same, actions = core.decide(rec, object(), 1.0, POLICY)  # type: ignore[arg-type]
    assert same == rec
    assert [a.level for a in actions if isinstance(a, core.Log)] == [logging.ERROR]


def test_an_exited_container_is_final_before_ecs_reaches_stopped() -> None:
    """A poke's success reaches Airflow seconds earlier: STOPPING can last tens of seconds on Fargate."""
    rec, _ = step(accepted(), core.Started(1, obs(ARN + "a", "RUNNING", started=True)))
    rec, actions = step(rec, core.Observed(obs(ARN + "a", "STOPPING", started=True, exit_code=0, version=4)))
    assert rec.phase is Phase.SUCCEEDED and core.Report(True) in actions


def test_a_resend_after_a_lost_response_is_kept_to_find_and_stop_its_task() -> None:
    """The first RunTask may have started a task: only the same-token resend can name it."""
    rec, _ = step(accepted(), core.CallFailed(1, LaunchErrorKind.TRANSIENT, "ReadTimeoutError", "lost"))
    rec, actions = step(rec, core.Revoked())
    assert rec.phase is Phase.RELEASED and core.CancelLaunch() not in actions
    _, actions = step(rec, core.Started(1, obs(ARN + "lost", "PENDING")))
    assert core.StopTask("airflow", ARN + "lost", "no longer wanted by Airflow") in actions


def test_a_relaunched_adopted_task_is_bounded_by_launch_timeout() -> None:
    rec, _ = core.adopt("q", "w", arn=ARN + "a", cluster="airflow", now=0.0, policy=POLICY)
    rec = rec.__class__(**{**rec.__dict__, "relaunchable": True})
    seen = obs(ARN + "a", "STOPPED", stop_code="TaskFailedToStart")
    rec, actions = step(rec, core.Observed(seen), now=5.0)
    assert rec.phase is Phase.LAUNCHING and core.WakeAt(5.0 + POLICY.launch_timeout) in actions
    rec, _ = step(rec, core.Tick(), now=5.0 + POLICY.launch_timeout + 1)
    assert rec.phase is Phase.FAILED


@pytest.mark.parametrize("seen_running", [True, False], ids=["seen-running", "first-seen-stopped"])
def test_a_workload_that_could_not_be_opened_is_a_start_failure(seen_running: bool) -> None:
    """Exit 77 of the unseal step: the container ran, Airflow's task did not; launch again, no try spent."""
    rec, _ = step(accepted(), core.Started(1, obs(ARN + "a", "PENDING")))
    if seen_running:
        rec, _ = step(rec, core.Observed(obs(ARN + "a", "RUNNING", started=True, version=2)))
        assert rec.phase is Phase.RUNNING
    stopped = obs(ARN + "a", "STOPPED", started=True, exit_code=UNSEAL_EXIT_CODE, version=4)
    rec, actions = step(rec, core.Observed(stopped))
    assert rec.phase is Phase.LAUNCHING and rec.attempt == 2 and not rec.started
    assert core.Launch(2, new_request=True, pace=core.Pace.RELAUNCH, step=1) in actions
    assert not any(isinstance(a, core.Report) for a in actions)
    assert "could not open the sealed workload" in (rec.reason or "")


# ---------------------------------------------------------------------------------------------- ECS events
# ECS Task State Change events arrive at least once and in any order (AWS_FACTS: Events); the task's
# ``version`` orders them. Here one real task walks its lifecycle while its events are duplicated,
# reordered, dropped and mixed with DescribeTasks polls.
WALK = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED")


def test_a_duplicate_event_is_ignored() -> None:
    rec, _ = step(accepted(), core.Started(1, obs(ARN + "a", "PENDING", version=2)))
    rec, _ = step(rec, core.Observed(obs(ARN + "a", "RUNNING", started=True, version=3)))
    same, actions = step(rec, core.Observed(obs(ARN + "a", "RUNNING", started=True, version=3)))
    assert same == rec and kinds(actions) == []


def test_an_event_older_than_the_last_applied_is_ignored_even_if_it_says_more() -> None:
    """A late PENDING event after RUNNING was applied: the record stays RUNNING."""
    rec, _ = step(accepted(), core.Started(1, obs(ARN + "a", "PROVISIONING", version=1)))
    rec, _ = step(rec, core.Observed(obs(ARN + "a", "RUNNING", started=True, version=4)))
    same, _ = step(rec, core.Observed(obs(ARN + "a", "PENDING", version=2)))
    assert same == rec and same.phase is Phase.RUNNING and same.version == 4


def test_an_unchanged_task_seen_again_after_missing_is_known_again() -> None:
    rec, _ = step(accepted(), core.Started(1, obs(ARN + "a", "RUNNING", started=True, version=3)))
    rec, _ = step(rec, core.Missing(ARN + "a"), now=1.0)
    rec, _ = step(rec, core.Observed(obs(ARN + "a", "RUNNING", started=True, version=3)), now=2.0)
    assert rec.missing_since is None


class EventsOfOneTask(RuleBasedStateMachine):
    """One ECS task's true walk; its events are delivered duplicated, reordered or not at all."""

    def __init__(self) -> None:
        super().__init__()
        self.rec, _ = core.accept("q", "w", cluster="airflow", container="base", now=0.0, policy=POLICY)
        self.step = 0  # index into WALK of the task's true status
        self.exit_code = 0
        self.pending: list[TaskObservation] = []  # events published and not yet delivered
        self.applied_max = 0
        self.reports: list[core.Report] = []

    def _truth(self) -> TaskObservation:
        status = WALK[self.step]
        ran = self.step >= WALK.index("RUNNING")
        exited = self.step >= WALK.index("STOPPING")
        return obs(
            ARN + "t",
            status,
            started=ran,
            exit_code=self.exit_code if exited else None,
            stop_code="EssentialContainerExited" if exited else None,
            version=self.step + 1,
        )

    def _apply(self, event: core.Event) -> None:
        rec, actions = core.decide(self.rec, event, 1.0, POLICY)
        for action in actions:
            if isinstance(action, core.Log):
                assert not action.message.startswith("BUG"), action.message
            assert not isinstance(action, core.Launch), "an event of a started task never relaunches it"
            if isinstance(action, core.Report):
                self.reports.append(action)
        assert rec.version >= self.rec.version, "a record's version never goes back"
        self.rec = rec

    @initialize(exit_code=st.sampled_from([0, 1]))
    def launched(self, exit_code: int) -> None:
        self.exit_code = exit_code
        self._apply(core.Started(1, self._truth()))

    @precondition(lambda self: self.step < len(WALK) - 1)
    @rule()
    def ecs_moves(self) -> None:
        self.step += 1
        self.pending.append(self._truth())

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data(), keep=st.booleans())
    def event_delivered(self, data: st.DataObject, keep: bool) -> None:
        """Any pending event, in any order; ``keep``: delivered again later (at least once)."""
        i = data.draw(st.integers(0, len(self.pending) - 1))
        event = self.pending[i] if keep else self.pending.pop(i)
        self._apply(core.Observed(event))

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def event_dropped(self, data: st.DataObject) -> None:
        self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))

    @rule()
    def reconciled(self) -> None:
        self._apply(core.Observed(self._truth()))

    @invariant()
    def reported_once_and_truly(self) -> None:
        assert len(self.reports) <= 1
        if self.reports:
            assert self.reports[0].success is (self.exit_code == 0)
        if self.rec.started:
            assert self.step >= WALK.index("RUNNING"), "started only once ECS said so"

    def teardown(self) -> None:
        """Every event lost after the last one applied: a reconciliation still ends the record truly."""
        self.step = len(WALK) - 1
        self._apply(core.Observed(self._truth()))
        assert self.rec.done and len(self.reports) == 1
        assert self.reports[0].success is (self.exit_code == 0)


EventsOfOneTask.TestCase.settings = settings(
    max_examples=80, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestEventsOfOneTask = EventsOfOneTask.TestCase


# ------------------------------------------------------------------------------------------ Fargate Spot
def spot_accepted(plan: SpotPlan | None = None, *, on_demand: bool = False) -> Record:
    plan = plan or SpotPlan(fallback_after=30.0)
    rec, _ = core.accept(
        "q1",
        "w",
        cluster="airflow",
        container="base",
        now=0.0,
        policy=POLICY,
        spot=True,
        plan=plan,
        on_demand=on_demand,
    )
    return rec


def launches(actions: list[core.Action]) -> list[core.Launch]:
    return [a for a in actions if isinstance(a, core.Launch)]


def test_a_spot_shortfall_retries_spot_then_falls_back_to_on_demand_without_spending_attempts() -> None:
    rec = spot_accepted()
    for attempt, now in enumerate([1.0, 5.0, 12.0, 20.0], start=1):  # more than max_launch_attempts (3)
        rec, actions = core.decide(rec, core.NotPlaced(attempt, CAPACITY), now, POLICY)
        (launch,) = launches(actions)
        assert not launch.on_demand and launch.within == pytest.approx(31.0 - now)  # 30 s after the first shortfall
        assert not rec.done
    rec, actions = core.decide(rec, core.NotPlaced(5, CAPACITY), 31.0, POLICY)
    (launch,) = launches(actions)
    assert launch.on_demand and launch.pace is core.Pace.NOW and launch.new_request
    assert core.Count("spot_fallbacks") in actions
    note = next(a for a in actions if isinstance(a, core.Note))
    assert "on-demand" in note.text and "no capacity for 30 s" in note.text
    # On-demand shortfalls count against max_launch_attempts as any placement failure does.
    for attempt in (6, 7):
        rec, actions = core.decide(rec, core.NotPlaced(attempt, CAPACITY), 40.0, POLICY)
        assert all(launch.on_demand for launch in launches(actions))
    rec, actions = core.decide(rec, core.NotPlaced(8, CAPACITY), 41.0, POLICY)
    assert rec.phase is Phase.FAILED and "gave up" in (rec.reason or "")


def test_a_spot_task_that_fails_to_start_for_capacity_counts_as_a_shortfall() -> None:
    rec = spot_accepted(SpotPlan(fallback_after=0.0))
    arn = f"{ARN}1"
    rec, _ = core.decide(rec, core.Started(1, obs(arn, "PROVISIONING", capacity="FARGATE_SPOT")), 1.0, POLICY)
    stopped = obs(arn, "STOPPED", stop_code="TaskFailedToStart", reason=CAPACITY, capacity="FARGATE_SPOT", version=3)
    rec, actions = core.decide(rec, core.Observed(stopped), 2.0, POLICY)
    (launch,) = launches(actions)
    assert launch.on_demand and rec.on_demand and rec.spot_retries == 1


def test_placement_failures_of_a_non_spot_strategy_never_fall_back() -> None:
    rec, _ = core.accept("q1", "w", cluster="airflow", container="base", now=0.0, policy=POLICY)
    rec, actions = core.decide(rec, core.NotPlaced(1, CAPACITY), 100.0, POLICY)
    assert not launches(actions)[0].on_demand and core.Count("spot_fallbacks") not in actions


def test_a_spot_interruption_fails_the_try_and_sends_the_next_try_on_demand() -> None:
    rec = spot_accepted()
    arn = f"{ARN}1"
    rec, actions = core.decide(
        rec, core.Started(1, obs(arn, "RUNNING", started=True, capacity="FARGATE_SPOT")), 1.0, POLICY
    )
    assert core.Count("capacity.FARGATE_SPOT") in actions
    assert any(isinstance(a, core.Note) and "FARGATE_SPOT" in a.text for a in actions)
    stopped = obs(arn, "STOPPED", started=True, exit_code=143, stop_code="SpotInterruption", version=5)
    rec, actions = core.decide(rec, core.Observed(stopped), 2.0, POLICY)
    report = next(a for a in actions if isinstance(a, core.Report))
    assert not report.success and "Spot interruption" in (report.reason or "")
    assert "next try runs on on-demand" in (report.reason or "")
    assert core.OnDemandNextTry() in actions and core.Count("spot_interruptions") in actions
    assert not launches(actions)  # the container ran: never the same try again


def test_an_interruption_without_the_option_is_only_counted() -> None:
    rec = spot_accepted(SpotPlan(on_demand_after_interruption=False))
    arn = f"{ARN}1"
    rec, _ = core.decide(rec, core.Started(1, obs(arn, "RUNNING", started=True, capacity="FARGATE_SPOT")), 1.0, POLICY)
    stopped = obs(arn, "STOPPED", started=True, exit_code=143, stop_code="SpotInterruption", version=5)
    rec, actions = core.decide(rec, core.Observed(stopped), 2.0, POLICY)
    assert core.OnDemandNextTry() not in actions and core.Count("spot_interruptions") in actions


def test_a_termination_notice_on_on_demand_capacity_is_no_spot_interruption() -> None:
    rec = spot_accepted()
    arn = f"{ARN}1"
    rec, _ = core.decide(rec, core.Started(1, obs(arn, "RUNNING", started=True, capacity="FARGATE")), 1.0, POLICY)
    stopped = obs(arn, "STOPPED", started=True, exit_code=143, stop_code="TerminationNotice", version=5)
    rec, actions = core.decide(rec, core.Observed(stopped), 2.0, POLICY)
    assert core.OnDemandNextTry() not in actions and core.Count("spot_interruptions") not in actions


def test_the_try_after_an_interruption_is_launched_on_demand_and_says_so() -> None:
    _, actions = core.accept(
        "q2", "w", cluster="airflow", container="base", now=0.0, policy=POLICY, spot=True, on_demand=True
    )
    assert launches(actions) == [core.Launch(1, new_request=True, on_demand=True)]
    assert any(isinstance(a, core.Note) and "interrupted on Fargate Spot" in a.text for a in actions)
    # A DAG author's plan that keeps Spot after interruptions wins.
    _, actions = core.accept(
        "q3",
        "w",
        cluster="airflow",
        container="base",
        now=0.0,
        policy=POLICY,
        spot=True,
        on_demand=True,
        plan=SpotPlan(on_demand_after_interruption=False),
    )
    assert launches(actions) == [core.Launch(1, new_request=True, on_demand=False)]
