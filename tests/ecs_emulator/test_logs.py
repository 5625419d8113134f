"""CloudWatch Logs paging and filtering, as the awslogs driver and log readers use them."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def fill(logs: Any, lines: int) -> None:
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    for start in range(0, lines, 10_000):
        batch = [
            {"timestamp": 1_700_000_000_000 + i, "message": f"line {i}"}
            for i in range(start, min(lines, start + 10_000))
        ]
        logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=batch)


def test_forward_paging_reads_every_line_and_ends_on_same_token(logs: Any) -> None:
    fill(logs, 25_000)
    seen: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": "g", "logStreamName": "s", "startFromHead": True}
    token = None
    pages = 0
    while True:
        page = logs.get_log_events(**kwargs, **({"nextToken": token} if token else {}))
        pages += 1
        seen += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert seen == [f"line {i}" for i in range(25_000)]
    assert pages == 4  # three full pages of 10,000 at most, then the empty page that repeats the token


def test_default_read_returns_latest_events(logs: Any) -> None:
    fill(logs, 15_000)
    page = logs.get_log_events(logGroupName="g", logStreamName="s", limit=5)
    assert [e["message"] for e in page["events"]] == [f"line {i}" for i in range(14_995, 15_000)]
    back = logs.get_log_events(logGroupName="g", logStreamName="s", limit=5, nextToken=page["nextBackwardToken"])
    assert [e["message"] for e in back["events"]] == [f"line {i}" for i in range(14_990, 14_995)]


def test_filter_pattern_and_paging(logs: Any) -> None:
    fill(logs, 300)
    found = logs.filter_log_events(logGroupName="g", filterPattern='"line 1"', limit=50)
    messages = [e["message"] for e in found["events"]]
    assert all("line 1" in m for m in messages) and len(messages) == 50
    rest = logs.filter_log_events(logGroupName="g", filterPattern='"line 1"', nextToken=found["nextToken"])
    total = len(messages) + len(rest["events"])
    assert total == sum("line 1" in f"line {i}" for i in range(300))
    assert "nextToken" not in rest


def test_errors(logs: Any) -> None:
    with pytest.raises(ClientError) as exc:
        logs.get_log_events(logGroupName="absent", logStreamName="s")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    logs.create_log_group(logGroupName="g")
    with pytest.raises(ClientError) as exc:
        logs.create_log_group(logGroupName="g")
    assert exc.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as exc:
        logs.get_log_events(logGroupName="g", logStreamName="absent")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_describe_groups_and_streams(logs: Any) -> None:
    fill(logs, 3)
    logs.put_retention_policy(logGroupName="g", retentionInDays=7)
    group = logs.describe_log_groups(logGroupNamePrefix="g")["logGroups"][0]
    assert group["retentionInDays"] == 7
    stream = logs.describe_log_streams(logGroupName="g")["logStreams"][0]
    assert stream["logStreamName"] == "s" and stream["lastEventTimestamp"] == 1_700_000_000_002
