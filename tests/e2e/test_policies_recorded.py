"""Every AWS call of an end-to-end run, recorded by the emulator, is allowed by the deployed policy of its caller.

The session's stack records each request with the principal that signed it (docs/emulator.md, "The request
log"): the scheduler, the API server (its log reader), each task (its task role), the DAG processor and the
triggerer, each with a key of its own. Once every principal has called (earlier modules run DAGs and read
their logs in the UI; run alone, this module does so itself), the whole recording so far is evaluated against
deploy/cloudformation.yaml rendered with realistic parameters (tests/deploy/deployment.py), and the scheduler's
calls against the hand-written policy of docs/reliability.md too. Names are mapped one by one
(tests/deploy/recorded.py); a recorded call the mapping does not know fails the test.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from devstack.stack import Stack
from tests.deploy import deployment, recorded
from tests.deploy.iam import Call, allowed
from tests.e2e.test_logs import log_with

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
# The event-tracking permissions are a policy of their own in the template (SchedulerTaskEventsPolicy);
# docs/setup.md lists them for a set-up by hand, in prose.
EVENT_TRACKING = ("sqs:", "events:")


# Calls each principal makes in any DAG run whose log is read in the UI.
EVERY_RUN = {("scheduler", "RunTask"), ("task", "Decrypt"), ("api-server", "GetLogEvents")}


@pytest.fixture(scope="module")
def verdicts(stack: Stack) -> list[recorded.Verdict]:
    made = {(r["principal"], r["action"]) for r in recorded.read(stack.request_log)}
    if not made >= EVERY_RUN:  # run alone: earlier modules (test_airflow, test_logs) have not run a DAG yet
        run_id = stack.trigger("smoke")
        assert stack.wait_run("smoke", run_id) == "success"
        log_with(stack, "smoke", run_id, "hello", 1, "Done. Returned value was")  # the API server reads the log
    records = recorded.read(stack.request_log)
    s = deployment.stack()
    return recorded.evaluated(records, s, recorded.devstack_names(s))


def test_each_principal_is_recorded_making_its_calls(verdicts: list[recorded.Verdict]) -> None:
    made = Counter((v.principal, v.call.action) for v in verdicts)
    for principal, action in [
        ("scheduler", "ecs:RunTask"),
        ("scheduler", "ecs:TagResource"),
        ("scheduler", "iam:PassRole"),
        ("scheduler", "kms:GenerateDataKey"),
        ("scheduler", "ecs:DescribeClusters"),
        ("api-server", "logs:GetLogEvents"),
        ("task", "kms:Decrypt"),
    ]:
        assert made[principal, action] > 0, f"no {action} by the {principal} recorded: {sorted(made)}"


def test_the_scheduler_tracks_as_its_stack_is_configured(stack: Stack, verdicts: list[recorded.Verdict]) -> None:
    # The session's stack tracks by ECS events on the newest Airflow and by polling on the oldest
    # (tests/e2e/conftest.py): the recording shows the one the stack was started with.
    made = Counter(v.call.action for v in verdicts if v.principal == "scheduler")
    tracking = sorted(a for a in made if a.startswith(EVENT_TRACKING))
    if stack.task_events:
        assert made["sqs:ReceiveMessage"] > 0 and made["sqs:DeleteMessage"] > 0, sorted(made)
    else:
        assert tracking == [], f"events are off, yet the scheduler called {tracking}"
        assert made["ecs:DescribeTasks"] > 0, f"no DescribeTasks by the polling scheduler: {sorted(made)}"


def test_every_recorded_call_is_allowed_by_the_templates_policy_for_its_principal(
    verdicts: list[recorded.Verdict],
) -> None:
    denied = sorted({str(v) for v in verdicts if not v.allowed})
    assert not denied, "calls an end-to-end run made that the template's policies deny:\n" + "\n".join(denied)


def test_every_recorded_scheduler_call_is_allowed_by_the_hand_written_policy(
    verdicts: list[recorded.Verdict],
) -> None:
    # With what docs/reliability.md tells to add for each queue profile's task definition.
    policies = [
        deployment.hand_written_scheduler_policy(),
        *recorded.queue_profile_grants("scheduler", recorded.devstack_names(deployment.stack())),
    ]
    ours = [v for v in verdicts if v.principal == "scheduler" and not v.call.action.startswith(EVENT_TRACKING)]
    assert ours
    denied = sorted({str(v) for v in ours if not allowed(policies, v.call)})
    assert not denied, "calls docs/reliability.md's scheduler policy denies:\n" + "\n".join(denied)
    setup = (Path(__file__).resolve().parents[2] / "docs" / "setup.md").read_text()
    for action in {v.call.action for v in verdicts if v.principal == "scheduler"} - {v.call.action for v in ours}:
        assert f"`{action}`" in setup, f"docs/setup.md does not name {action} for a set-up by hand"


def test_the_scheduler_policy_denies_a_recorded_launch_moved_to_another_cluster_or_family(
    verdicts: list[recorded.Verdict],
) -> None:
    s = deployment.stack()
    policies = deployment.policies_attached_to(s, recorded.ROLE_OF_PRINCIPAL["scheduler"])
    launch = next(
        v.call
        for v in verdicts
        if v.principal == "scheduler"
        and v.call.action == "ecs:RunTask"
        and "task-definition/airflow-task:" in v.call.resource
    )
    cluster = launch.context["ecs:cluster"]
    other_cluster = dataclasses.replace(launch, context={"ecs:cluster": cluster.replace("/airflow", "/other")})
    family, _, revision = launch.resource.rpartition(":")
    other_family = Call(
        launch.action, family.replace("/airflow-task", "/other-family") + ":" + revision, launch.context
    )
    # A task ARN the scheduler acted on (tracking by events may have left no DescribeTasks yet).
    task = next(
        v.call
        for v in verdicts
        if v.principal == "scheduler" and v.call.action in ("ecs:DescribeTasks", "ecs:TagResource", "ecs:StopTask")
    )
    other_stop = Call("ecs:StopTask", task.resource.replace("/airflow/", "/other/"), other_cluster.context)
    for policy_set in (policies, [deployment.hand_written_scheduler_policy()]):
        assert allowed(policy_set, launch)
        for call in (other_cluster, other_family, other_stop):
            assert not allowed(policy_set, call), call


def test_the_api_server_only_reads(verdicts: list[recorded.Verdict]) -> None:
    actions = {v.call.action for v in verdicts if v.principal == "api-server"}
    assert actions <= {"ecs:DescribeTasks", "ecs:DescribeTaskDefinition", "logs:GetLogEvents"}, actions
