"""The HA devstack's tracking by ECS events: a queue per scheduler, every queue a target of the one rule.

SQS hands each message to one consumer, so schedulers sharing a queue would take each other's
events (docs/setup.md, "Tracking by ECS events"); an EventBridge rule has at most 5 targets
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html). The queues are created
against a real emulator (moto's EventBridge and SQS behind it) and fed by a real ECS task.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from devstack.ha import MAX_TARGETS_PER_RULE, HaStack
from devstack.stack import CLUSTER, EVENTS_QUEUE
from ecs_emulator import Emulator
from tests.helpers import aws_client, wait_for

pytestmark = pytest.mark.newest_only  # the devstack runs on the newest Airflow; no Airflow is started here


def _forget_earlier_queues(emulator: Emulator, stack: HaStack) -> None:
    # moto's state is the process's: another test in this process may have left the queues or the rule.
    sqs, events = aws_client("sqs", emulator), aws_client("events", emulator)
    for name in stack.events_queues().values():
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
    with contextlib.suppress(events.exceptions.ResourceNotFoundException):
        ids = [t["Id"] for t in events.list_targets_by_rule(Rule=EVENTS_QUEUE)["Targets"]]
        if ids:
            events.remove_targets(Rule=EVENTS_QUEUE, Ids=ids)


def _states_of(sqs: Any, url: str, arn: str, seen: set[str]) -> set[str]:
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
        event = json.loads(message["Body"])
        if event["detail"]["taskArn"] == arn:
            seen.add(event["detail"]["lastStatus"])
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return seen


def test_each_scheduler_reads_a_queue_of_its_own_and_every_queue_gets_every_event(
    ecs_emulator_server: Emulator, tmp_path: Path
) -> None:
    emulator = ecs_emulator_server
    stack = HaStack(tmp_path, schedulers=3, task_events=True)
    stack.endpoint_url = emulator.endpoint_url  # the stack's set-up, against this emulator
    stack.emulator_credentials = emulator.credentials
    ecs = aws_client("ecs", emulator)
    ecs.create_cluster(clusterName=CLUSTER)
    emulator.register_container_instances(CLUSTER, count=1)
    _forget_earlier_queues(emulator, stack)

    stack.setup_task_events()

    urls = {
        name: stack.scheduler_env(name)["AIRFLOW__ECS_EXECUTOR__TASK_EVENTS_QUEUE_URL"]
        for name in stack.scheduler_names
    }
    assert len(set(urls.values())) == 3
    assert urls["scheduler-2"] == f"{emulator.endpoint_url}/123456789012/{EVENTS_QUEUE}-scheduler-2"
    keys = {stack.scheduler_env(name)["AWS_ACCESS_KEY_ID"] for name in stack.scheduler_names}
    assert len(keys) == 3  # each scheduler signs with its own key: the request log tells them apart
    assert "AIRFLOW__ECS_EXECUTOR__TASK_EVENTS_QUEUE_URL" not in stack.env()  # no shared queue for other processes
    targets = aws_client("events", emulator).list_targets_by_rule(Rule=EVENTS_QUEUE)["Targets"]
    assert {t["Id"] for t in targets} == set(stack.scheduler_names)

    ecs.register_task_definition(
        family="ev", containerDefinitions=[{"name": "main", "image": "busybox", "memory": 64, "command": ["true"]}]
    )
    arn = ecs.run_task(cluster=CLUSTER, taskDefinition="ev", launchType="EC2")["tasks"][0]["taskArn"]
    sqs = aws_client("sqs", emulator)
    for name, url in urls.items():
        seen: set[str] = set()

        def stopped(url: str = url, seen: set[str] = seen) -> bool:
            return "STOPPED" in _states_of(sqs, url, arn, seen)

        wait_for(stopped, timeout=30)
        assert {"RUNNING", "STOPPED"} <= seen, f"{name}: {seen}"


def test_more_schedulers_than_a_rule_has_targets_are_refused_with_events_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"at most 5 targets.*turn task events off"):
        HaStack(tmp_path, schedulers=MAX_TARGETS_PER_RULE + 1, task_events=True)
    many = HaStack(tmp_path, schedulers=MAX_TARGETS_PER_RULE + 1, task_events=False)  # polling: no queue
    assert many.events_queues() == {}
    assert "AIRFLOW__ECS_EXECUTOR__TASK_EVENTS_QUEUE_URL" not in many.scheduler_env("scheduler-6")
