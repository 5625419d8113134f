"""CloudWatch Logs: the subset that the awslogs driver and log readers use.

Events are kept in memory per stream, in timestamp order. Paging follows the service:
GetLogEvents returns ``nextForwardToken``/``nextBackwardToken``, hands back the same forward
token once the end of the stream is reached, and never returns more than 10,000 events or 1 MB
in one page; FilterLogEvents interleaves the group's streams in timestamp order and pages with
``nextToken`` under the same limits. PutLogEvents accepts events from 14 days ago to 2 hours
ahead and reports the others in ``rejectedLogEventsInfo``, as the service does.

Why this module and not moto's CloudWatch Logs backend behind the same endpoint: moto (5.2.5,
the version pinned here) was checked against the rules above and departs from them where a log
reader could notice. Its GetLogEvents and FilterLogEvents pages have no 1 MB limit (a page of
ten 200 KB events comes back whole); its ``rejectedLogEventsInfo`` gives the index of the last
too-new event and an inclusive too-old end, where the CloudWatch Logs API model defines
``tooNewLogEventStartIndex`` as the first too-new event and ``tooOldLogEventEndIndex`` as
exclusive; its GetLogEvents returns events stamped exactly ``endTime``, which the service
excludes; it counts stored bytes in characters, not UTF-8 bytes. Its backends are also global
to the process and, by its own comment, not thread-safe, while the emulator keeps one state per
``Emulator`` (tests start many) and the awslogs driver writes from one thread per container.
Services the emulator does not implement itself (S3, STS, ...) still go to moto
(``ecs_emulator.moto_bridge``).
"""

from __future__ import annotations

import itertools
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ecs_emulator.errors import (
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)

ACCOUNT = "123456789012"
# GetLogEvents and FilterLogEvents: "Each page returned can contain up to 1 MB of log events or
# up to 10,000 log events" (CloudWatch Logs API model, GetLogEvents and FilterLogEvents).
MAX_EVENTS_PER_CALL = 10_000
MAX_BYTES_PER_CALL = 1_048_576
# PutLogEvents: at most 10,000 events and 1,048,576 bytes, "the sum of all event messages in
# UTF-8, plus 26 bytes for each log event"; the valid events of one batch span at most 24 hours;
# events older than 14 days (or than the group's retention) or more than 2 hours in the future
# are rejected while the others are stored (CloudWatch Logs API model, PutLogEvents).
MAX_PUT_BATCH = 10_000
MAX_PUT_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000
TOO_OLD_MS = 14 * 24 * 3600 * 1000
TOO_NEW_MS = 2 * 3600 * 1000
_DAY_MS = 24 * 3600 * 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


def event_size(message: str) -> int:
    """Bytes one event counts for in a batch or a page: its UTF-8 message plus 26."""
    return len(message.encode("utf-8", "surrogatepass")) + EVENT_OVERHEAD_BYTES


@dataclass
class _Stream:
    name: str
    created: int
    timestamps: list[int] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    ingested: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # event_size of each event
    ids: list[int] = field(default_factory=list)  # ingestion sequence number, for eventId
    stored_bytes: int = 0

    def insert(self, events: list[tuple[int, str]], now: int, next_id: Callable[[], int]) -> None:
        """Store events (timestamp ms, message), keeping the stream in timestamp order."""
        rows = [(ts, msg, now, event_size(msg), next_id()) for ts, msg in events]
        self.stored_bytes += sum(r[3] - EVENT_OVERHEAD_BYTES for r in rows)
        if self.timestamps and rows and rows[0][0] < self.timestamps[-1]:
            # An event older than the newest stored one: merge (stable, so ties keep arrival order).
            old = list(zip(self.timestamps, self.messages, self.ingested, self.sizes, self.ids, strict=True))
            rows = sorted(old + rows, key=lambda r: r[0])
            self.timestamps, self.messages, self.ingested, self.sizes, self.ids = ([] for _ in range(5))
        for ts, msg, ingested, size, event_id in rows:
            self.timestamps.append(ts)
            self.messages.append(msg)
            self.ingested.append(ingested)
            self.sizes.append(size)
            self.ids.append(event_id)


@dataclass
class _Group:
    name: str
    created: int
    retention_days: int | None = None
    streams: dict[str, _Stream] = field(default_factory=dict)


def _group_not_found() -> ResourceNotFoundException:
    return ResourceNotFoundException("The specified log group does not exist.")


class LogsService:
    """In-memory CloudWatch Logs with the service's names, tokens, limits and errors."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self._groups: dict[str, _Group] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
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

    def _next_id(self) -> int:
        return next(self._ids)

    # -- direct use by the awslogs driver ---------------------------------------------------
    def has_group(self, group: str) -> bool:
        with self._lock:
            return group in self._groups

    def ensure_stream(self, group: str, stream: str, *, create_group: bool) -> None:
        """Create the stream (and the group when asked), as the driver does before a container starts.

        Raises ResourceNotFoundException when the group does not exist and may not be created.
        """
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
        batch = list(events)
        if not batch:
            return
        with self._lock:
            grp = self._groups.get(group)
            target = grp.streams.get(stream) if grp else None
            if target is None:
                return  # no stream (deleted, or never created): the driver's PutLogEvents fails and drops lines
            target.insert(batch, _now_ms(), self._next_id)

    def read_all(self, group: str, stream: str) -> list[str]:
        with self._lock:
            grp = self._groups.get(group)
            target = grp.streams.get(stream) if grp else None
            return list(target.messages) if target else []

    # -- API ----------------------------------------------------------------------------------
    def _arn(self, group: str) -> str:
        return f"arn:aws:logs:{self.region}:{ACCOUNT}:log-group:{group}"

    def _group(self, req: Mapping[str, Any], *, identifier: bool = False) -> _Group:
        name = req.get("logGroupName")
        ident = req.get("logGroupIdentifier") if identifier else None
        if name and ident:
            raise InvalidParameterException("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
        if ident:
            # A name or an ARN (arn:aws:logs:region:account:log-group:NAME, optionally followed by :*).
            name = ident.split(":log-group:", 1)[1].removesuffix(":*") if ident.startswith("arn:") else ident
        if not isinstance(name, str) or not name:
            raise InvalidParameterException("1 validation error detected: Value null at 'logGroupName'")
        grp = self._groups.get(name)
        if grp is None:
            raise _group_not_found()
        return grp

    def _stream(self, req: Mapping[str, Any], *, identifier: bool = False) -> _Stream:
        grp = self._group(req, identifier=identifier)
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
            grp = self._group(req)
            del self._groups[grp.name]
        return {}

    def put_retention_policy(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._group(req).retention_days = int(req.get("retentionInDays") or 0) or None
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
            grp = self._group(req)
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
            grp = self._group(req, identifier=True)
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
                        "firstEventTimestamp": s.timestamps[0],
                        "lastEventTimestamp": s.timestamps[-1],
                        "lastIngestionTime": max(s.ingested),
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
        size = sum(event_size(m) for _, m in pairs)
        if size > MAX_PUT_BYTES:
            raise InvalidParameterException(f"Upload too large: {size} bytes exceeds limit of {MAX_PUT_BYTES}")
        now = _now_ms()
        with self._lock:
            grp = self._group(req)
            stream = self._stream(req)
            rejected, accepted = _sort_out(pairs, now, grp.retention_days)
            if accepted and accepted[-1][0] - accepted[0][0] > MAX_BATCH_SPAN_MS:
                raise InvalidParameterException(
                    "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."
                )
            stream.insert(accepted, now, self._next_id)
        out: dict[str, Any] = {"nextSequenceToken": f"{now:056d}"}
        if rejected:
            out["rejectedLogEventsInfo"] = rejected
        return out

    def get_log_events(self, req: dict[str, Any]) -> dict[str, Any]:
        limit = _limit(req.get("limit"))
        with self._lock:
            stream = self._stream(req, identifier=True)
            # startTime is inclusive, endTime exclusive (CloudWatch Logs API model, GetLogEvents).
            lo, hi = _window(stream.timestamps, req.get("startTime"), req.get("endTime"), end_inclusive=False)
            token = req.get("nextToken")
            if token:
                direction, pos = _parse_token(token, lo, hi)
            else:
                direction, pos = ("f", lo) if req.get("startFromHead") else ("b", hi)
            if direction == "f":
                start = pos
                end = _page_end(stream.sizes, start, min(hi, start + limit))
            else:
                end = pos
                start = _page_start(stream.sizes, max(lo, end - limit), end)
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
            "nextForwardToken": f"f/{end:056d}",
            "nextBackwardToken": f"b/{start:056d}",
        }

    def filter_log_events(self, req: dict[str, Any]) -> dict[str, Any]:
        limit = _limit(req.get("limit"))
        names = req.get("logStreamNames")
        prefix = req.get("logStreamNamePrefix")
        if names and prefix:
            raise InvalidParameterException("You cannot specify both LogStreamNames and LogStreamNamePrefix")
        matcher = _pattern(req.get("filterPattern") or "")
        token = req.get("nextToken")
        ascending = _parse_filter_token(token)[0] if token else req.get("startFromHead") is not False
        after = _parse_filter_token(token)[1] if token else None
        with self._lock:
            grp = self._group(req, identifier=True)
            found: list[tuple[int, int, str, int]] = []  # (timestamp, event id, stream, index)
            for stream in grp.streams.values():
                if (names and stream.name not in names) or not stream.name.startswith(prefix or ""):
                    continue
                # Both ends are inclusive here (CloudWatch Logs API model, FilterLogEvents).
                lo, hi = _window(stream.timestamps, req.get("startTime"), req.get("endTime"), end_inclusive=True)
                found += [
                    (stream.timestamps[i], stream.ids[i], stream.name, i)
                    for i in range(lo, hi)
                    if matcher(stream.messages[i])
                ]
            # Streams are interleaved by timestamp, then in ingestion order (as the service sorts).
            found.sort(reverse=not ascending)
            if after is not None:
                found = [f for f in found if ((f[0], f[1]) > after if ascending else (f[0], f[1]) < after)]
            out: list[dict[str, Any]] = []
            used = 0
            for ts, event_id, name, i in found:
                s = grp.streams[name]
                if len(out) == limit or (out and used + s.sizes[i] > MAX_BYTES_PER_CALL):
                    break
                used += s.sizes[i]
                out.append(
                    {
                        "logStreamName": name,
                        "timestamp": ts,
                        "message": s.messages[i],
                        "ingestionTime": s.ingested[i],
                        "eventId": f"{event_id:056d}",
                    }
                )
        result: dict[str, Any] = {"events": out, "searchedLogStreams": []}
        if len(out) < len(found):
            last = out[-1]
            result["nextToken"] = f"{'f' if ascending else 'b'}/{last['timestamp']}/{last['eventId']}"
        return result


def _sort_out(
    pairs: list[tuple[int, str]], now: int, retention_days: int | None
) -> tuple[dict[str, int], list[tuple[int, str]]]:
    """Split a chronological batch into the rejectedLogEventsInfo indexes and the events to store.

    ``tooOldLogEventEndIndex`` and ``expiredLogEventEndIndex`` are exclusive ends of the rejected
    head of the batch, ``tooNewLogEventStartIndex`` the first index of its rejected tail
    (CloudWatch Logs API model, RejectedLogEventsInfo).
    """
    too_old_before = now - TOO_OLD_MS
    expired_before = now - retention_days * _DAY_MS if retention_days else None
    too_new_after = now + TOO_NEW_MS
    rejected: dict[str, int] = {}
    accepted: list[tuple[int, str]] = []
    for i, (ts, message) in enumerate(pairs):
        if ts < too_old_before:
            rejected["tooOldLogEventEndIndex"] = i + 1
        elif expired_before is not None and ts < expired_before:
            rejected["expiredLogEventEndIndex"] = i + 1
        elif ts > too_new_after:
            rejected.setdefault("tooNewLogEventStartIndex", i)
        else:
            accepted.append((ts, message))
    return rejected, accepted


def _limit(value: Any) -> int:
    if value is None:
        return MAX_EVENTS_PER_CALL
    if not isinstance(value, int) or not 1 <= value <= MAX_EVENTS_PER_CALL:
        raise InvalidParameterException("limit must be between 1 and 10000")
    return value


def _window(timestamps: list[int], start: Any, end: Any, *, end_inclusive: bool) -> tuple[int, int]:
    # Streams are kept in timestamp order, so bisect finds the window.
    lo = bisect_left(timestamps, int(start)) if start is not None else 0
    bisect_end = bisect_right if end_inclusive else bisect_left
    hi = len(timestamps) if end is None else bisect_end(timestamps, int(end))
    return lo, max(lo, hi)


def _page_end(sizes: list[int], start: int, end: int) -> int:
    """The end of a forward page from ``start``: at most ``end``, at most 1 MB, at least one event."""
    total = 0
    for i in range(start, end):
        total += sizes[i]
        if total > MAX_BYTES_PER_CALL and i > start:
            return i
    return end


def _page_start(sizes: list[int], start: int, end: int) -> int:
    """The start of a backward page ending at ``end``: at least ``start``, at most 1 MB, at least one event."""
    total = 0
    for i in range(end - 1, start - 1, -1):
        total += sizes[i]
        if total > MAX_BYTES_PER_CALL and i < end - 1:
            return i + 1
    return start


def _parse_token(token: Any, lo: int, hi: int) -> tuple[str, int]:
    try:
        direction, raw = str(token).split("/", 1)
        pos = int(raw)
    except ValueError:
        raise InvalidParameterException("The specified nextToken is invalid.") from None
    if direction not in ("f", "b"):
        raise InvalidParameterException("The specified nextToken is invalid.")
    return direction, min(max(pos, lo), hi)


def _parse_filter_token(token: Any) -> tuple[bool, tuple[int, int]]:
    """(ascending, (timestamp, event id) of the last event returned) from a FilterLogEvents token."""
    try:
        direction, ts, event_id = str(token).split("/", 2)
        if direction not in ("f", "b"):
            raise ValueError(direction)
        return direction == "f", (int(ts), int(event_id))
    except ValueError:
        raise InvalidParameterException("The specified nextToken is invalid.") from None


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
