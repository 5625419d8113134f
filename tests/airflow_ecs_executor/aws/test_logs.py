"""Reading awslogs streams from the emulator's CloudWatch Logs over HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from airflow_ecs_executor.aws.logs import LogStream, as_log_line, awslogs_stream, read_stream
from ecs_emulator import Emulator

STREAM = LogStream("/ecs/airflow", "airflow/base/abc123")
AWSLOGS = {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/airflow", "awslogs-stream-prefix": "airflow"}}


def definition(**container: Any) -> dict[str, Any]:
    return {"family": "airflow-task", "containerDefinitions": [{"name": "base", **container}]}


@pytest.mark.parametrize(
    ("task_definition", "expected"),
    [
        (definition(logConfiguration=AWSLOGS), LogStream("/ecs/airflow", "airflow/base/abc123")),
        (
            definition(logConfiguration={**AWSLOGS, "options": {**AWSLOGS["options"], "awslogs-region": "eu-west-1"}}),
            LogStream("/ecs/airflow", "airflow/base/abc123", "eu-west-1"),
        ),
        (definition(), "logs with no log driver, not awslogs"),
        (definition(logConfiguration={"logDriver": "json-file"}), "logs with json-file"),
        (definition(logConfiguration={"logDriver": "awslogs", "options": {}}), "sets no awslogs-group"),
        (
            definition(logConfiguration={"logDriver": "awslogs", "options": {"awslogs-group": "g"}}),
            "sets no awslogs-stream-prefix",
        ),
        ({"family": "f", "containerDefinitions": [{"name": "other"}]}, "has no container named 'base'"),
    ],
)
def test_awslogs_stream(task_definition: dict[str, Any], expected: LogStream | str) -> None:
    found = awslogs_stream(task_definition, "base", "abc123")
    if isinstance(expected, LogStream):
        assert found == expected
    else:
        assert isinstance(found, str)
        assert expected in found


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # execute_workload's structured lines pass through untouched
        ('{"timestamp":"2026-11-26T10:00:00Z","event":"hi","level":"info"}', None),
        # a structured line without a timestamp gets the event's
        ('{"event":"hi","level":"error"}', {"event": "hi", "level": "error"}),
        # plain output and JSON that is not a log record are wrapped
        ("Traceback (most recent call last):", {"event": "Traceback (most recent call last):"}),
        ('{"user": "json"}', {"event": '{"user": "json"}'}),
        ("{not json", {"event": "{not json"}),
        # Airflow 3.1 prints the workload, token included: the JWT never reaches the UI
        (
            "Executing workload ExecuteTask(token='eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiIwMWEyIn0.c2lnbmF0dXJl')",
            {"event": "Executing workload ExecuteTask(token='***')"},
        ),
    ],
)
def test_as_log_line(message: str, expected: dict[str, Any] | None) -> None:
    line = as_log_line({"timestamp": 1795687201000, "message": message + "\n"})
    if expected is None:
        assert line == message
        return
    assert json.loads(line) == {"timestamp": "2026-11-26T10:00:01Z", **expected}


def put_lines(logs: Any, count: int) -> None:
    logs.create_log_group(logGroupName=STREAM.group)
    logs.create_log_stream(logGroupName=STREAM.group, logStreamName=STREAM.stream)
    first = int(time.time() * 1000) - count  # CloudWatch Logs rejects events older than 14 days
    for start in range(0, count, 10_000):
        events = [{"timestamp": first + i, "message": f"line {i}"} for i in range(start, min(count, start + 10_000))]
        logs.put_log_events(logGroupName=STREAM.group, logStreamName=STREAM.stream, logEvents=events)


def test_reads_100000_lines_through_every_page(emulator: Emulator, logs: Any) -> None:
    put_lines(logs, 100_000)
    read = read_stream(logs, STREAM)
    assert read.note is None
    assert len(read.lines) == 100_000
    assert json.loads(read.lines[0])["event"] == "line 0"
    assert json.loads(read.lines[-1])["event"] == "line 99999"
    assert emulator.counters()["api"]["GetLogEvents"]["calls"] >= 10  # 10,000 events per page at most


def test_throttled_reads_back_off_and_finish(emulator: Emulator, logs: Any) -> None:
    put_lines(logs, 25_000)
    emulator.inject("throttle", api="GetLogEvents", count=3)
    sleeps: list[float] = []
    read = read_stream(logs, STREAM, sleep=sleeps.append)
    assert read.note is None
    assert len(read.lines) == 25_000
    assert sleeps == [0.25, 0.5, 1.0]  # exponential back-off between the throttled attempts


def test_a_throttling_storm_ends_in_a_note_with_the_lines_read(emulator: Emulator, logs: Any) -> None:
    put_lines(logs, 15_000)

    class ThrottleAfterFirstPage:
        def __init__(self) -> None:
            self.calls = 0

        def get_log_events(self, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls > 1:
                emulator.inject("throttle", api="GetLogEvents")
            return logs.get_log_events(**kwargs)

    read = read_stream(ThrottleAfterFirstPage(), STREAM, sleep=lambda _: None)
    assert len(read.lines) == 10_000
    assert read.note is not None
    assert "stopped after 10000 lines: ThrottlingException" in read.note
    assert "reload the log view" in read.note


def test_missing_stream_is_a_note(emulator: Emulator, logs: Any) -> None:
    logs.create_log_group(logGroupName=STREAM.group)
    read = read_stream(logs, STREAM)
    assert read.lines == []
    assert read.note is not None
    assert "does not exist (yet)" in read.note
