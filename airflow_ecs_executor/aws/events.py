"""The ECS events port: ECS Task State Change events read from an SQS queue, as the core's observations.

EventBridge delivers each event to an SQS target as the message body (the event's JSON envelope);
behind an SNS fan-out the body is an SNS notification whose ``Message`` is that envelope. The event's
``detail`` is the task as DescribeTasks shows it, ``version`` included, so it is parsed by the same
``parse_task``. Delivery is at least once and unordered: ordering and duplicates are the core's
business (``decide`` applies only a newer ``version``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from airflow_ecs_executor.aws.client import AwsCallError, parse_task, translate
from airflow_ecs_executor.core.classify import TaskObservation

SOURCE: Final = "aws.ecs"
DETAIL_TYPE: Final = "ECS Task State Change"
# ReceiveMessage returns at most 10 messages and long-polls at most 20 s; DeleteMessageBatch takes at
# most 10 entries (SQS API reference: ReceiveMessage, DeleteMessageBatch).
RECEIVE_BATCH: Final = 10
MAX_WAIT_SECONDS: Final = 20
DELETE_BATCH: Final = 10


@dataclass(frozen=True)
class EventMessage:
    """One SQS message: the task it shows, or why it shows none (deleted all the same, and counted)."""

    receipt: str
    observation: TaskObservation | None
    cluster_arn: str | None = None
    problem: str | None = None  # not an ECS Task State Change, or not readable


def parse_event(body: str) -> tuple[TaskObservation | None, str | None, str | None]:
    """(observation, clusterArn, problem) of one message body: an EventBridge event, or SNS-wrapped."""
    try:
        event: Any = json.loads(body)
        if isinstance(event, dict) and event.get("Type") == "Notification" and isinstance(event.get("Message"), str):
            event = json.loads(event["Message"])
    except (ValueError, TypeError) as exc:
        return None, None, f"not JSON: {exc}"
    if not isinstance(event, dict):
        return None, None, "not an event object"
    if event.get("source") != SOURCE or event.get("detail-type") != DETAIL_TYPE:
        return None, None, f"not an ECS Task State Change ({event.get('source')!r}, {event.get('detail-type')!r})"
    detail = event.get("detail")
    if not isinstance(detail, dict) or not detail.get("taskArn"):
        return None, None, "the event has no task detail"
    try:
        return parse_task(detail), detail.get("clusterArn"), None
    except (KeyError, TypeError, ValueError) as exc:
        return None, None, f"the task detail cannot be read: {type(exc).__name__}: {exc}"


class EventQueue:
    """ReceiveMessage (long polling, batches of 10) and DeleteMessageBatch on one SQS queue."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def receive(self, wait_seconds: float) -> list[EventMessage]:
        try:
            response = self._client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=RECEIVE_BATCH,
                WaitTimeSeconds=max(0, min(MAX_WAIT_SECONDS, int(wait_seconds))),
            )
        except Exception as exc:
            raise translate(exc) from exc
        out = []
        for message in response.get("Messages") or []:
            observation, cluster, problem = parse_event(str(message.get("Body") or ""))
            out.append(EventMessage(str(message["ReceiptHandle"]), observation, cluster, problem))
        return out

    def delete(self, receipts: Sequence[str]) -> list[str]:
        """Delete the messages; returns the receipts SQS did not delete.

        Those come back after the visibility timeout and are applied again, harmlessly: their
        version is not newer.
        """
        failed: list[str] = []
        for i in range(0, len(receipts), DELETE_BATCH):
            batch = receipts[i : i + DELETE_BATCH]
            entries = [{"Id": str(n), "ReceiptHandle": r} for n, r in enumerate(batch)]
            try:
                response = self._client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as exc:
                raise translate(exc) from exc
            failed += [batch[int(f["Id"])] for f in response.get("Failed") or []]
        return failed

    def attributes(self) -> dict[str, str]:
        """GetQueueAttributes: the queue exists and may be read (used by ``check``)."""
        try:
            response = self._client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])
        except Exception as exc:
            raise translate(exc) from exc
        return dict(response.get("Attributes") or {})


__all__ = ["AwsCallError", "EventMessage", "EventQueue", "parse_event"]
