"""The devstack tracks tasks by ECS events (EventBridge rule -> SQS queue), as deploy/cloudformation.yaml sets up.

The session's stack has events on with the newest Airflow (off with the oldest: tests/e2e/conftest.py);
tests/e2e/test_remote_logging.py runs its own stack with them off.
"""

from __future__ import annotations

import pytest

from devstack.stack import Stack
from tests.helpers import wait_for

# The event path (EventBridge, SQS, the tracker) does not touch Airflow: newest Airflow only.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600), pytest.mark.newest_only]


def test_demo_dag_is_tracked_by_ecs_events(stack: Stack) -> None:
    assert stack.task_events
    url = stack.env()["AIRFLOW__ECS_EXECUTOR__TASK_EVENTS_QUEUE_URL"]
    published_before = stack.emulator_counters()["ecs"].get("events.published", 0)
    run_id = stack.trigger("smoke")
    assert stack.wait_run("smoke", run_id) == "success"
    assert stack.emulator_counters()["ecs"]["events.published"] > published_before
    log = (stack.home / "logs" / "scheduler.log").read_text(errors="replace")
    assert "tracks tasks by ECS events" in log and "ECS events queue readable" in log
    assert "cannot be read" not in log
    sqs = stack.aws("sqs")

    def drained() -> bool:  # every event was applied (or counted as another scheduler's) and deleted
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0

    wait_for(drained, timeout=60)
