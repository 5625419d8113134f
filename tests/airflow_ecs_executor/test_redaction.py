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


# Run in a process of its own: Airflow's configure_logging points structlog and the root logger at
# this test's buffer for the rest of the process, and a later test on the same pytest worker (the
# amazon provider's log fetcher in test_real_clients) would then print nowhere it can see.
_WORKLOAD_LOG_LINE = """
import io, sys, uuid
import structlog
from airflow.executors import workloads
from airflow.sdk.log import configure_logging
from airflow_ecs_executor.aws.unseal import hide_token_in_repr

JWT = sys.argv[1]
ti = {
    "id": str(uuid.uuid4()), "dag_version_id": str(uuid.uuid4()), "task_id": "t", "dag_id": "d",
    "run_id": "r", "try_number": 1, "map_index": -1, "pool_slots": 1, "queue": "default",
    "priority_weight": 1,
}
workload = workloads.ExecuteTask.model_validate(
    {"token": JWT, "ti": ti, "dag_rel_path": "d.py", "bundle_info": {"name": "b"}, "log_path": None}
)
hide_token_in_repr(type(workload))
out = io.BytesIO()
configure_logging(output=out, json_output=True)  # what execute_workload sets up in the container
structlog.get_logger(logger_name="airflow.sdk.execution_time.execute_workload").info(
    "Executing workload", workload=workload
)
assert workload.token == JWT  # only its repr changed: the task still authenticates with it
sys.stdout.write(out.getvalue().decode())
"""


def test_the_task_s_own_log_line_of_the_workload_leaves_the_token_out() -> None:
    """Airflow's execute_workload logs the workload to the container's output (CloudWatch) by its repr.

    Airflow 3.1 printed the token there; the unseal step leaves it out on every supported Airflow.
    """
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _WORKLOAD_LOG_LINE, JWT], check=False, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout
    assert "Executing workload" in line and "ti=" in line
    assert JWT not in line
