"""CloudWatch Logs as the awslogs driver and log readers use it: paging, limits, rejections.

Each rule names its source: "API model, X" is the CloudWatch Logs service model in botocore
(``botocore/data/logs/2014-03-28/service-2.json``), operation or shape X.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

DAY_MS = 24 * 3600 * 1000
HOUR_MS = 3600 * 1000
# A batch of 200,000-character events: five fit in a 1 MB page (5 x 200,026 bytes), six do not.
BIG = "x" * 200_000


def now_ms() -> int:
    return int(time.time() * 1000)


def fill(logs: Any, lines: int, *, stream: str = "s", start: int | None = None) -> int:
    """Write ``lines`` events one millisecond apart, ending about now; the first timestamp."""
    if "g" not in {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}:
        logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName=stream)
    first = now_ms() - lines if start is None else start
    for begin in range(0, lines, 10_000):
        batch = [{"timestamp": first + i, "message": f"line {i}"} for i in range(begin, min(lines, begin + 10_000))]
        logs.put_log_events(logGroupName="g", logStreamName=stream, logEvents=batch)
    return first


def put_big(logs: Any, count: int) -> None:
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    first = now_ms() - count
    for begin in range(0, count, 4):  # four per batch keeps each PutLogEvents under 1,048,576 bytes
        batch = [{"timestamp": first + i, "message": BIG} for i in range(begin, min(count, begin + 4))]
        logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=batch)


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


class TestGetLogEvents:
    def test_forward_paging_reads_every_line_and_ends_on_same_token(self, logs: Any) -> None:
        """API model, GetLogEvents: at most 10,000 events a page; the same forward token at the end."""
        fill(logs, 25_000)
        seen: list[str] = []
        kwargs: dict[str, Any] = {"logGroupName": "g", "logStreamName": "s", "startFromHead": True}
        token = None
        pages = 0
        while True:
            page = logs.get_log_events(**kwargs, **({"nextToken": token} if token else {}))
            pages += 1
            assert len(page["events"]) <= 10_000
            seen += [e["message"] for e in page["events"]]
            if page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
        assert seen == [f"line {i}" for i in range(25_000)]
        assert pages == 4  # three pages of 10,000 at most, then the empty page that repeats the token

    def test_default_read_returns_latest_events(self, logs: Any) -> None:
        """API model, GetLogEvents.startFromHead: false (the default) returns the latest events first."""
        fill(logs, 15_000)
        page = logs.get_log_events(logGroupName="g", logStreamName="s", limit=5)
        assert [e["message"] for e in page["events"]] == [f"line {i}" for i in range(14_995, 15_000)]
        back = logs.get_log_events(logGroupName="g", logStreamName="s", limit=5, nextToken=page["nextBackwardToken"])
        assert [e["message"] for e in back["events"]] == [f"line {i}" for i in range(14_990, 14_995)]

    @pytest.mark.parametrize("from_head", [True, False], ids=["forward", "backward"])
    def test_a_page_holds_at_most_1_mb(self, logs: Any, from_head: bool) -> None:
        """API model, GetLogEvents: "Each page returned can contain up to 1 MB of log events"."""
        put_big(logs, 12)
        pages: list[int] = []
        token = None
        while True:
            kwargs = {"nextToken": token} if token else {}
            page = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=from_head, **kwargs)
            if page["events"]:
                pages.append(len(page["events"]))
                assert sum(len(e["message"]) + 26 for e in page["events"]) <= 1_048_576
            next_token = page["nextForwardToken" if from_head else "nextBackwardToken"]
            if next_token == token:
                break
            token = next_token
        assert pages == [5, 5, 2]

    def test_end_time_is_exclusive_start_time_inclusive(self, logs: Any) -> None:
        """API model, GetLogEvents.startTime/endTime: startTime included, events at endTime not."""
        first = fill(logs, 10)
        page = logs.get_log_events(
            logGroupName="g", logStreamName="s", startFromHead=True, startTime=first + 2, endTime=first + 5
        )
        assert [e["message"] for e in page["events"]] == ["line 2", "line 3", "line 4"]

    def test_log_group_identifier_names_the_group_by_name_or_arn(self, logs: Any) -> None:
        """API model, GetLogEvents.logGroupIdentifier: the name or the ARN of the log group."""
        fill(logs, 3)
        arn = logs.describe_log_groups()["logGroups"][0]["logGroupArn"]
        for ident in ("g", arn):
            page = logs.get_log_events(logGroupIdentifier=ident, logStreamName="s", startFromHead=True)
            assert len(page["events"]) == 3
        with pytest.raises(ClientError) as exc:
            logs.get_log_events(logGroupName="g", logGroupIdentifier="g", logStreamName="s")
        assert error_code(exc) == "InvalidParameterException"


class TestFilterLogEvents:
    def test_filter_pattern_and_paging(self, logs: Any) -> None:
        """API model, FilterLogEvents: a nextToken while more events match, none at the end."""
        fill(logs, 300)
        found = logs.filter_log_events(logGroupName="g", filterPattern='"line 1"', limit=50)
        messages = [e["message"] for e in found["events"]]
        assert all("line 1" in m for m in messages) and len(messages) == 50
        rest = logs.filter_log_events(logGroupName="g", filterPattern='"line 1"', nextToken=found["nextToken"])
        total = len(messages) + len(rest["events"])
        assert total == sum("line 1" in f"line {i}" for i in range(300))
        assert "nextToken" not in rest

    def test_streams_are_interleaved_in_timestamp_order(self, logs: Any) -> None:
        """API model, FilterLogEvents.interleaved: always true; events come sorted by timestamp."""
        start = now_ms() - 1000
        logs.create_log_group(logGroupName="g")
        for name, offsets in (("a", [0, 2, 4]), ("b", [1, 3, 5])):
            logs.create_log_stream(logGroupName="g", logStreamName=name)
            events = [{"timestamp": start + o, "message": f"{name}{o}"} for o in offsets]
            logs.put_log_events(logGroupName="g", logStreamName=name, logEvents=events)
        first = logs.filter_log_events(logGroupName="g", limit=4)
        rest = logs.filter_log_events(logGroupName="g", nextToken=first["nextToken"])
        assert [e["message"] for e in first["events"] + rest["events"]] == ["a0", "b1", "a2", "b3", "a4", "b5"]

    def test_a_page_holds_at_most_1_mb(self, logs: Any) -> None:
        """API model, FilterLogEvents: "Each page returned can contain up to 1 MB of log events"."""
        put_big(logs, 7)
        page = logs.filter_log_events(logGroupName="g")
        assert len(page["events"]) == 5 and "nextToken" in page
        rest = logs.filter_log_events(logGroupName="g", nextToken=page["nextToken"])
        assert len(rest["events"]) == 2 and "nextToken" not in rest

    def test_end_time_is_inclusive(self, logs: Any) -> None:
        """API model, FilterLogEvents.endTime: only events later than endTime are left out."""
        first = fill(logs, 10)
        page = logs.filter_log_events(logGroupName="g", startTime=first + 2, endTime=first + 5)
        assert [e["message"] for e in page["events"]] == ["line 2", "line 3", "line 4", "line 5"]


class TestPutLogEvents:
    def test_too_old_and_too_new_events_are_rejected_the_rest_stored(self, logs: Any) -> None:
        """API model, PutLogEvents and RejectedLogEventsInfo: older than 14 days or over 2 hours ahead.

        tooOldLogEventEndIndex is exclusive; tooNewLogEventStartIndex is the first too-new event.
        """
        logs.create_log_group(logGroupName="g")
        logs.create_log_stream(logGroupName="g", logStreamName="s")
        now = now_ms()
        events = [
            {"timestamp": now - 15 * DAY_MS, "message": "old 0"},
            {"timestamp": now - 15 * DAY_MS, "message": "old 1"},
            {"timestamp": now - 13 * DAY_MS, "message": "kept 2"},
            {"timestamp": now + HOUR_MS, "message": "kept 3"},
            {"timestamp": now + 3 * HOUR_MS, "message": "new 4"},
            {"timestamp": now + 3 * HOUR_MS, "message": "new 5"},
        ]
        # The kept events span 13 days, over the 24 hours one batch may span: send them apart.
        with pytest.raises(ClientError) as exc:
            logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=events)
        assert error_code(exc) == "InvalidParameterException"
        events[2]["timestamp"] = now - HOUR_MS
        response = logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=events)
        assert response["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2, "tooNewLogEventStartIndex": 4}
        page = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True)
        assert [e["message"] for e in page["events"]] == ["kept 2", "kept 3"]

    def test_events_before_the_retention_period_are_expired(self, logs: Any) -> None:
        """API model, PutLogEvents: events "preceding the log group's retention period are rejected"."""
        logs.create_log_group(logGroupName="g")
        logs.put_retention_policy(logGroupName="g", retentionInDays=1)
        logs.create_log_stream(logGroupName="g", logStreamName="s")
        now = now_ms()
        response = logs.put_log_events(
            logGroupName="g",
            logStreamName="s",
            logEvents=[{"timestamp": now - 3 * DAY_MS, "message": "expired"}, {"timestamp": now, "message": "kept"}],
        )
        assert response["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}

    def test_an_accepted_batch_says_nothing_of_rejections(self, logs: Any) -> None:
        """API model, PutLogEventsResponse.rejectedLogEventsInfo: only when events were rejected."""
        fill(logs, 1)
        response = logs.put_log_events(
            logGroupName="g", logStreamName="s", logEvents=[{"timestamp": now_ms(), "message": "x"}]
        )
        assert "rejectedLogEventsInfo" not in response

    def test_a_batch_over_1_mb_is_refused(self, logs: Any) -> None:
        """API model, PutLogEvents: at most 1,048,576 bytes, the UTF-8 messages plus 26 bytes each."""
        fill(logs, 1)
        now = now_ms()
        events = [{"timestamp": now, "message": "é" * 100_000} for _ in range(6)]  # 6 x 200,026 bytes
        with pytest.raises(ClientError) as exc:
            logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=events)
        assert error_code(exc) == "InvalidParameterException"
        logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=events[:5])

    def test_events_out_of_order_in_a_batch_are_refused(self, logs: Any) -> None:
        """API model, PutLogEvents: "The log events in the batch must be in chronological order"."""
        fill(logs, 1)
        now = now_ms()
        events = [{"timestamp": now, "message": "b"}, {"timestamp": now - 1, "message": "a"}]
        with pytest.raises(ClientError) as exc:
            logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=events)
        assert error_code(exc) == "InvalidParameterException"

    def test_a_later_batch_with_older_events_is_read_in_time_order(self, logs: Any) -> None:
        """API model, GetLogEvents: events are read in timestamp order, whatever order batches came in."""
        first = fill(logs, 3)
        logs.put_log_events(
            logGroupName="g", logStreamName="s", logEvents=[{"timestamp": first + 1, "message": "late"}]
        )
        page = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True)
        assert [e["message"] for e in page["events"]] == ["line 0", "line 1", "late", "line 2"]
        stream = logs.describe_log_streams(logGroupName="g")["logStreams"][0]
        assert (stream["firstEventTimestamp"], stream["lastEventTimestamp"]) == (first, first + 2)


def test_errors(logs: Any) -> None:
    """API model, GetLogEvents/CreateLogGroup errors: ResourceNotFound, ResourceAlreadyExists."""
    with pytest.raises(ClientError) as exc:
        logs.get_log_events(logGroupName="absent", logStreamName="s")
    assert error_code(exc) == "ResourceNotFoundException"
    logs.create_log_group(logGroupName="g")
    with pytest.raises(ClientError) as exc:
        logs.create_log_group(logGroupName="g")
    assert error_code(exc) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as exc:
        logs.get_log_events(logGroupName="g", logStreamName="absent")
    assert error_code(exc) == "ResourceNotFoundException"


def test_describe_groups_and_streams(logs: Any) -> None:
    """API model, DescribeLogGroups/DescribeLogStreams: retention, event timestamps, UTF-8 stored bytes."""
    first = fill(logs, 3)
    logs.put_retention_policy(logGroupName="g", retentionInDays=7)
    group = logs.describe_log_groups(logGroupNamePrefix="g")["logGroups"][0]
    assert group["retentionInDays"] == 7
    stream = logs.describe_log_streams(logGroupName="g")["logStreams"][0]
    assert stream["logStreamName"] == "s" and stream["lastEventTimestamp"] == first + 2
    assert stream["storedBytes"] == len("line 0") * 3
