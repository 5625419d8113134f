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


def test_every_logger_is_redacted_once_installed(caplog: pytest.LogCaptureFixture) -> None:
    """Any logger, on or off botocore's list, with or without a handler of its own: the record factory."""
    from airflow_ecs_executor import redaction

    redaction.install()
    redaction.install()  # idempotent
    spaced = "eyAiYWxnIjogIkhTMjU2In0.eyAic3ViIjogInRpIn0.c2lnbmF0dXJlLXZhbHVl"  # {"alg"... with a space
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("urllib3.some.new.module").debug("header %s", f"Bearer {JWT}")
        logging.getLogger("anything.else").warning("body %s", json.dumps({"token": "opaque-secret-value"}))
        logging.getLogger("third").error("spaced %s", spaced)
        try:
            raise ValueError(JWT)
        except ValueError:
            logging.getLogger("fourth").exception("failed")
    text = caplog.text
    assert JWT not in text and "opaque-secret-value" not in text and spaced not in text
    assert text.count("***") >= 4
    assert all(r.getMessage() for r in caplog.records)


def test_ordinary_dotted_names_are_kept() -> None:
    text = "airflow.sdk.execution_time.execute_workload ran ip-10-0-0-1.ec2.internal key.they.money"
    assert redact_text(text) == text
