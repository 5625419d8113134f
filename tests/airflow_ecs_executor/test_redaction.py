from __future__ import annotations

import json
import logging

import pytest

from airflow_ecs_executor.redaction import RedactingFilter, redact_text

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0aSJ9.c2lnbmF0dXJlLXZhbHVl"


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"token": JWT, "ti": {}}),
        json.dumps(["--json-string", json.dumps({"token": "opaque-secret-value"})]),
        f"Authorization: Bearer {JWT}",
    ],
)
def test_tokens_are_redacted(text: str) -> None:
    cleaned = redact_text(text)
    assert JWT not in cleaned
    assert "opaque-secret-value" not in cleaned
    assert "***" in cleaned


def test_filter_rewrites_records_and_keeps_them() -> None:
    record = logging.LogRecord(
        "botocore.endpoint", logging.DEBUG, __file__, 1, "body: %s", (json.dumps({"token": JWT}),), None
    )
    assert RedactingFilter().filter(record) is True
    assert JWT not in record.getMessage()
