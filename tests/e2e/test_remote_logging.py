"""S3 remote logging, configured in the API server and in the ECS task as docs/logging.md says.

The bucket lives in the emulator (moto's S3 behind the same endpoint); the container uploads its log
when the task ends and the API server reads it back from S3.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
BUCKET = "airflow-logs"


@pytest.fixture(scope="module")
def s3_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Tracked by polling: the e2e suite runs with ECS events off here and on everywhere else.
    st = Stack(Path(tmp_path_factory.mktemp("airflow-s3-logs")), task_events=False)
    extra = {"endpoint_url": st.endpoint_url, "region_name": "us-east-1"}
    # The API server signs with the emulator's credentials; the ECS task with its task role's
    # (no login in its connection: boto3 takes the container credentials the emulator serves).
    server_connection = {
        "conn_type": "aws",
        "login": st.emulator_credentials.access_key_id,
        "password": st.emulator_credentials.secret_access_key,
        "extra": extra,
    }
    task_connection = {"conn_type": "aws", "extra": extra}
    remote = {
        "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
        "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{BUCKET}/logs",
        "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": "aws_logs",
    }
    st.extra_env.update(remote, AIRFLOW_CONN_AWS_LOGS=json.dumps(server_connection))  # the API server reads the log
    st.container_env.update(remote, AIRFLOW_CONN_AWS_LOGS=json.dumps(task_connection))  # the ECS task writes it
    try:
        st.start()
        st.aws("s3").create_bucket(Bucket=BUCKET)
        st.wait_dags(["smoke"])
        yield st
    finally:
        st.stop()


def test_task_log_is_uploaded_to_s3_and_read_back(s3_stack: Stack) -> None:
    run_id = s3_stack.trigger("smoke")
    assert s3_stack.wait_run("smoke", run_id) == "success"
    deadline = time.monotonic() + 60
    while True:  # the upload happens as the task ends, a moment after it reported success
        log = s3_stack.task_log("smoke", run_id, "hello", 1)
        lines = [str(e) for line in log for e in (line.get("event"), *line.get("sources", []))]
        from_s3 = any(f"s3://{BUCKET}/logs/dag_id=smoke" in e for e in lines)
        # Until the upload lands the API server shows the CloudWatch copy: wait for the S3 one.
        if (from_s3 and "hello from an ECS task run by EcsExecutor" in lines) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert any(f"s3://{BUCKET}/logs/dag_id=smoke" in e for e in lines), lines[:5]
    assert "hello from an ECS task run by EcsExecutor" in lines
    assert not any("CloudWatch Logs" in e for e in lines)  # remote logging comes first
    keys = [o["Key"] for o in s3_stack.aws("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert any("dag_id=smoke" in k and k.endswith("attempt=1.log") for k in keys), keys
