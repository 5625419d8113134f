"""runtime.events.EventFeed against a real SQS queue (moto behind the emulator's endpoint).

Several receivers hand every message to the scheduler thread; a message is deleted only once
acknowledged (its event applied), and one never acknowledged comes back after the visibility
timeout. A queue that cannot be read is reported down once and probed by one receiver only.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from typing import Any

from airflow_ecs_executor.aws.events import EventMessage, EventQueue
from airflow_ecs_executor.core.backoff import Backoff
from airflow_ecs_executor.runtime.events import EventFeed, EventsReceived, FeedDown, FeedResult, FeedUp
from ecs_emulator import Emulator
from tests.helpers import aws_client, wait_for

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/airflow"


def body(n: int) -> str:
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/airflow/{n:032x}"
    detail = {"clusterArn": CLUSTER, "taskArn": arn, "lastStatus": "RUNNING", "version": 3, "containers": []}
    return json.dumps({"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": detail})


def fresh_queue(sqs: Any, name: str, visibility: int) -> str:
    with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):  # moto's state is the process's
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
    return str(sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(visibility)})["QueueUrl"])


def left_in(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attrs[n]) for n in names)


class Collected:
    """What the scheduler thread drains, kept."""

    def __init__(self, feed: EventFeed) -> None:
        self.feed = feed
        self.results: list[FeedResult] = []
        self.messages: list[EventMessage] = []

    def drain(self) -> None:
        for result in self.feed.drain():
            self.results.append(result)
            if isinstance(result, EventsReceived):
                self.messages += result.messages

    def arns(self) -> Counter[str]:
        return Counter(m.observation.arn for m in self.messages if m.observation is not None)


def test_several_receivers_hand_over_every_message_and_only_acknowledged_ones_are_deleted(emulator: Emulator) -> None:
    sqs = aws_client("sqs", emulator, read_timeout=60)  # the first moto request imports moto: slow on a busy machine
    url = fresh_queue(sqs, "feed-receivers", visibility=15)  # receiving and acking all 30 take longer on a busy machine
    for start in range(0, 30, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": body(n)} for n in range(start, start + 10)]
        )
    feed = EventFeed(EventQueue(sqs, url), wait_seconds=1, receivers=3, deleters=2)
    seen = Collected(feed)
    try:
        wait_for(lambda: seen.drain() or len(seen.arns()) == 30, timeout=30)
        assert sum(isinstance(r, FeedUp) for r in seen.results) == 1
        assert not any(isinstance(r, FeedDown) for r in seen.results)
        kept = {m.observation.arn for m in seen.messages[:5] if m.observation is not None}  # never applied
        feed.ack([m.receipt for m in seen.messages if m.observation is not None and m.observation.arn not in kept])
        # Deleted: all but the five; those come back after the visibility timeout, and are deleted once acked.
        wait_for(lambda: left_in(sqs, url) == 5, timeout=30)
        before = len(seen.messages)
        wait_for(
            lambda: seen.drain() or {m.observation.arn for m in seen.messages[before:] if m.observation} >= kept,
            timeout=60,
        )
        again = [m for m in seen.messages[before:] if m.observation is not None]
        assert {m.observation.arn for m in again if m.observation} == kept
        feed.ack([m.receipt for m in again])
        wait_for(lambda: left_in(sqs, url) == 0, timeout=30)
    finally:
        feed.close()


class Counting(EventQueue):
    """The real queue, with which thread called receive."""

    def __init__(self, client: Any, url: str) -> None:
        super().__init__(client, url)
        self.callers: Counter[str] = Counter()

    def receive(self, wait_seconds: float) -> list[EventMessage]:
        self.callers[threading.current_thread().name] += 1
        return super().receive(wait_seconds)


def test_a_queue_that_cannot_be_read_is_down_once_probed_by_one_receiver_then_up(emulator: Emulator) -> None:
    sqs = aws_client("sqs", emulator, read_timeout=60)  # the first moto request imports moto: slow on a busy machine
    url = fresh_queue(sqs, "feed-down", visibility=30)
    sqs.delete_queue(QueueUrl=url)
    events = Counting(sqs, url)
    feed = EventFeed(events, wait_seconds=1, receivers=4, retry=Backoff(base=0.2, cap=0.4))
    seen = Collected(feed)
    try:
        wait_for(lambda: seen.drain() or sum(events.callers.values()) >= 4, timeout=30)
        seen.drain()
        assert [type(r) for r in seen.results] == [FeedDown]  # once, however many probes failed
        assert set(events.callers) == {"ecs-executor-events"}  # the other receivers wait
        fresh_queue(sqs, "feed-down", visibility=30)  # the same URL, readable now
        sqs.send_message(QueueUrl=url, MessageBody=body(1))
        wait_for(lambda: seen.drain() or any(isinstance(r, EventsReceived) for r in seen.results), timeout=30)
        assert [type(r) for r in seen.results if not isinstance(r, EventsReceived)] == [FeedDown, FeedUp]
        wait_for(lambda: len(events.callers) == 4, timeout=30)  # every receiver polls once the queue reads
    finally:
        feed.close()
