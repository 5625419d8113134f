"""Keep the workload's JWT out of every log line, including botocore's own DEBUG output.

At DEBUG level botocore logs request and response bodies; RunTask requests and DescribeTasks
responses carry the container command, whose workload JSON holds a JWT. A filter on those loggers
rewrites such records before any handler sees them.
"""

from __future__ import annotations

import logging
import re
from typing import Final

# "token": "<value>" inside JSON, also when the JSON is itself escaped inside another string.
_TOKEN_FIELD = re.compile(r'(token\\*"\s*:\s*\\*")([^"\\]+)')
# A bare JWT: three base64url parts, the first starting with eyJ ({"...).
_JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}")
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
    return _JWT.sub(REDACTED, _TOKEN_FIELD.sub(lambda m: m.group(1) + REDACTED, text))


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with ``redact_text``; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging system's business, not ours
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def install() -> None:
    """Attach the filter to botocore's and urllib3's loggers (idempotent)."""
    for name in BOTOCORE_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
