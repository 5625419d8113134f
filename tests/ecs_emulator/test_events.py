"""ECS Task State Change events: published on every transition, routed by real EventBridge rules to SQS.

The envelope and detail follow AWS's documented example event ("Amazon ECS task state change
events", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html): version
"0", detail-type "ECS Task State Change", source "aws.ecs", resources = [task ARN], detail = the task
as DescribeTasks shows it with its ``version`` (which grows with each change, so duplicates share a
version: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_cwe_events.html) and
``updatedAt``. moto serves EventBridge and SQS behind the emulator's endpoint.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
from collections import Counter
from typing import Any

import pytest

from ecs_emulator import Emulator
from ecs_emulator.events import TaskEvents
from ecs_emulator.profile import EventFaults, Spread
from ecs_emulator.timeline import Timeline
from tests.helpers import aws_client, wait_for

# The emulator does not depend on Airflow's version: once is enough.
pytestmark = pytest.mark.newest_only
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")


def events_to_queue(endpoint: Emulator | str, name: str, cluster_arn: str, rule: str = "ecs-task-events") -> str:
    """A queue fed by a rule matching this cluster's task state changes (what CloudFormation creates)."""
    sqs, events = aws_client("sqs", endpoint), aws_client("events", endpoint)
    # moto's state is the process's: an earlier test's emulator in this process (pytest-xdist runs
    # tests in any order) may have left a queue of this name with its own events in it.
    with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"], "detail": {"clusterArn": [cluster_arn]}}
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern), State="ENABLED")
    targets = events.list_targets_by_rule(Rule=rule)["Targets"]
    events.put_targets(Rule=rule, Targets=[*targets, {"Id": name, "Arn": arn}])
    return url


def receive_all(sqs: Any, url: str, until: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(out):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def run_one(emulator: Emulator, cluster: str = "airflow") -> str:
    ecs = aws_client("ecs", emulator)
    ecs.register_task_definition(
        family="ev", containerDefinitions=[{"name": "main", "image": "busybox", "memory": 64, "command": ["true"]}]
    )
    return str(ecs.run_task(cluster=cluster, taskDefinition="ev", launchType="EC2")["tasks"][0]["taskArn"])


def test_every_transition_is_an_ecs_task_state_change_event_on_the_rules_queue() -> None:
    with Emulator("fast", runner="simulated") as emulator:
        ecs = aws_client("ecs", emulator)
        cluster_arn = ecs.create_cluster(clusterName="airflow")["cluster"]["clusterArn"]
        ecs.create_cluster(clusterName="other")
        emulator.register_container_instances("airflow", count=1)
        emulator.register_container_instances("other", count=1)
        url = events_to_queue(emulator, "scheduler-a", cluster_arn)
        arn = run_one(emulator)
        run_one(emulator, "other")  # not this rule's cluster: never on the queue
        sqs = aws_client("sqs", emulator)
        got = receive_all(sqs, url, lambda out: any(e["detail"]["lastStatus"] == "STOPPED" for e in out))
        assert got, "no event reached the queue"
        for event in got:
            assert set(event) >= {"version", "id", "detail-type", "source", "account", "time", "region", "resources"}
            assert event["version"] == "0" and event["source"] == "aws.ecs"
            assert event["detail-type"] == "ECS Task State Change"
            assert event["account"] == "123456789012" and event["region"] == "us-east-1"
            assert event["resources"] == [arn] and ISO.match(event["time"])
            detail = event["detail"]
            assert detail["taskArn"] == arn and detail["clusterArn"] == cluster_arn
            assert ISO.match(detail["updatedAt"]) and ISO.match(detail["createdAt"])
            assert "tags" not in detail
        versions = [e["detail"]["version"] for e in got]
        assert sorted(versions) == versions and len(set(versions)) == len(versions), versions
        statuses = [e["detail"]["lastStatus"] for e in got]
        assert statuses[0] == "PENDING" and statuses[-1] == "STOPPED"  # EC2 bridge: no PROVISIONING
        described = ecs.describe_tasks(cluster="airflow", tasks=[arn])["tasks"][0]
        assert described["version"] == versions[-1]  # the last event is the task as DescribeTasks shows it
        # The other cluster's task published events too (the rule, not the publisher, kept them off
        # this queue); how many of its transitions are out by now depends on the timeline.
        assert emulator.counters()["ecs"]["events.published"] > len(got)


def test_two_targets_of_one_rule_each_get_every_event() -> None:
    """The queue-per-scheduler layout: one rule, one target per scheduler's queue."""
    with Emulator("fast", runner="simulated") as emulator:
        ecs = aws_client("ecs", emulator)
        cluster_arn = ecs.create_cluster(clusterName="airflow")["cluster"]["clusterArn"]
        emulator.register_container_instances("airflow", count=1)
        a = events_to_queue(emulator, "scheduler-a", cluster_arn)
        b = events_to_queue(emulator, "scheduler-b", cluster_arn)
        run_one(emulator)
        sqs = aws_client("sqs", emulator)

        def stopped(out: list[dict[str, Any]]) -> bool:
            return any(e["detail"]["lastStatus"] == "STOPPED" for e in out)

        got_a, got_b = receive_all(sqs, a, stopped), receive_all(sqs, b, stopped)
        assert [e["detail"]["version"] for e in got_a] == [e["detail"]["version"] for e in got_b]


class _Task:
    """The least of a task that an envelope needs."""

    arn = "arn:aws:ecs:us-east-1:123456789012:task/airflow/abc"
    version = 1

    def describe(self) -> dict[str, Any]:
        return {"taskArn": self.arn, "lastStatus": "RUNNING", "version": self.version, "createdAt": 1.5}


def publish(faults: EventFaults, n: int = 40) -> tuple[list[int], Counter[str]]:
    delivered: list[int] = []
    counters: Counter[str] = Counter()
    timeline = Timeline()
    try:
        events = TaskEvents(
            account="123456789012",
            region="us-east-1",
            timeline=timeline,
            faults=faults,
            rng=random.Random(7),
            counters=counters,
            clock=time.time,
            deliver=lambda event, _a, _r: delivered.append(event["detail"]["version"]) or 1,
        )
        task = _Task()
        for v in range(1, n + 1):
            task.version = v
            events.changed(task)  # type: ignore[arg-type]
        expected = n - counters["events.dropped"] + counters["events.duplicated"]
        wait_for(lambda: len(delivered) >= expected, timeout=30)
        time.sleep(0.3)  # nothing more comes
    finally:
        timeline.stop()
    return delivered, counters


def test_chaos_event_faults_duplicate_reorder_delay_and_drop() -> None:
    assert publish(EventFaults())[0] == list(range(1, 41))
    dup, counters = publish(EventFaults(duplicate=1.0))
    assert sorted(dup) == sorted(list(range(1, 41)) * 2) and counters["events.duplicated"] == 40
    dropped, counters = publish(EventFaults(drop=0.5))
    assert 0 < len(dropped) < 40 and len(dropped) + counters["events.dropped"] == 40
    shuffled, counters = publish(EventFaults(reorder=0.5, delay_probability=0.3, delay=Spread(median=0.1)))
    assert sorted(shuffled) == list(range(1, 41)) and shuffled != sorted(shuffled)
    assert counters["events.reordered"] > 0 and counters["events.delayed"] > 0


def test_the_chaos_profile_has_event_faults() -> None:
    from ecs_emulator.profile import load_profile

    faults = load_profile("chaos").faults.events
    assert faults.duplicate > 0 and faults.drop > 0 and faults.reorder > 0 and faults.delay_probability > 0
