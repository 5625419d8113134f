"""Services the emulator does not implement (S3, STS) answer at the same endpoint, through moto."""

from __future__ import annotations

from ecs_emulator import Emulator
from tests.helpers import aws_client


def test_s3_round_trip_at_the_emulator_endpoint(emulator: Emulator) -> None:
    # The first request to moto imports its server and S3 backend: seconds of CPU, far more on a busy machine.
    s3 = aws_client("s3", emulator, read_timeout=90)
    s3.create_bucket(Bucket="airflow-logs")
    s3.put_object(Bucket="airflow-logs", Key="dag/task/1.log", Body=b"a line the task printed\n")
    body = s3.get_object(Bucket="airflow-logs", Key="dag/task/1.log")["Body"].read()
    assert body == b"a line the task printed\n"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="airflow-logs")["Contents"]]
    assert keys == ["dag/task/1.log"]


def test_sts_answers(emulator: Emulator) -> None:
    identity = aws_client("sts", emulator).get_caller_identity()
    assert identity["Account"].isdigit()


def test_ecs_still_served_by_the_emulator(emulator: Emulator) -> None:
    ecs = aws_client("ecs", emulator)
    ecs.create_cluster(clusterName="c")
    assert emulator.counters()["api"]["CreateCluster"]["calls"] == 1
