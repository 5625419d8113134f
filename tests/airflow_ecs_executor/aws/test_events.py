"""aws.events.parse_event: EventBridge's envelope, SNS-wrapped or not, and what is not a task event."""

from __future__ import annotations

import json

from airflow_ecs_executor.aws.events import parse_event

ARN = "arn:aws:ecs:us-east-1:123456789012:task/airflow/0f1e"
CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/airflow"
# The shape of AWS's example (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html).
EVENT = {
    "version": "0",
    "id": "3317b2af-7005-947d-b652-f55e762e571a",
    "detail-type": "ECS Task State Change",
    "source": "aws.ecs",
    "account": "123456789012",
    "time": "2026-11-28T06:00:00Z",
    "region": "us-east-1",
    "resources": [ARN],
    "detail": {
        "clusterArn": CLUSTER,
        "taskArn": ARN,
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stopCode": "EssentialContainerExited",
        "startedAt": "2026-11-28T05:59:00.100Z",
        "version": 7,
        "updatedAt": "2026-11-28T06:00:00.000Z",
        "containers": [{"name": "base", "lastStatus": "STOPPED", "exitCode": 0}],
    },
}


def test_an_eventbridge_event_is_the_task_as_describe_tasks_shows_it() -> None:
    seen, cluster, problem = parse_event(json.dumps(EVENT))
    assert problem is None and cluster == CLUSTER
    assert seen is not None and seen.arn == ARN and seen.version == 7 and seen.started
    assert seen.last_status == "STOPPED" and seen.containers[0].exit_code == 0


def test_an_sns_notification_carries_the_event() -> None:
    seen, _, problem = parse_event(json.dumps({"Type": "Notification", "Message": json.dumps(EVENT)}))
    assert problem is None and seen is not None and seen.version == 7


def test_other_messages_are_named_not_parsed() -> None:
    for body in ("not json", "[]", json.dumps({**EVENT, "detail-type": "ECS Container Instance State Change"})):
        seen, _, problem = parse_event(body)
        assert seen is None and problem
