"""Clients this project did not write, driving the emulator over HTTP as their users call them.

The amazon provider's ``EcsRunTaskOperator`` (waiting, CloudWatch log fetching, reattach),
``EcsTaskStateSensor``, ``EcsHook`` and ``AwsTaskLogFetcher``, and botocore's ``tasks_running``
and ``tasks_stopped`` waiters. They reach the emulator through an Airflow connection
(``AIRFLOW_CONN_AWS_DEFAULT`` with ``endpoint_url`` in its extra), as a deployment would point
them at an endpoint. Operators and sensors are run with ``execute(context)``, as Airflow's task
runner calls them.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from datetime import timedelta
from typing import Any

import pytest

from ecs_emulator import Emulator
from tests.helpers import python_container, wait_for

# A test of the emulator, with the amazon provider's clients (the same release in both lock files);
# nothing of the executor runs: newest Airflow only.
pytestmark = pytest.mark.newest_only

CLUSTER = "real"
FAMILY = "real-task"
GROUP = "/ecs/real"
FARGATE: dict[str, Any] = {
    "requiresCompatibilities": ["FARGATE"],
    "networkMode": "awsvpc",
    "cpu": "256",
    "memory": "512",
    "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
}
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}}
WAIT = {"Delay": 1, "MaxAttempts": 30}


class _TaskInstance:
    """What the operators read from ``context["ti"]``: the task instance's identity and xcom_push."""

    def __init__(self, task_id: str) -> None:
        self.dag_id, self.task_id, self.run_id, self.map_index = "real_clients", task_id, "manual__1", -1
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def code(*lines: str, sleep: float = 0.0, exit_code: int = 0) -> list[str]:
    """A container command that prints ``lines``, sleeps, then exits with ``exit_code``."""
    program = f"import sys, time; [print(l, flush=True) for l in {list(lines)!r}]; time.sleep({sleep}); "
    return [sys.executable, "-c", program + f"sys.exit({exit_code})"]


def overrides(command: list[str]) -> dict[str, Any]:
    return {"containerOverrides": [{"name": "main", "command": command}]}


@pytest.fixture(autouse=True, scope="module")
def _airflow_models() -> None:
    """Map Airflow's ORM models up front, as a worker has: Airflow 3.1 maps them on the first connection
    lookup and warns while doing so, which under ``-W error`` would make the hook drop the connection."""
    from airflow.models import import_all_models
    from sqlalchemy.orm import configure_mappers

    with warnings.catch_warnings():  # Airflow's models use deprecated loaders; not ours to fix
        warnings.simplefilter("ignore")
        import_all_models()
        configure_mappers()


@pytest.fixture
def aws(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The aws_default connection pointing at the emulator, a cluster and a Fargate task definition."""
    extra = {"endpoint_url": emulator.endpoint_url, "region_name": "us-east-1"}
    connection = {
        "conn_type": "aws",
        "login": emulator.access_key_id,
        "password": emulator.secret_access_key,
        "extra": extra,
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    from airflow.providers.amazon.aws.hooks.ecs import EcsHook

    ecs = EcsHook(aws_conn_id="aws_default").conn
    ecs.create_cluster(clusterName=CLUSTER)
    log_configuration = {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": GROUP,
            "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "ecs",
            "awslogs-create-group": "true",
        },
    }
    ecs.register_task_definition(
        family=FAMILY, containerDefinitions=[python_container(logConfiguration=log_configuration)], **FARGATE
    )
    return ecs


def operator(task_id: str, command: list[str], **kwargs: Any) -> Any:
    from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

    options: dict[str, Any] = {
        "task_id": task_id,
        "cluster": CLUSTER,
        "task_definition": FAMILY,
        "overrides": overrides(command),
        "launch_type": "FARGATE",
        "network_configuration": NETWORK,
        "awslogs_group": GROUP,
        "awslogs_stream_prefix": "ecs",
        # Named, so the operator does not sleep 10 s to read it from DescribeTasks.
        "container_name": "main",
        "awslogs_fetch_interval": timedelta(seconds=0.2),
        "waiter_delay": 1,
        "waiter_max_attempts": 60,
        **kwargs,
    }
    return EcsRunTaskOperator(**options)


class TestEcsRunTaskOperator:
    def test_waits_for_the_task_and_fetches_its_log_lines(self, aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
        ti = _TaskInstance("ok")
        op = operator("ok", code("first line", "last line", sleep=0.5), do_xcom_push=True)
        returned = op.execute({"ti": ti})
        assert returned == "last line"  # the last CloudWatch line, what the operator pushes to XCom
        assert ti.xcom["ecs_task_arn"] == op.arn
        # The fetcher forwards each CloudWatch event to the task's log as "[<event time>] <message>".
        out = capsys.readouterr().out
        assert "] first line" in out and "] last line" in out
        assert out.index("] first line") < out.index("] last line")
        task = aws.describe_tasks(cluster=CLUSTER, tasks=[op.arn])["tasks"][0]
        assert task["lastStatus"] == "STOPPED" and task["containers"][0]["exitCode"] == 0

    def test_a_non_zero_exit_fails_with_the_last_log_lines(self, aws: Any) -> None:
        from airflow.exceptions import AirflowException

        op = operator("fails", code("working", "boom: it broke", exit_code=3), number_logs_exception=2)
        with pytest.raises(AirflowException) as exc:
            op.execute({"ti": _TaskInstance("fails")})
        assert "This task is not in success state" in str(exc.value)
        assert str(exc.value).endswith("working\nboom: it broke")
        task = aws.describe_tasks(cluster=CLUSTER, tasks=[op.arn])["tasks"][0]
        assert task["containers"][0]["exitCode"] == 3

    def test_a_task_that_fails_to_start_says_why(self, aws: Any) -> None:
        from airflow.providers.amazon.aws.exceptions import EcsTaskFailToStart

        container = python_container(
            logConfiguration={
                "logDriver": "awslogs",
                "options": {"awslogs-group": "/absent", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "x"},
            }
        )
        aws.register_task_definition(family="no-log-group", containerDefinitions=[container], **FARGATE)
        op = operator("no_log_group", code("never"), task_definition="no-log-group", awslogs_group=None)
        with pytest.raises(EcsTaskFailToStart, match="ResourceInitializationError"):
            op.execute({"ti": _TaskInstance("no_log_group")})

    def test_reattach_finds_the_task_still_running(self, aws: Any) -> None:
        """A second try of the same task instance (a restarted worker) attaches to the running task."""
        command = code(
            "reattached", sleep=20
        )  # still running when the second operator, slower to start on a busy machine, looks
        first = operator("long", command, reattach=True, wait_for_completion=False)
        first.execute({"ti": _TaskInstance("long")})
        wait_for(lambda: aws.describe_tasks(cluster=CLUSTER, tasks=[first.arn])["tasks"][0]["lastStatus"] == "RUNNING")
        second = operator("long", command, reattach=True, do_xcom_push=True)
        assert second.execute({"ti": _TaskInstance("long")}) == "reattached"
        assert second.arn == first.arn
        started = aws.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]
        assert started == [first.arn]  # one ECS task for both tries


class TestEcsTaskStateSensorAndHook:
    def test_sensor_waits_for_running_then_fails_on_stopped(self, aws: Any) -> None:
        from airflow.exceptions import AirflowException
        from airflow.providers.amazon.aws.hooks.ecs import EcsHook, EcsTaskStates
        from airflow.providers.amazon.aws.sensors.ecs import EcsTaskStateSensor

        response = aws.run_task(
            cluster=CLUSTER,
            taskDefinition=FAMILY,
            launchType="FARGATE",
            networkConfiguration=NETWORK,
            overrides=overrides(code(sleep=60)),
        )
        arn = response["tasks"][0]["taskArn"]
        sensor = EcsTaskStateSensor(task_id="sense", cluster=CLUSTER, task=arn, poke_interval=0.2, timeout=30)
        sensor.execute({})
        hook = EcsHook(aws_conn_id="aws_default")
        assert hook.get_task_state(cluster=CLUSTER, task=arn) == EcsTaskStates.RUNNING
        assert hook.get_cluster_state(cluster_name=CLUSTER) == "ACTIVE"
        assert hook.get_task_definition_state(task_definition=FAMILY) == "ACTIVE"
        aws.stop_task(cluster=CLUSTER, task=arn, reason="test done")
        aws.get_waiter("tasks_stopped").wait(cluster=CLUSTER, tasks=[arn], WaiterConfig=WAIT)
        with pytest.raises(AirflowException, match="STOPPED"):
            EcsTaskStateSensor(task_id="too_late", cluster=CLUSTER, task=arn, poke_interval=0.2, timeout=30).execute({})


class TestWaitersAndLogFetcher:
    def test_tasks_running_then_tasks_stopped(self, aws: Any) -> None:
        arn = aws.run_task(
            cluster=CLUSTER,
            taskDefinition=FAMILY,
            launchType="FARGATE",
            networkConfiguration=NETWORK,
            overrides=overrides(code("one", "two", "three", sleep=4)),
        )["tasks"][0]["taskArn"]
        aws.get_waiter("tasks_running").wait(cluster=CLUSTER, tasks=[arn], WaiterConfig=WAIT)
        assert aws.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING"
        aws.get_waiter("tasks_stopped").wait(cluster=CLUSTER, tasks=[arn], WaiterConfig=WAIT)
        task = aws.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
        assert (task["lastStatus"], task["stopCode"], task["containers"][0]["exitCode"]) == (
            "STOPPED",
            "EssentialContainerExited",
            0,
        )

        from airflow.providers.amazon.aws.utils.task_log_fetcher import AwsTaskLogFetcher

        seen: list[str] = []
        sink = logging.getLogger("tests.real_clients.fetcher")
        sink.addHandler(handler := _ListHandler(seen))
        try:
            fetcher = AwsTaskLogFetcher(
                log_group=GROUP,
                log_stream_name=f"ecs/main/{arn.rsplit('/', 1)[1]}",
                fetch_interval=timedelta(seconds=0.1),
                logger=sink,
                aws_conn_id="aws_default",
            )
            fetcher.start()
            wait_for(lambda: len(seen) == 3, timeout=60)  # its first fetch builds Airflow's hook and a client
            fetcher.stop()
            fetcher.join()
        finally:
            sink.removeHandler(handler)
        assert [line.split("] ", 1)[1] for line in seen] == ["one", "two", "three"]
        assert fetcher.get_last_log_messages(2) == ["two", "three"]

    def test_tasks_running_fails_on_a_task_that_stopped(self, aws: Any) -> None:
        from botocore.exceptions import WaiterError

        arn = aws.run_task(
            cluster=CLUSTER,
            taskDefinition=FAMILY,
            launchType="FARGATE",
            networkConfiguration=NETWORK,
            overrides=overrides(code(exit_code=1)),
        )["tasks"][0]["taskArn"]
        aws.get_waiter("tasks_stopped").wait(cluster=CLUSTER, tasks=[arn], WaiterConfig=WAIT)
        with pytest.raises(WaiterError, match="terminal failure state"):
            aws.get_waiter("tasks_running").wait(cluster=CLUSTER, tasks=[arn], WaiterConfig=WAIT)


class _ListHandler(logging.Handler):
    def __init__(self, out: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        self.out.append(record.getMessage())
