"""ECS Task State Change events, published to moto's EventBridge in-process on every task transition.

ECS sends an event to EventBridge each time a task's state changes (its ``version`` grows). The
envelope and detail follow AWS's documented example ("Amazon ECS task state change events",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html): ``version`` "0",
an ``id``, ``detail-type`` "ECS Task State Change", ``source`` "aws.ecs", ``account``, ``time``,
``region``, ``resources`` (the task ARN) and ``detail``: the task as DescribeTasks shows it, with
timestamps as ISO 8601 text, ``version`` and ``updatedAt``.

Routing is EventBridge's: the rules of the default event bus in moto's backend (created by whoever
uses the emulator: the devstack, a test, CloudFormation-like set-up code) match the event with their
pattern and send it to their targets (SQS queues). An event matched by no rule goes nowhere, as on
AWS. Publishing runs off the ECS lock and off the timeline: the timeline hands each event, at its due
time, to a publisher thread of its own, so a slow delivery never holds up a task's lifecycle; the
chaos faults (duplicate, delay, reorder, drop) act here, as EventBridge's at-least-once, unordered
delivery. An SQS target of a standard queue gets the message as moto's target would send it, without
moto's SendMessage recomputing every queue attribute per message (a cost that grows with the queue
and, at thousands of tasks, made the emulator deliver far more slowly than EventBridge does).
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ecs_emulator.model import Task
from ecs_emulator.profile import EventFaults
from ecs_emulator.timeline import Timeline

_log = logging.getLogger(__name__)

SOURCE = "aws.ecs"
DETAIL_TYPE = "ECS Task State Change"
_TIMESTAMPS = (
    "createdAt",
    "connectivityAt",
    "pullStartedAt",
    "pullStoppedAt",
    "startedAt",
    "stoppingAt",
    "executionStoppedAt",
    "stoppedAt",
)


def _iso(epoch: float, *, millis: bool = True) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}Z" if millis else f"{text}Z"


def task_detail(described: dict[str, Any], updated_at: float) -> dict[str, Any]:
    """The event's ``detail``: the DescribeTasks task, timestamps as ISO 8601, plus ``updatedAt``."""
    detail = {k: v for k, v in described.items() if k != "tags"}  # events carry no tags
    for key in _TIMESTAMPS:
        if isinstance(detail.get(key), int | float):
            detail[key] = _iso(float(detail[key]))
    detail["updatedAt"] = _iso(updated_at)
    return detail


def envelope(task: Task, *, account: str, region: str, now: float) -> dict[str, Any]:
    """One ECS Task State Change event for the task as it stands now."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": account,
        "time": now,  # epoch seconds: moto's SQS target renders it as ISO 8601 ("2020-01-23T17:57:58Z")
        "region": region,
        "resources": [task.arn],
        "detail": task_detail(task.describe(), now),
    }


_moto_sped_up = False


def speed_up_moto_sqs() -> None:
    """Make moto's SQS cost per message constant and its deletes thread-safe (once per process).

    moto reads the clock through naive-datetime arithmetic for every message it scans (visibility,
    delay) and recomputes every queue attribute, message counts included, to read the retention
    period of each message it returns: a ReceiveMessage of 10 took half a second with 100 messages
    queued, and grew with the queue. AWS answers in tens of milliseconds at any depth. Here the
    clock is ``time.time()`` (the same epoch) and the retention period is read from the queue.
    """
    global _moto_sped_up  # noqa: PLW0603 - moto's backends are per process, so is this patch
    if _moto_sped_up:
        return
    try:
        from moto.sqs import models  # noqa: PLC0415 - moto is optional (the emulator extra)
    except ImportError:
        return
    slow_time = getattr(models, "unix_time")  # noqa: B009 - moto does not export it

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else float(slow_time(dt))

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    slow_delete = models.Queue.delete_message

    def delete_message(self: Any, receipt_handle: str) -> None:
        # moto rebuilds the message list without the lock SendMessage appends under: a message sent
        # during a delete was lost. SQS loses none.
        with self._messages_lock:
            slow_delete(self, receipt_handle)

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > time.time())

    models.Queue.delete_message = delete_message  # type: ignore[method-assign]
    setattr(models, "unix_time", unix_time)  # noqa: B010 - what moto's SQS models call
    setattr(models, "unix_time_millis", unix_time_millis)  # noqa: B010
    models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    _moto_sped_up = True


def _sqs_queue_of(target: dict[str, Any]) -> Any:
    """The moto queue of a plain SQS target (standard queue, no input transformer, no delay), or None."""
    from moto.sqs.models import sqs_backends  # noqa: PLC0415 - moto is optional (the emulator extra)

    parts = str(target.get("Arn", "")).split(":")
    if len(parts) != 6 or parts[2] != "sqs" or target.get("InputTransformer") or target.get("SqsParameters"):
        return None
    found = sqs_backends[parts[4]][parts[3]].queues.get(parts[5])
    if found is None or found.fifo_queue or int(getattr(found, "delay_seconds", 0) or 0):
        return None
    return found


def _send_to_sqs(rule: Any, event: dict[str, Any]) -> bool:
    """Send the event to every target of the rule if all are plain SQS queues; False: moto's way instead.

    The message is what moto's EventBridge SQS target sends: the envelope as JSON, ``time`` as ISO 8601
    without milliseconds.
    """
    from moto.sqs.models import Message  # noqa: PLC0415 - moto is optional (the emulator extra)

    queues = [_sqs_queue_of(t) for t in rule.targets]
    if not queues or any(q is None for q in queues):
        return False
    body = json.dumps({**event, "time": _iso(float(event["time"]), millis=False)})
    for target_queue in queues:
        message = Message(str(uuid.uuid4()), body)
        message.mark_sent()
        target_queue.add_message(message)
    return True


def _deliver_to_eventbridge(event: dict[str, Any], account: str, region: str) -> int:
    """What PutEvents does with an event on the default bus; returns how many rules matched.

    Every ENABLED rule whose pattern matches sends it to its targets.
    """
    try:
        from moto.events.models import events_backends  # noqa: PLC0415 - moto loads only when used
    except ImportError:  # moto is the emulator distribution's dependency; without it there is no EventBridge
        return 0
    backend = events_backends[account][region]
    bus = backend.event_buses.get("default")
    if bus is None:
        return 0
    matched = 0
    for rule in list(bus.rules.values()):
        if getattr(rule, "state", "ENABLED") != "ENABLED" or not rule.event_pattern.matches_event(event):  # type: ignore[arg-type]
            continue
        matched += 1
        copy = json.loads(json.dumps(event))  # each rule's targets get their own copy
        if _send_to_sqs(rule, event):
            continue
        if any(t.get("InputTransformer") for t in rule.targets):
            # moto's input transformer reads the ingestion time EventBridge keeps beside the event
            copy["ingestion-time"] = copy["time"]
            rule.send_to_targets(copy)
        else:  # the event as EventBridge delivers it: the envelope, nothing added
            rule.send_to_targets(copy, transform_input=False)
    return matched


class TaskEvents:
    """Publishes one event per task transition, with the profile's event faults."""

    def __init__(
        self,
        *,
        account: str,
        region: str,
        timeline: Timeline,
        faults: EventFaults,
        rng: random.Random,
        counters: Counter[str],
        clock: Callable[[], float],
        deliver: Callable[[dict[str, Any], str, str], int] = _deliver_to_eventbridge,
    ) -> None:
        self._account = account
        self._region = region
        self._timeline = timeline
        self._faults = faults
        self._rng = rng
        self._counters = counters
        self._clock = clock
        self._deliver = deliver
        self._held: list[dict[str, Any]] = []  # reorder: an event held back until the next one passes it
        self._lock = threading.Lock()
        speed_up_moto_sqs()
        self._outbox: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()  # due events, in order
        self._publisher = threading.Thread(target=self._publish_loop, name="ecs-emulator-events", daemon=True)
        self._publisher.start()

    def changed(self, task: Task) -> None:
        """The task's state changed (its version grew): called under the ECS lock, publishes off it."""
        event = envelope(task, account=self._account, region=self._region, now=self._clock())
        self._counters["events.published"] += 1
        f = self._faults
        with self._lock:
            if f.drop and self._rng.random() < f.drop:
                self._counters["events.dropped"] += 1
                return
            copies = 2 if f.duplicate and self._rng.random() < f.duplicate else 1
            if copies == 2:
                self._counters["events.duplicated"] += 1
            delay = f.delay.sample(self._rng) if f.delay_probability and self._rng.random() < f.delay_probability else 0
            if delay:
                self._counters["events.delayed"] += 1
            if f.reorder and self._rng.random() < f.reorder and not self._held:
                self._counters["events.reordered"] += 1
                self._held.append(event)  # sent after the next event of any task, or a second later
                self._timeline.call_later(1.0, self._release_held)
                return
            released, self._held = self._held, []
        for n in range(copies):
            self._timeline.call_later(delay + n * 0.05, functools.partial(self._send, event))
        for late in released:
            self._timeline.call_later(delay + 0.01, functools.partial(self._send, late))

    def _release_held(self) -> None:
        with self._lock:
            released, self._held = self._held, []
        for late in released:
            self._send(late)

    def _send(self, event: dict[str, Any]) -> None:
        """On the timeline, at the event's due time: to the publisher thread, in order."""
        self._outbox.put(event)

    def _publish_loop(self) -> None:
        while True:
            self._publish(self._outbox.get())

    def _publish(self, event: dict[str, Any]) -> None:
        try:
            if not self._deliver(event, self._account, self._region):
                self._counters["events.unmatched"] += 1
        except Exception:  # a broken target must not stop the lifecycle
            _log.exception("publishing an ECS Task State Change event failed")
            self._counters["events.failed"] += 1
