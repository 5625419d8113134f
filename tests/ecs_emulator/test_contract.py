"""The emulator's contract, through boto3 over HTTP, as a client of ECS would see it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from ecs_emulator import Emulator
from tests.helpers import aws_client, awslogs, python_container, register_instance, wait_for, wait_stopped

ORDER = [
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
]
FARGATE_DEF: dict[str, Any] = {
    "requiresCompatibilities": ["FARGATE"],
    "networkMode": "awsvpc",
    "cpu": "256",
    "memory": "512",
    "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
}
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1", "subnet-2"], "assignPublicIp": "DISABLED"}}


def setup(ecs: Any, *containers: dict[str, Any], family: str = "fam", **extra: Any) -> None:
    ecs.create_cluster(clusterName="c")
    register_instance(ecs, "c")
    ecs.register_task_definition(family=family, containerDefinitions=list(containers), **extra)


def run(ecs: Any, **kwargs: Any) -> str:
    response = ecs.run_task(cluster="c", taskDefinition=kwargs.pop("taskDefinition", "fam"), **kwargs)
    assert response["failures"] == []
    return str(response["tasks"][0]["taskArn"])


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _lists_tasks(ecs: Any, *, unless: str) -> bool:
    """Whether ListTasks answers; False if it is refused with the error ``unless`` (a fault's window)."""
    try:
        ecs.list_tasks(cluster="c")
    except ClientError as e:
        if e.response["Error"]["Code"] != unless:
            raise
        return False
    return True


class TestLifecycle:
    def test_statuses_in_order_and_timestamps_monotonic(self, ecs: Any) -> None:
        setup(ecs, python_container(code="import time; time.sleep(2)"))  # RUNNING outlasts a slow poll
        arn = run(ecs)
        seen: list[str] = []
        versions: list[int] = []

        def observe() -> dict[str, Any] | None:
            task = ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
            if not seen or seen[-1] != task["lastStatus"]:
                seen.append(task["lastStatus"])
                versions.append(task["version"])
            return task if task["lastStatus"] == "STOPPED" else None

        task = wait_for(observe, interval=0.005)
        assert [ORDER.index(s) for s in seen] == sorted(ORDER.index(s) for s in seen)
        assert "RUNNING" in seen
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
        stamps = [
            task[k]
            for k in (
                "createdAt",
                "pullStartedAt",
                "pullStoppedAt",
                "startedAt",
                "stoppingAt",
                "executionStoppedAt",
                "stoppedAt",
            )
        ]
        assert stamps == sorted(stamps)
        assert task["stopCode"] == "EssentialContainerExited"
        assert task["stoppedReason"] == "Essential container in task exited"
        assert task["containers"][0]["exitCode"] == 0
        # A bridge-mode EC2 task has no ENI: no PROVISIONING or DEPROVISIONING (see TestLifecycleOrder).
        assert not {"PROVISIONING", "DEPROVISIONING"} & set(seen)
        assert task["version"] >= 6

    def test_non_zero_exit_code_reported(self, ecs: Any) -> None:
        setup(ecs, python_container(code="import sys; sys.exit(3)"))
        task = wait_stopped(ecs, "c", run(ecs))
        assert task["containers"][0]["exitCode"] == 3

    def test_override_command_and_environment(self, ecs: Any, logs: Any) -> None:
        setup(
            ecs,
            python_container(
                code="print('from definition')",
                environment=[{"name": "A", "value": "def"}],
                logConfiguration=awslogs(),
            ),
        )
        import sys

        code = "import os; print('A=' + os.environ['A'] + ' B=' + os.environ['B'])"
        arn = run(
            ecs,
            overrides={
                "containerOverrides": [
                    {
                        "name": "main",
                        "command": [sys.executable, "-c", code],
                        "environment": [{"name": "B", "value": "ovr"}],
                    }
                ]
            },
        )
        wait_stopped(ecs, "c", arn)
        events = logs.get_log_events(
            logGroupName="/ecs/test", logStreamName=f"ecs/main/{arn.split('/')[-1]}", startFromHead=True
        )["events"]
        assert [e["message"] for e in events] == ["A=def B=ovr"]

    def test_non_essential_container_exit_keeps_task_running(self, ecs: Any) -> None:
        setup(
            ecs,
            python_container("main", code="import time; time.sleep(5)"),  # outlasts a slow poll of the sidecar
            python_container("sidecar", code="pass", essential=False),
        )
        arn = run(ecs)

        def sidecar_done() -> dict[str, Any] | None:
            task = ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
            side = next(c for c in task["containers"] if c["name"] == "sidecar")
            return task if side.get("exitCode") == 0 else None

        task = wait_for(sidecar_done)
        assert task["desiredStatus"] == "RUNNING"
        final = wait_stopped(ecs, "c", arn, timeout=60)
        assert final["stopCode"] == "EssentialContainerExited"

    def test_essential_exit_stops_other_containers(self, ecs: Any) -> None:
        setup(
            ecs,
            python_container("main", code="pass"),
            python_container("sidecar", code="import time; time.sleep(60)", essential=False),
        )
        task = wait_stopped(ecs, "c", run(ecs))
        side = next(c for c in task["containers"] if c["name"] == "sidecar")
        assert side["exitCode"] == 143  # SIGTERM

    def test_missing_executable_fails_to_start(self, ecs: Any) -> None:
        setup(ecs, {"name": "main", "image": "x", "memory": 128, "command": ["/no/such/program"]})
        task = wait_stopped(ecs, "c", run(ecs))
        assert task["stopCode"] == "TaskFailedToStart"
        assert task["containers"][0]["reason"].startswith("CannotStartContainerError")
        assert "exitCode" not in task["containers"][0]


class TestIdempotency:
    def test_same_token_same_request_returns_original(self, ecs: Any) -> None:
        setup(ecs, python_container(code="import time; time.sleep(2)"))
        first = run(ecs, clientToken="token-1")
        second = run(ecs, clientToken="token-1")
        assert first == second
        assert ecs.list_tasks(cluster="c")["taskArns"] == [first]

    def test_same_token_different_request_conflicts(self, ecs: Any) -> None:
        setup(ecs, python_container(code="import time; time.sleep(2)"))
        first = run(ecs, clientToken="token-2")
        with pytest.raises(ClientError) as exc:
            run(ecs, clientToken="token-2", startedBy="someone-else")
        assert error_code(exc) == "ConflictException"
        assert exc.value.response["resourceIds"] == [first]

    def test_lost_response_then_retry_starts_one_task(self, emulator: Emulator, ecs: Any) -> None:
        setup(ecs, python_container(code="import time; time.sleep(2)"))
        emulator.inject("lost_response", api="RunTask")
        impatient = aws_client("ecs", emulator, read_timeout=1)
        with pytest.raises((ReadTimeoutError, ConnectionClosedError)):
            impatient.run_task(cluster="c", taskDefinition="fam", clientToken="lost-1")
        arn = run(ecs, clientToken="lost-1")
        assert ecs.list_tasks(cluster="c")["taskArns"] == [arn]
        assert emulator.counters()["ecs"]["RunTask.idempotent_replay"] == 1

    def test_botocore_retry_reuses_its_token(self, emulator: Emulator) -> None:
        """botocore fills clientToken once per call, so its own retries stay idempotent."""
        ecs = aws_client("ecs", emulator, attempts=3, read_timeout=1)
        setup(ecs, python_container(code="import time; time.sleep(2)"))
        emulator.inject("lost_response", api="RunTask")
        arn = run(ecs)
        assert ecs.list_tasks(cluster="c")["taskArns"] == [arn]


class TestThrottlingAndCapacity:
    def test_throttling_bucket(self) -> None:
        from ecs_emulator.profile import Bucket, Profile

        profile = Profile(name="tight", throttling={"run": Bucket(capacity=2, rate=0.01, apis=["ListTasks"])})
        with Emulator(profile, validate_responses=True) as em:
            ecs = aws_client("ecs", em)
            ecs.create_cluster(clusterName="c")
            ecs.list_tasks(cluster="c")
            ecs.list_tasks(cluster="c")
            with pytest.raises(ClientError) as exc:
                ecs.list_tasks(cluster="c")
            assert error_code(exc) == "ThrottlingException"
            assert exc.value.response["Error"]["Message"] == "Rate exceeded"
            assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            assert em.counters()["api"]["ListTasks"]["throttled"] == 1

    def test_fargate_launch_bucket_counts_tasks(self) -> None:
        from ecs_emulator.profile import Bucket, Profile

        profile = Profile(name="launch", fargate_launch=Bucket(capacity=3, rate=0.1), runner="simulated")
        with Emulator(profile) as em:
            ecs = aws_client("ecs", em)
            setup(ecs, python_container(), **FARGATE_DEF, family="fg")
            ecs.run_task(cluster="c", taskDefinition="fg", launchType="FARGATE", networkConfiguration=NETWORK, count=3)
            with pytest.raises(ClientError) as exc:
                ecs.run_task(cluster="c", taskDefinition="fg", launchType="FARGATE", networkConfiguration=NETWORK)
            assert error_code(exc) == "ThrottlingException"

    def test_capacity_shortfall_returns_failures(self, emulator: Emulator, ecs: Any) -> None:
        setup(ecs, python_container(code="import time; time.sleep(3)"), **FARGATE_DEF)
        emulator.set_capacity(2)
        response = ecs.run_task(
            cluster="c", taskDefinition="fam", launchType="FARGATE", networkConfiguration=NETWORK, count=3
        )
        assert len(response["tasks"]) == 2
        assert [f["reason"] for f in response["failures"]] == [
            "Capacity is unavailable at this time. Please try again later or in a different availability zone"
        ]

    def test_ec2_capacity_reason(self, emulator: Emulator, ecs: Any) -> None:
        setup(ecs, python_container(code="import time; time.sleep(3)"))
        emulator.set_capacity(0)
        response = ecs.run_task(cluster="c", taskDefinition="fam")
        assert response["tasks"] == []
        assert response["failures"][0]["reason"] == "RESOURCE:MEMORY"
        assert ":container-instance/c/" in response["failures"][0]["arn"]


class TestRetention:
    def test_stopped_task_becomes_missing(self) -> None:
        # Retained long enough for a wait on a loaded machine to see it STOPPED first.
        with Emulator("fast", stopped_task_retention=3, validate_responses=True) as em:
            ecs = aws_client("ecs", em)
            setup(ecs, python_container())
            arn = run(ecs)
            wait_stopped(ecs, "c", arn)

            def missing() -> list[dict[str, Any]]:
                return list(ecs.describe_tasks(cluster="c", tasks=[arn])["failures"])

            assert wait_for(missing, timeout=20) == [{"arn": arn, "reason": "MISSING"}]


class TestStopTask:
    def test_sigterm_then_exit(self, ecs: Any) -> None:
        setup(ecs, python_container(code="import time; print('up', flush=True); time.sleep(60)"))
        arn = run(ecs)
        wait_for(lambda: ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING")
        stopped = ecs.stop_task(cluster="c", task=arn, reason="no longer needed")["task"]
        assert stopped["desiredStatus"] == "STOPPED"
        task = wait_stopped(ecs, "c", arn)
        assert task["stopCode"] == "UserInitiated"
        assert task["stoppedReason"] == "no longer needed"
        assert task["containers"][0]["exitCode"] == 143

    def test_sigkill_after_stop_timeout(self, emulator: Emulator, ecs: Any) -> None:
        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
        setup(ecs, python_container(code=code, stopTimeout=1))
        arn = run(ecs)

        def handler_installed() -> bool:  # it prints "up" once SIGTERM is ignored
            row = next(t for t in emulator.tasks() if t["taskArn"] == arn)
            return "up" in row["containers"][0]["tail"]

        wait_for(handler_installed)
        ecs.stop_task(cluster="c", task=arn)
        task = wait_stopped(ecs, "c", arn)
        assert task["containers"][0]["exitCode"] == 137
        assert (task["executionStoppedAt"] - task["stoppingAt"]).total_seconds() >= 0.9

    def test_stop_before_start(self) -> None:
        # AWS-like dwell times (scaled): a Fargate task provisions and pends for over a second, so the
        # stop lands before its container starts (on the fast profile a loaded machine let it start).
        with Emulator("aws-lifecycle", time_scale=0.3, validate_responses=True) as em:
            ecs = aws_client("ecs", em)
            setup(ecs, python_container(), **FARGATE_DEF)
            arn = run(ecs, launchType="FARGATE", networkConfiguration=NETWORK)
            ecs.stop_task(cluster="c", task=arn)
            task = wait_stopped(ecs, "c", arn, timeout=60)
        assert task["stopCode"] == "UserInitiated"
        assert "exitCode" not in task["containers"][0]

    def test_unknown_task(self, ecs: Any) -> None:
        ecs.create_cluster(clusterName="c")
        with pytest.raises(ClientError) as exc:
            ecs.stop_task(cluster="c", task="0" * 32)
        assert error_code(exc) == "InvalidParameterException"


class TestLogs:
    def test_lines_readable_while_running(self, ecs: Any, logs: Any) -> None:
        code = "import time; print('first line', flush=True); time.sleep(30)"
        setup(ecs, python_container(code=code, logConfiguration=awslogs()))
        arn = run(ecs)
        stream = f"ecs/main/{arn.split('/')[-1]}"

        def lines() -> list[str]:
            try:
                events = logs.get_log_events(logGroupName="/ecs/test", logStreamName=stream)["events"]
            except ClientError:
                return []
            return [e["message"] for e in events]

        assert wait_for(lines) == ["first line"]
        assert ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING"
        found = logs.filter_log_events(logGroupName="/ecs/test", filterPattern="first")["events"]
        assert [e["logStreamName"] for e in found] == [stream]
        ecs.stop_task(cluster="c", task=arn)


class TestFaults:
    def setup_task(self, ecs: Any, code: str = "print('ok')", **extra: Any) -> None:
        setup(ecs, python_container(code=code), **extra)

    def test_server_error(self, emulator: Emulator, ecs: Any) -> None:
        self.setup_task(ecs)
        emulator.inject("server_error", api="RunTask")
        with pytest.raises(ClientError) as exc:
            run(ecs)
        assert error_code(exc) == "ServerException"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert ecs.list_tasks(cluster="c")["taskArns"] == []

    def test_connection_reset(self, emulator: Emulator, ecs: Any) -> None:
        self.setup_task(ecs)
        emulator.inject("connection_reset", api="DescribeTasks")
        with pytest.raises(ConnectionClosedError):
            ecs.describe_tasks(cluster="c", tasks=["x"])
        assert ecs.describe_tasks(cluster="c", tasks=["x"])["failures"][0]["reason"] == "MISSING"

    def test_injected_throttle(self, emulator: Emulator, ecs: Any) -> None:
        self.setup_task(ecs)
        emulator.inject("throttle", api="RunTask", count=2)
        for _ in range(2):
            with pytest.raises(ClientError) as exc:
                run(ecs)
            assert error_code(exc) == "ThrottlingException"
        run(ecs)

    def test_throttle_storm(self, emulator: Emulator, ecs: Any) -> None:
        self.setup_task(ecs)
        emulator.inject("throttle_storm", seconds=5)  # a few seconds: the next call may come a second later
        with pytest.raises(ClientError) as exc:
            ecs.list_tasks(cluster="c")
        assert error_code(exc) == "ThrottlingException"
        assert wait_for(lambda: _lists_tasks(ecs, unless="ThrottlingException"), timeout=20, interval=0.5)

    @pytest.mark.parametrize("reason", ["CannotPullContainerError", "ResourceInitializationError"])
    def test_fail_to_start(self, emulator: Emulator, ecs: Any, reason: str) -> None:
        self.setup_task(ecs)
        emulator.inject("fail_to_start", reason=reason)
        task = wait_stopped(ecs, "c", run(ecs))
        assert task["stopCode"] == "TaskFailedToStart"
        assert task["stoppedReason"].startswith(reason)
        assert "startedAt" not in task
        assert "exitCode" not in task["containers"][0]

    def test_spot_interruption(self, emulator: Emulator, ecs: Any) -> None:
        ecs.create_cluster(
            clusterName="c",
            capacityProviders=["FARGATE", "FARGATE_SPOT"],
            defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
        )
        ecs.register_task_definition(
            family="fam",
            containerDefinitions=[python_container(code="import time; time.sleep(60)")],
            **FARGATE_DEF,
        )
        arn = run(ecs, networkConfiguration=NETWORK)
        wait_for(lambda: ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING")
        emulator.inject("spot_interruption", task_arn=arn)
        task = wait_stopped(ecs, "c", arn)
        assert task["capacityProviderName"] == "FARGATE_SPOT"
        assert task["stopCode"] == "SpotInterruption"
        assert task["containers"][0]["exitCode"] == 143

    def test_injected_oom(self, emulator: Emulator, ecs: Any) -> None:
        self.setup_task(ecs, code="import time; time.sleep(60)")
        arn = run(ecs)
        wait_for(lambda: ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING")
        emulator.inject("oom", task_arn=arn)
        task = wait_stopped(ecs, "c", arn)
        assert task["containers"][0]["exitCode"] == 137
        assert task["containers"][0]["reason"] == "OutOfMemoryError: Container killed due to memory usage"

    def test_memory_limit_enforced(self, ecs: Any) -> None:
        code = "import time; x = bytearray(300 * 1024 * 1024); time.sleep(30)"
        setup(ecs, python_container(code=code, memory=64))
        task = wait_stopped(ecs, "c", run(ecs))
        assert task["containers"][0]["exitCode"] == 137
        assert task["containers"][0]["reason"].startswith("OutOfMemoryError")

    def test_memory_of_a_child_in_its_own_session_counts(self, ecs: Any) -> None:
        # Airflow's supervisor forks the task into a new session; a cgroup still holds it.
        code = (
            "import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid(); x = b'x' * (300 * 1024 * 1024); time.sleep(30)\n"
            "else:\n"
            "    os.wait()\n"
        )
        setup(ecs, python_container(code=code, memory=64))
        started = time.monotonic()
        task = wait_stopped(ecs, "c", run(ecs))
        assert task["containers"][0]["exitCode"] == 137
        assert task["containers"][0]["reason"].startswith("OutOfMemoryError")
        assert time.monotonic() - started < 20  # killed for its memory, not at the end of its sleep

    def test_describe_eventual_consistency(self, emulator: Emulator, ecs: Any) -> None:
        self.setup_task(ecs, code="import time; time.sleep(2)")
        # Windows of a few seconds: on a loaded machine the next call can come a second later.
        emulator.inject("describe_missing", seconds=5)
        arn = run(ecs)
        assert ecs.describe_tasks(cluster="c", tasks=[arn])["failures"] == [{"arn": arn, "reason": "MISSING"}]
        assert wait_for(lambda: ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"], timeout=20)

    def test_expired_credentials(self, emulator: Emulator, ecs: Any) -> None:
        self.setup_task(ecs)
        emulator.inject("expired_credentials", seconds=5)
        with pytest.raises(ClientError) as exc:
            ecs.list_tasks(cluster="c")
        assert error_code(exc) == "ExpiredTokenException"
        assert wait_for(lambda: _lists_tasks(ecs, unless="ExpiredTokenException"), timeout=20, interval=0.5)

    def test_counters_report_faults(self, emulator: Emulator, ecs: Any) -> None:
        self.setup_task(ecs)
        emulator.inject("server_error", api="ListTasks")
        with pytest.raises(ClientError):
            ecs.list_tasks(cluster="c")
        counters = emulator.counters()
        assert counters["faults"] == {"server_error": 1}
        assert counters["api"]["ListTasks"] == {"calls": 1, "server_error": 1}


class TestRunTaskRules:
    def test_fargate_with_capacity_provider_default(self, ecs: Any) -> None:
        ecs.create_cluster(
            clusterName="c",
            capacityProviders=["FARGATE"],
            defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
        )
        ecs.register_task_definition(family="fam", containerDefinitions=[python_container()], **FARGATE_DEF)
        task = ecs.run_task(cluster="c", taskDefinition="fam", networkConfiguration=NETWORK)["tasks"][0]
        assert task["launchType"] == "FARGATE"
        assert task["capacityProviderName"] == "FARGATE"
        assert task["platformVersion"] == "1.4.0"
        assert task["attachments"][0]["type"] == "ElasticNetworkInterface"

    @pytest.mark.parametrize(
        ("kwargs", "code", "message"),
        [
            pytest.param(
                {"launchType": "FARGATE", "capacityProviderStrategy": [{"capacityProvider": "FARGATE"}]},
                "InvalidParameterException",
                "Specifying both a launch type",
                id="launch-type-and-strategy",
            ),
            pytest.param(
                {"launchType": "FARGATE", "networkConfiguration": None},
                "InvalidParameterException",
                "Network Configuration must be provided",
                id="awsvpc-needs-network",
            ),
            pytest.param(
                {"launchType": "FARGATE", "platformVersion": "9.9.9"},
                "PlatformUnknownException",
                "platform does not exist",
                id="unknown-platform",
            ),
            pytest.param(
                {
                    "launchType": "FARGATE",
                    "overrides": {
                        "containerOverrides": [{"name": "main", "environment": [{"name": "BIG", "value": "x" * 8200}]}]
                    },
                },
                "InvalidParameterException",
                "Container Overrides length must be at most 8192",
                id="overrides-8192",
            ),
            pytest.param(
                {"launchType": "FARGATE", "overrides": {"containerOverrides": [{"name": "nope"}]}},
                "InvalidParameterException",
                "not a container",
                id="unknown-container",
            ),
            pytest.param(
                {"launchType": "FARGATE", "tags": [{"key": "aws:x", "value": "1"}]},
                "InvalidParameterException",
                "reserved prefix",
                id="reserved-tag",
            ),
            pytest.param(
                {"launchType": "FARGATE", "tags": [{"key": f"k{i}", "value": "v"} for i in range(51)]},
                "InvalidParameterException",
                "more than 50",
                id="too-many-tags",
            ),
            pytest.param(
                {"launchType": "FARGATE", "count": 11},
                "InvalidParameterException",
                "between 1 and 10",
                id="count-11",
            ),
            pytest.param(
                {"launchType": "FARGATE", "taskDefinition": "absent"},
                "ClientException",
                "Unable to describe task definition",
                id="unknown-definition",
            ),
            pytest.param(
                {"launchType": "FARGATE", "cluster": "absent"},
                "ClusterNotFoundException",
                "Cluster not found",
                id="unknown-cluster",
            ),
            pytest.param(
                {"launchType": "FARGATE", "overrides": {"cpu": "256", "memory": "4096"}},
                "ClientException",
                "No Fargate configuration",
                id="bad-fargate-size",
            ),
        ],
    )
    def test_rejections(self, ecs: Any, kwargs: dict[str, Any], code: str, message: str) -> None:
        setup(ecs, python_container(), **FARGATE_DEF)
        request: dict[str, Any] = {
            "cluster": "c",
            "taskDefinition": "fam",
            "networkConfiguration": NETWORK,
            **kwargs,
        }
        request = {k: v for k, v in request.items() if v is not None}
        with pytest.raises(ClientError) as exc:
            ecs.run_task(**request)
        assert error_code(exc) == code
        assert message in exc.value.response["Error"]["Message"]

    def test_tags_started_by_group_and_propagation(self, ecs: Any) -> None:
        setup(ecs, python_container(code="import time; time.sleep(2)"), tags=[{"key": "team", "value": "data"}])
        arn = run(
            ecs,
            startedBy="airflow",
            group="g1",
            tags=[{"key": "dag_id", "value": "d"}],
            propagateTags="TASK_DEFINITION",
        )
        task = ecs.describe_tasks(cluster="c", tasks=[arn], include=["TAGS"])["tasks"][0]
        assert task["startedBy"] == "airflow" and task["group"] == "g1"
        assert {t["key"] for t in task["tags"]} == {"dag_id", "team"}
        assert ecs.list_tasks(cluster="c", startedBy="airflow")["taskArns"] == [arn]
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "extra", "value": "1"}])
        ecs.untag_resource(resourceArn=arn, tagKeys=["team"])
        keys = {t["key"] for t in ecs.list_tags_for_resource(resourceArn=arn)["tags"]}
        assert keys == {"dag_id", "extra"}


class TestDefinitionsAndClusters:
    def test_task_definition_revisions(self, ecs: Any) -> None:
        ecs.register_task_definition(family="f", containerDefinitions=[python_container()])
        ecs.register_task_definition(family="f", containerDefinitions=[python_container()])
        assert ecs.describe_task_definition(taskDefinition="f")["taskDefinition"]["revision"] == 2
        ecs.deregister_task_definition(taskDefinition="f:2")
        assert ecs.describe_task_definition(taskDefinition="f")["taskDefinition"]["revision"] == 1
        assert ecs.describe_task_definition(taskDefinition="f:2")["taskDefinition"]["status"] == "INACTIVE"
        assert [a.rsplit("/", 1)[-1] for a in ecs.list_task_definitions()["taskDefinitionArns"]] == ["f:1"]

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            pytest.param(
                {
                    "requiresCompatibilities": ["FARGATE"],
                    "networkMode": "bridge",
                    "cpu": "256",
                    "memory": "512",
                },
                "Fargate only supports network mode",
                id="fargate-bridge",
            ),
            pytest.param(
                {"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "memory": "512"},
                "'cpu' be defined",
                id="fargate-no-cpu",
            ),
            pytest.param(
                {
                    "requiresCompatibilities": ["FARGATE"],
                    "networkMode": "awsvpc",
                    "cpu": "256",
                    "memory": "8192",
                },
                "No Fargate configuration",
                id="fargate-size",
            ),
        ],
    )
    def test_definition_rejections(self, ecs: Any, extra: dict[str, Any], message: str) -> None:
        with pytest.raises(ClientError) as exc:
            ecs.register_task_definition(family="f", containerDefinitions=[python_container()], **extra)
        assert error_code(exc) == "ClientException"
        assert message in exc.value.response["Error"]["Message"]

    def test_container_needs_memory_on_ec2(self, ecs: Any) -> None:
        with pytest.raises(ClientError) as exc:
            ecs.register_task_definition(family="f", containerDefinitions=[{"name": "m", "image": "i"}])
        assert "memory" in exc.value.response["Error"]["Message"]

    def test_clusters(self, ecs: Any) -> None:
        ecs.create_cluster(clusterName="c")
        described = ecs.describe_clusters(clusters=["c", "absent"])
        assert described["clusters"][0]["status"] == "ACTIVE"
        assert described["failures"][0]["reason"] == "MISSING"
        ecs.delete_cluster(cluster="c")
        assert ecs.describe_clusters(clusters=["c"])["clusters"][0]["status"] == "INACTIVE"
        with pytest.raises(ClientError) as exc:
            ecs.list_tasks(cluster="c")
        assert error_code(exc) == "ClusterNotFoundException"


class TestSimulatedRunner:
    def test_duration_and_exit_code_from_environment(self) -> None:
        with Emulator("fast", runner="simulated", validate_responses=True) as em:
            ecs = aws_client("ecs", em)
            setup(
                ecs,
                python_container(
                    environment=[
                        {"name": "ECS_EMULATOR_SIM_DURATION", "value": "0.1"},
                        {"name": "ECS_EMULATOR_SIM_EXIT_CODE", "value": "7"},
                    ]
                ),
            )
            task = wait_stopped(ecs, "c", run(ecs))
            assert task["containers"][0]["exitCode"] == 7

    def test_stop_simulated(self) -> None:
        with Emulator("fast", runner="simulated") as em:
            ecs = aws_client("ecs", em)
            setup(ecs, python_container(environment=[{"name": "ECS_EMULATOR_SIM_DURATION", "value": "60"}]))
            arn = run(ecs)
            wait_for(lambda: ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING")
            ecs.stop_task(cluster="c", task=arn)
            assert wait_stopped(ecs, "c", arn)["containers"][0]["exitCode"] == 143
