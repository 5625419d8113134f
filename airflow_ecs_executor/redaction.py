"""Keep the workload's JWT out of every log line the scheduler writes, whoever logs it.

At DEBUG level botocore logs request and response bodies; RunTask requests and DescribeTasks
responses can carry a container command whose workload JSON holds a JWT (plain delivery), and any
library could log an ``Authorization`` header. So the redaction sits in the one place every
record passes, whatever its logger and whichever handlers are configured now or later: the log
record factory. Each record's message (and its traceback text) is rewritten when it holds a
JWT-shaped string or a ``"token": "..."`` field.

Why not (only) Airflow's secrets masker: ``mask_secret`` masks *registered values*; registering
every workload's token would grow its pattern set by one value per queueing for the life of the
scheduler, and a token logged before it was registered (or by a library whose logger is not
under the masker's handlers) would pass. A pattern for every JWT-shaped string needs no
registration and covers tokens the executor never saw.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Callable
from typing import Any, Final

# "token": "<value>" inside JSON, also when the JSON is itself escaped inside another string.
_TOKEN_FIELD = re.compile(r'(token\\*"\s*:\s*\\*")([^"\\]+)')
# A JWT: three base64url parts; the first is a JSON object ("{" encodes to "ey"), whatever follows.
_JWT = re.compile(r"ey[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}")
# Kept for callers that attach the filter themselves; install() covers every logger.
BOTOCORE_LOGGERS: Final = (
    "botocore.endpoint",
    "botocore.parsers",
    "botocore.hooks",
    "botocore.auth",
    "botocore.httpsession",
    "botocore.retryhandler",
    "urllib3.connectionpool",
)
REDACTED: Final = "***"


def redact_text(text: str) -> str:
    """The text with workload tokens and JWTs replaced by ***."""
    if "ey" not in text and "token" not in text:  # the cheap test first: most lines hold neither
        return text
    return _JWT.sub(REDACTED, _TOKEN_FIELD.sub(lambda m: m.group(1) + REDACTED, text))


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message and traceback redacted, in place; never drops it."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is the logging system's business, not ours
        return record
    cleaned = redact_text(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = redact_text(text)
    return record


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with ``redact_text``; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_lock = threading.Lock()
_installed: list[Callable[..., logging.LogRecord]] = []


def install() -> None:
    """Redact every log record of this process from now on (idempotent).

    The record factory wraps whatever factory is in place (Airflow's or another library's), so
    their behaviour is kept; it is the one place every record passes, before any filter or handler.
    """
    with _lock:
        current = logging.getLogRecordFactory()
        if current in _installed:
            return

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(current(*args, **kwargs))

        _installed.append(factory)
        logging.setLogRecordFactory(factory)
