"""The request log: one JSON line per AWS request, with the principal that signed it and the whole body."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from ecs_emulator import credentials as creds
from ecs_emulator.emulator import Emulator
from ecs_emulator.runners import STRIPPED_ENV
from tests.helpers import aws_client, register_instance, wait_for

ROLE = "arn:aws:iam::123456789012:role/airflow-task"
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/airflow-ecs-execution"


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[tuple[Emulator, Path, creds.Credentials]]:
    api_server = creds.new_credentials()
    path = tmp_path / "requests.jsonl"
    with Emulator(
        "fast",
        runner="simulated",
        request_log=path,
        principals={"api-server": (api_server.access_key_id, api_server.secret_access_key)},
    ) as em:
        yield em, path, api_server


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def client(service: str, em: Emulator, key: creds.Credentials, token: str | None = None) -> Any:
    return boto3.client(
        service,
        endpoint_url=em.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_each_aws_request_is_one_line_with_its_principal_resources_and_body(
    logged: tuple[Emulator, Path, creds.Credentials],
) -> None:
    em, path, api_server = logged
    ecs = aws_client("ecs", em)
    ecs.create_cluster(clusterName="airflow")
    register_instance(ecs, "airflow")
    ecs.register_task_definition(
        family="airflow-task",
        containerDefinitions=[{"name": "base", "image": "x", "memory": 512}],
        taskRoleArn=ROLE,
        executionRoleArn=EXECUTION_ROLE,
    )
    marker = f"marker-{uuid.uuid4()}"
    (task,) = ecs.run_task(
        cluster="airflow",
        taskDefinition="airflow-task",
        overrides={"containerOverrides": [{"name": "base", "command": ["echo", marker]}]},
        tags=[{"key": "dag_id", "value": "d"}],
    )["tasks"]
    reader = client("ecs", em, api_server)
    reader.describe_tasks(cluster="airflow", tasks=[task["taskArn"]])
    with pytest.raises(reader.exceptions.ClientError):
        client("logs", em, api_server).get_log_events(logGroupName="/ecs/airflow", logStreamName="airflow/base/x")

    records = lines(path)
    by_action = {(r["service"], r["action"]): r for r in records}
    run = by_action["ecs", "RunTask"]
    assert run["principal"] == creds.OWN_PRINCIPAL
    assert run["access_key_id"] == em.access_key_id
    assert run["status"] == 200
    assert marker in run["body"]  # the body as received
    assert run["resources"]["cluster"] == "airflow"
    assert run["resources"]["taskDefinitionArn"].endswith(":task-definition/airflow-task:1")
    assert run["resources"]["passedRoles"] == [ROLE, EXECUTION_ROLE]  # from the task definition
    assert run["resources"]["startedTaskArns"] == [task["taskArn"]]
    assert run["resources"]["tagged"] is True
    describe = by_action["ecs", "DescribeTasks"]
    assert describe["principal"] == "api-server"
    assert describe["resources"]["tasks"] == [task["taskArn"]]
    get = by_action["logs", "GetLogEvents"]
    assert (get["principal"], get["status"]) == ("api-server", 400)  # ResourceNotFound: recorded too
    assert get["resources"] == {"logGroupName": "/ecs/airflow", "logStreamName": "airflow/base/x"}
    secret_free = path.read_text()
    assert em.secret_access_key not in secret_free and api_server.secret_access_key not in secret_free
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it holds request bodies: the owner's only
    assert all(not r["path"].startswith("/_emulator/") for r in records)


def test_moto_services_are_recorded_with_their_actions(logged: tuple[Emulator, Path, creds.Credentials]) -> None:
    em, path, _ = logged
    kms = aws_client("kms", em)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext={"ecs-executor:cluster": "airflow"})
    sqs = aws_client("sqs", em)
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    events = aws_client("events", em)
    rule = f"r-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["aws.ecs"]}))
    events.describe_rule(Name=rule)
    aws_client("sts", em).get_caller_identity()
    s3 = aws_client("s3", em)
    s3.create_bucket(Bucket="logs")
    s3.put_object(Bucket="logs", Key="dag/run/1.log", Body=b"hello")

    records = {(r["service"], r["action"]): r for r in lines(path)}
    generate = records["kms", "GenerateDataKey"]
    assert generate["resources"] == {"KeyId": key, "EncryptionContext": {"ecs-executor:cluster": "airflow"}}
    assert records["sqs", "ReceiveMessage"]["resources"]["QueueUrl"] == url
    assert records["events", "DescribeRule"]["resources"] == {"Name": rule}
    assert records["sts", "GetCallerIdentity"]["principal"] == creds.OWN_PRINCIPAL
    put = records["s3", "PUT /logs/dag/run/1.log"]
    assert put["resources"] == {"bucket": "logs", "key": "dag/run/1.log"}
    assert "hello" in put["body"]
    assert all(r["principal"] == creds.OWN_PRINCIPAL for r in records.values())


def test_task_role_credentials_are_recorded_as_the_task(logged: tuple[Emulator, Path, creds.Credentials]) -> None:
    em, path, _ = logged
    task_arn = "arn:aws:ecs:us-east-1:123456789012:task/airflow/0123456789abcdef0123456789abcdef"
    credential_id, token = em.keys.task_slot(task_arn, ROLE)
    request = urllib.request.Request(
        f"{em.endpoint_url}/_task-credentials/{credential_id}", headers={"Authorization": token}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        issued = json.loads(answer.read())
    task_key = creds.Credentials(issued["AccessKeyId"], issued["SecretAccessKey"])
    kms = client("kms", em, task_key, issued["Token"])
    with pytest.raises(kms.exceptions.ClientError):
        kms.decrypt(CiphertextBlob=b"x" * 64, EncryptionContext={"ecs-executor:cluster": "airflow"})

    (decrypt,) = [r for r in lines(path) if r["action"] == "Decrypt"]
    assert decrypt["principal"] == creds.TASK_PRINCIPAL
    assert (decrypt["role_arn"], decrypt["task_arn"]) == (ROLE, task_arn)
    assert decrypt["resources"] == {"EncryptionContext": {"ecs-executor:cluster": "airflow"}}
    assert not any("_task-credentials" in r["path"] for r in lines(path))  # not an AWS request


def test_a_refused_request_is_recorded_without_a_principal(logged: tuple[Emulator, Path, creds.Credentials]) -> None:
    em, path, _ = logged
    stranger = creds.new_credentials()
    ecs = client("ecs", em, stranger)
    with pytest.raises(ecs.exceptions.ClientError):
        ecs.list_clusters()
    wait_for(lambda: path.read_text() or None, timeout=5)
    (refused,) = lines(path)
    assert (refused["action"], refused["principal"], refused["status"]) == ("ListClusters", None, 400)
    assert refused["access_key_id"] == stranger.access_key_id


def test_cli_takes_a_request_log_and_named_keys(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    env_file = tmp_path / "emulator.env"
    scheduler = creds.new_credentials()
    env = {
        **os.environ,
        creds.PRINCIPALS_ENV: json.dumps({"scheduler": [scheduler.access_key_id, scheduler.secret_access_key]}),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ecs_emulator",
            "--port",
            "0",
            "--runner",
            "simulated",
            "--request-log",
            str(path),
            "--env-file",
            str(env_file),
            "--log-level",
            "WARNING",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "ECS emulator ready at ..." once the env file is written
        values = creds.read_env_file(env_file)
        ecs = boto3.client(
            "ecs",
            endpoint_url=values[creds.ENDPOINT_ENV],
            region_name="us-east-1",
            aws_access_key_id=scheduler.access_key_id,
            aws_secret_access_key=scheduler.secret_access_key,
        )
        ecs.list_clusters()
        (line,) = lines(path)
        assert (line["action"], line["principal"]) == ("ListClusters", "scheduler")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("raw", ['{"scheduler": "AKIA"}', "[]", "not json", '{"scheduler": ["AKIA", ""]}'])
def test_malformed_named_keys_are_refused_with_the_expected_form(raw: str) -> None:
    with pytest.raises(ValueError, match=creds.PRINCIPALS_ENV):
        creds.principals_from_environ({creds.PRINCIPALS_ENV: raw})


def test_tasks_never_inherit_the_named_keys() -> None:
    assert creds.PRINCIPALS_ENV in STRIPPED_ENV


def test_named_keys_cannot_take_the_reserved_names() -> None:
    ring = creds.KeyRing(creds.new_credentials())
    for name in (creds.OWN_PRINCIPAL, creds.TASK_PRINCIPAL):
        with pytest.raises(ValueError, match="name"):
            ring.add_principal(name, creds.new_credentials())
