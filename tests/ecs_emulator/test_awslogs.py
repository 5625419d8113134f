"""The awslogs log driver as ECS runs it: stream names, what a line becomes, a missing log group.

Sources: "ECS API model, LogConfiguration.options" is the awslogs documentation inside botocore's
ECS service model; "Stopped tasks error codes" is the AWS page of that name; "Docker awslogs
driver" is the Docker Engine's daemon/logger/awslogs, which the ECS agent runs on EC2 container
instances; "CloudWatch Logs API model, EventMessage" requires a message of at least one character.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecs_emulator.awslogs import EC2_MISSING_GROUP, MAX_EVENT_BYTES, events
from tests.helpers import awslogs, python_container, wait_for, wait_stopped

FARGATE: dict[str, Any] = {
    "requiresCompatibilities": ["FARGATE"],
    "networkMode": "awsvpc",
    "cpu": "256",
    "memory": "512",
    "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
}
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}}


def ec2_capacity(ecs: Any) -> None:
    """One container instance for EC2 tasks, where the emulator models EC2 capacity (RegisterContainerInstance)."""
    resources = [
        {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 8192},
    ]
    try:
        ecs.register_container_instance(cluster="c", totalResources=resources)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "UnknownOperationException":
            raise


def run(ecs: Any, container: dict[str, Any], *, fargate: bool = False) -> dict[str, Any]:
    """Run one task of one container to its end; the stopped task."""
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(family="fam", containerDefinitions=[container], **(FARGATE if fargate else {}))
    if fargate:
        launch: dict[str, Any] = {"launchType": "FARGATE", "networkConfiguration": NETWORK}
    else:
        ec2_capacity(ecs)
        launch = {"launchType": "EC2"}
    response = ecs.run_task(cluster="c", taskDefinition="fam", **launch)
    assert response["failures"] == []
    return wait_stopped(ecs, "c", response["tasks"][0]["taskArn"])


def messages(logs: Any, stream: str, group: str = "/ecs/test") -> list[str]:
    page = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    return [e["message"] for e in page["events"]]


class TestStreamName:
    def test_with_a_prefix_it_is_prefix_container_task(self, ecs: Any, logs: Any) -> None:
        """ECS API model, LogConfiguration.options: prefix-name/container-name/ecs-task-id."""
        task = run(ecs, python_container(code="print('hi')", logConfiguration=awslogs(prefix="svc")))
        task_id = task["taskArn"].rsplit("/", 1)[1]
        assert messages(logs, f"svc/main/{task_id}") == ["hi"]

    def test_without_a_prefix_it_is_the_container_id(self, ecs: Any, logs: Any) -> None:
        """ECS API model, LogConfiguration.options: without a prefix the stream is named after the container ID."""
        config = awslogs()
        del config["options"]["awslogs-stream-prefix"]
        task = run(ecs, python_container(code="print('hi')", logConfiguration=config))
        container_id = task["containers"][0]["runtimeId"]
        streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/ecs/test")["logStreams"]]
        assert streams == [container_id]
        assert messages(logs, container_id) == ["hi"]


class TestLines:
    def test_an_empty_line_is_no_event(self, ecs: Any, logs: Any) -> None:
        """Docker awslogs driver (nothing is sent for an empty line); CloudWatch Logs API model, EventMessage (min 1)."""
        code = "print('a'); print(); print(''); print(' '); print('b')"
        task = run(ecs, python_container(code=code, logConfiguration=awslogs()))
        assert messages(logs, f"ecs/main/{task['taskArn'].rsplit('/', 1)[1]}") == ["a", " ", "b"]

    def test_a_line_over_262118_bytes_is_split_between_characters(self, ecs: Any, logs: Any) -> None:
        """Docker awslogs driver: events of at most 262,144 - 26 bytes, cut on UTF-8 character boundaries."""
        code = "import sys; sys.stdout.write('é' * 150_000 + '\\n')"  # 300,000 bytes in UTF-8
        task = run(ecs, python_container(code=code, logConfiguration=awslogs()))
        stream = f"ecs/main/{task['taskArn'].rsplit('/', 1)[1]}"
        page = logs.get_log_events(logGroupName="/ecs/test", logStreamName=stream, startFromHead=True)["events"]
        assert [len(e["message"].encode()) for e in page] == [262_118, 300_000 - 262_118]
        assert "".join(e["message"] for e in page) == "é" * 150_000
        assert len({e["timestamp"] for e in page}) == 1

    @pytest.mark.parametrize(
        ("line", "sizes"),
        [
            pytest.param("", [], id="empty"),
            pytest.param("x" * MAX_EVENT_BYTES, [262_118], id="at-the-limit"),
            pytest.param("x" * (MAX_EVENT_BYTES + 1), [262_118, 1], id="one-byte-over"),
            pytest.param("x" + "€" * 87_373, [262_117, 3], id="never-inside-a-character"),
            pytest.param("y" * 600_000, [262_118, 262_118, 75_764], id="three-events"),
        ],
    )
    def test_events_of_a_line(self, line: str, sizes: list[int]) -> None:
        """Docker awslogs driver: maximumBytesPerEvent = 262,144 - 26 (perEventBytes)."""
        out = events(7, line)
        assert [len(m.encode()) for _, m in out] == sizes
        assert "".join(m for _, m in out) == line
        assert all(ts == 7 for ts, _ in out)


class TestMissingLogGroup:
    def absent(self, **options: str) -> dict[str, Any]:
        config = awslogs(group="/absent", create=False)
        config["options"].update(options)
        return python_container(code="print('lost')", logConfiguration=config)

    def test_on_fargate_the_task_fails_to_start(self, ecs: Any) -> None:
        """Stopped tasks error codes: ResourceInitializationError, from the Fargate agent (platform 1.4.0+)."""
        task = run(ecs, self.absent(), fargate=True)
        assert task["stopCode"] == "TaskFailedToStart"
        assert task["stoppedReason"].startswith("ResourceInitializationError: failed to validate logger args")
        assert "ResourceNotFoundException: The specified log group does not exist." in task["stoppedReason"]
        assert "exitCode" not in task["containers"][0]

    def test_on_ec2_in_blocking_mode_the_container_cannot_start(self, ecs: Any) -> None:
        """ECS API model, LogConfiguration.options (mode); Docker awslogs driver: the stream is created at start."""
        task = run(ecs, self.absent(mode="blocking"))
        assert task["stopCode"] == "TaskFailedToStart"
        assert task["stoppedReason"] == EC2_MISSING_GROUP
        assert task["stoppedReason"].startswith("CannotStartContainerError: Error response from daemon")
        assert "exitCode" not in task["containers"][0]

    @pytest.mark.parametrize("mode", [None, "non-blocking"], ids=["default-mode", "non-blocking"])
    def test_on_ec2_in_non_blocking_mode_the_task_runs_and_its_output_is_lost(
        self, ecs: Any, logs: Any, mode: str | None
    ) -> None:
        """ECS API model, LogConfiguration.options: non-blocking is the default mode (since June 25, 2025).

        The Docker driver retries creating the stream in the background; the emulator, stricter,
        never creates it, even once the group exists.
        """
        code = "import time; time.sleep(3); print('lost')"  # RUNNING outlasts a slow poll
        container = self.absent(**({"mode": mode} if mode else {}))
        container["command"] = [sys.executable, "-c", code]
        ecs.create_cluster(clusterName="c")
        ecs.register_task_definition(family="fam", containerDefinitions=[container])
        ec2_capacity(ecs)
        arn = ecs.run_task(cluster="c", taskDefinition="fam", launchType="EC2")["tasks"][0]["taskArn"]
        wait_for(lambda: ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING")
        logs.create_log_group(logGroupName="/absent")
        task = wait_stopped(ecs, "c", arn)
        assert task["stopCode"] == "EssentialContainerExited"
        assert task["containers"][0]["exitCode"] == 0
        assert logs.describe_log_streams(logGroupName="/absent")["logStreams"] == []

    def test_awslogs_create_group_creates_it(self, ecs: Any, logs: Any) -> None:
        """ECS API model, LogConfiguration.options: awslogs-create-group (default false) creates the group."""
        task = run(ecs, python_container(code="print('kept')", logConfiguration=awslogs(group="/new")))
        assert task["stopCode"] == "EssentialContainerExited"
        assert messages(logs, f"ecs/main/{task['taskArn'].rsplit('/', 1)[1]}", group="/new") == ["kept"]
