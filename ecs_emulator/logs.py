"""CloudWatch Logs: the subset that the awslogs driver and log readers use.

Events are kept in memory per stream, in arrival order. Paging follows the service: GetLogEvents
returns ``nextForwardToken``/``nextBackwardToken`` and hands back the same forward token once the
end of the stream is reached; FilterLogEvents pages with ``nextToken``.
"""

from __future__ import annotations

import itertools
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ecs_emulator.errors import (
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)

ACCOUNT = "123456789012"
# GetLogEvents and FilterLogEvents return at most 10,000 events (or 1 MB) per call.
MAX_EVENTS_PER_CALL = 10_000
_MAX_BYTES_PER_CALL = 1_048_576
# PutLogEvents accepts at most 10,000 events per batch.
MAX_PUT_BATCH = 10_000


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Stream:
    name: str
    created: int
    timestamps: list[int] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    ingested: list[int] = field(default_factory=list)
    stored_bytes: int = 0


@dataclass
class _Group:
    name: str
    created: int
    retention_days: int | None = None
    streams: dict[str, _Stream] = field(default_factory=dict)


def _group_not_found() -> ResourceNotFoundException:
    return ResourceNotFoundException("The specified log group does not exist.")


class LogsService:
    """In-memory CloudWatch Logs with the service's names, tokens and errors."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self._groups: dict[str, _Group] = {}
        self._lock = threading.Lock()
        self.handlers: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateLogGroup": self.create_log_group,
            "DeleteLogGroup": self.delete_log_group,
            "DescribeLogGroups": self.describe_log_groups,
            "CreateLogStream": self.create_log_stream,
            "DescribeLogStreams": self.describe_log_streams,
            "PutLogEvents": self.put_log_events,
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
            "PutRetentionPolicy": self.put_retention_policy,
        }

    # -- direct use by the task runner ------------------------------------------------------
    def has_group(self, group: str) -> bool:
        with self._lock:
            return group in self._groups

    def ensure_stream(self, group: str, stream: str, *, create_group: bool) -> None:
        with self._lock:
            if group not in self._groups:
                if not create_group:
                    raise _group_not_found()
                self._groups[group] = _Group(group, _now_ms())
            streams = self._groups[group].streams
            if stream not in streams:
                streams[stream] = _Stream(stream, _now_ms())

    def append(self, group: str, stream: str, events: Iterable[tuple[int, str]]) -> None:
        """Append (timestamp ms, message) pairs as the awslogs driver would."""
        now = _now_ms()
        with self._lock:
            grp = self._groups.get(group)
            target = grp.streams.get(stream) if grp else None
            if target is None:
                return  # the group was deleted while the container ran: the driver drops lines
            for ts, message in events:
                target.timestamps.append(ts)
                target.messages.append(message)
                target.ingested.append(now)
                target.stored_bytes += len(message.encode())

    def read_all(self, group: str, stream: str) -> list[str]:
        with self._lock:
            grp = self._groups.get(group)
            target = grp.streams.get(stream) if grp else None
            return list(target.messages) if target else []

    # -- API ----------------------------------------------------------------------------------
    def _arn(self, group: str) -> str:
        return f"arn:aws:logs:{self.region}:{ACCOUNT}:log-group:{group}"

    def _group(self, name: Any) -> _Group:
        if not isinstance(name, str) or not name:
            raise InvalidParameterException("1 validation error detected: Value null at 'logGroupName'")
        grp = self._groups.get(name)
        if grp is None:
            raise _group_not_found()
        return grp

    def _stream(self, req: Mapping[str, Any]) -> _Stream:
        grp = self._group(req.get("logGroupName"))
        stream = grp.streams.get(req.get("logStreamName") or "")
        if stream is None:
            raise ResourceNotFoundException("The specified log stream does not exist.")
        return stream

    def create_log_group(self, req: dict[str, Any]) -> dict[str, Any]:
        name = req.get("logGroupName")
        if not isinstance(name, str) or not 1 <= len(name) <= 512:
            raise InvalidParameterException(
                "1 validation error detected: Value at 'logGroupName' failed to satisfy constraint"
            )
        with self._lock:
            if name in self._groups:
                raise ResourceAlreadyExistsException("The specified log group already exists")
            self._groups[name] = _Group(name, _now_ms())
        return {}

    def delete_log_group(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            grp = self._group(req.get("logGroupName"))
            del self._groups[grp.name]
        return {}

    def put_retention_policy(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._group(req.get("logGroupName")).retention_days = int(req.get("retentionInDays") or 0) or None
        return {}

    def describe_log_groups(self, req: dict[str, Any]) -> dict[str, Any]:
        prefix = req.get("logGroupNamePrefix") or ""
        with self._lock:
            groups = [
                {
                    "logGroupName": g.name,
                    "creationTime": g.created,
                    "arn": self._arn(g.name) + ":*",
                    "logGroupArn": self._arn(g.name),
                    "storedBytes": sum(s.stored_bytes for s in g.streams.values()),
                    **({"retentionInDays": g.retention_days} if g.retention_days else {}),
                }
                for name, g in sorted(self._groups.items())
                if name.startswith(prefix)
            ]
        return {"logGroups": groups}

    def create_log_stream(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            grp = self._group(req.get("logGroupName"))
            name = req.get("logStreamName")
            if not isinstance(name, str) or not name or ":" in name or "*" in name:
                raise InvalidParameterException("Invalid log stream name")
            if name in grp.streams:
                raise ResourceAlreadyExistsException("The specified log stream already exists")
            grp.streams[name] = _Stream(name, _now_ms())
        return {}

    def describe_log_streams(self, req: dict[str, Any]) -> dict[str, Any]:
        prefix = req.get("logStreamNamePrefix") or ""
        with self._lock:
            grp = self._group(req.get("logGroupName"))
            rows = []
            for s in sorted(grp.streams.values(), key=lambda s: s.name):
                if not s.name.startswith(prefix):
                    continue
                row: dict[str, Any] = {
                    "logStreamName": s.name,
                    "creationTime": s.created,
                    "arn": f"{self._arn(grp.name)}:log-stream:{s.name}",
                    "storedBytes": s.stored_bytes,
                }
                if s.timestamps:
                    row |= {
                        "firstEventTimestamp": min(s.timestamps),
                        "lastEventTimestamp": max(s.timestamps),
                        "lastIngestionTime": s.ingested[-1],
                    }
                rows.append(row)
        return {"logStreams": rows}

    def put_log_events(self, req: dict[str, Any]) -> dict[str, Any]:
        events = req.get("logEvents")
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_PUT_BATCH:
            raise InvalidParameterException("logEvents must hold between 1 and 10000 events")
        pairs: list[tuple[int, str]] = []
        for ev in events:
            if not isinstance(ev, dict) or not isinstance(ev.get("message"), str):
                raise InvalidParameterException("Each log event needs a timestamp and a message")
            pairs.append((int(ev.get("timestamp", 0)), ev["message"]))
        if any(b[0] < a[0] for a, b in itertools.pairwise(pairs)):
            raise InvalidParameterException(
                "Log events in a single PutLogEvents request must be in chronological order."
            )
        with self._lock:
            self._stream(req)
        self.append(req["logGroupName"], req["logStreamName"], pairs)
        return {"nextSequenceToken": str(_now_ms())}

    def get_log_events(self, req: dict[str, Any]) -> dict[str, Any]:
        limit = _limit(req.get("limit"))
        with self._lock:
            stream = self._stream(req)
            lo, hi = _time_window(stream.timestamps, req.get("startTime"), req.get("endTime"))
            token = req.get("nextToken")
            if token:
                direction, pos = _parse_token(token, lo, hi)
            else:
                direction, pos = ("f", lo) if req.get("startFromHead") else ("b", hi)
            if direction == "f":
                start, end = pos, min(hi, pos + limit)
                end = _byte_capped(stream.messages, start, end)
            else:
                end, start = pos, max(lo, pos - limit)
            events = [
                {
                    "timestamp": stream.timestamps[i],
                    "message": stream.messages[i],
                    "ingestionTime": stream.ingested[i],
                }
                for i in range(start, end)
            ]
        return {
            "events": events,
            "nextForwardToken": f"f/{end:020d}",
            "nextBackwardToken": f"b/{start:020d}",
        }

    def filter_log_events(self, req: dict[str, Any]) -> dict[str, Any]:
        limit = _limit(req.get("limit"))
        names = req.get("logStreamNames")
        prefix = req.get("logStreamNamePrefix")
        if names and prefix:
            raise InvalidParameterException("You cannot specify both LogStreamNames and LogStreamNamePrefix")
        matcher = _pattern(req.get("filterPattern") or "")
        start_at = _parse_filter_token(req.get("nextToken"))
        out: list[dict[str, Any]] = []
        next_token: str | None = None
        with self._lock:
            grp = self._group(req.get("logGroupName"))
            streams = sorted(
                (s for s in grp.streams.values() if (not names or s.name in names) and s.name.startswith(prefix or "")),
                key=lambda s: s.name,
            )
            for s_index, stream in enumerate(streams):
                if (s_index, 0) < (start_at[0], 0):
                    continue
                lo, hi = _time_window(stream.timestamps, req.get("startTime"), req.get("endTime"))
                first = max(lo, start_at[1]) if s_index == start_at[0] else lo
                for i in range(first, hi):
                    if not matcher(stream.messages[i]):
                        continue
                    if len(out) == limit:
                        next_token = f"{s_index}/{i}"
                        break
                    out.append(
                        {
                            "logStreamName": stream.name,
                            "timestamp": stream.timestamps[i],
                            "message": stream.messages[i],
                            "ingestionTime": stream.ingested[i],
                            "eventId": f"{s_index:08d}{i:028d}",
                        }
                    )
                if next_token:
                    break
        out.sort(key=lambda e: (e["timestamp"], e["eventId"]))
        result: dict[str, Any] = {"events": out, "searchedLogStreams": []}
        if next_token:
            result["nextToken"] = next_token
        return result


def _limit(value: Any) -> int:
    if value is None:
        return MAX_EVENTS_PER_CALL
    if not isinstance(value, int) or not 1 <= value <= MAX_EVENTS_PER_CALL:
        raise InvalidParameterException("limit must be between 1 and 10000")
    return value


def _time_window(timestamps: list[int], start: Any, end: Any) -> tuple[int, int]:
    # Streams written by the runner are in time order, so bisect finds the window.
    lo = bisect_left(timestamps, int(start)) if start is not None else 0
    hi = bisect_left(timestamps, int(end)) if end is not None else len(timestamps)
    return lo, max(lo, hi)


def _parse_token(token: Any, lo: int, hi: int) -> tuple[str, int]:
    try:
        direction, raw = str(token).split("/", 1)
        pos = int(raw)
    except ValueError:
        raise InvalidParameterException("The specified nextToken is invalid.") from None
    if direction not in ("f", "b"):
        raise InvalidParameterException("The specified nextToken is invalid.")
    return direction, min(max(pos, lo), hi)


def _parse_filter_token(token: Any) -> tuple[int, int]:
    if not token:
        return (0, 0)
    try:
        stream_index, event_index = (int(p) for p in str(token).split("/", 1))
    except ValueError:
        raise InvalidParameterException("The specified nextToken is invalid.") from None
    return stream_index, event_index


def _byte_capped(messages: list[str], start: int, end: int) -> int:
    total = 0
    for i in range(start, end):
        total += len(messages[i]) + 26  # the service counts 26 bytes of overhead per event
        if total > _MAX_BYTES_PER_CALL:
            return max(start + 1, i)
    return end


def _pattern(pattern: str) -> Callable[[str], bool]:
    """Match CloudWatch's simple term patterns: all terms present, quoted phrases kept whole."""
    pattern = pattern.strip()
    if not pattern:
        return lambda _m: True
    terms: list[str] = []
    current = ""
    quoted = False
    for ch in pattern:
        if ch == '"':
            quoted = not quoted
        elif ch == " " and not quoted:
            if current:
                terms.append(current)
            current = ""
        else:
            current += ch
    if current:
        terms.append(current)
    return lambda message: all(t in message for t in terms)
