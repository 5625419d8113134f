"""The workload's JWT never reaches a log, a RunTask request or DescribeTasks: the demo's DAG runs sealed.

After a full DAG run, every log file the stack wrote, what DescribeTasks says of every task (with
its overrides, what RunTask was sent and what CloudTrail would record of it), the emulator's
request log (every AWS request's body as received) and what the UI shows of each task's log are
searched for JWT-shaped strings and for the tokens' field.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from devstack.stack import CLUSTER, Stack
from tests.e2e.test_logs import log_with

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}")
UNSEAL = "airflow_ecs_executor.aws.unseal"


def _describe_all(stack: Stack) -> list[dict[str, object]]:
    ecs = stack.aws("ecs")
    arns: list[str] = []
    for status in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(cluster=CLUSTER, desiredStatus=status):
            arns += page["taskArns"]
    tasks: list[dict[str, object]] = []
    for i in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(cluster=CLUSTER, tasks=arns[i : i + 100], include=["TAGS"])["tasks"]
    return tasks


def test_no_log_or_task_description_holds_a_workload_jwt(stack: Stack) -> None:
    assert stack.sealed, "the devstack seals workloads by default"
    run_id = stack.trigger("ecs_demo")  # the demo's DAG: a retry, mapped tasks, a queue profile, resources
    assert stack.wait_run("ecs_demo", run_id, timeout=600) == "success"
    # DescribeTasks, overrides included: the commands are sealed, the RunTask requests were too.
    tasks = _describe_all(stack)
    assert len(tasks) >= 8
    described = json.dumps(tasks, default=str)
    assert JWT.findall(described) == [], "DescribeTasks shows a JWT"
    assert '"token"' not in described
    for task in tasks:
        overrides = task["overrides"]
        assert isinstance(overrides, dict)
        commands = [c.get("command") for c in overrides["containerOverrides"] if c.get("command")]
        assert commands and all(cmd[:3] == ["python", "-m", UNSEAL] for cmd in commands), commands
    # The scheduler (with EcsExecutor at its default level), the API server, the DAG processor, the
    # triggerer and the emulator's own logs, and every other file the stack wrote under logs/.
    logs = sorted(p for p in Path(stack.home, "logs").rglob("*") if p.is_file())
    assert {p.name for p in logs} >= {"scheduler.log", "api-server.log", "dag-processor.log", "emulator.log"}
    for path in logs:
        found = JWT.findall(path.read_text(errors="replace"))
        assert found == [], f"{path} holds a JWT"
    # The emulator's request log: every AWS request of the run, bodies as received (RunTask's overrides,
    # KMS's GenerateDataKey and the task's Decrypt included), whoever signed it.
    requests = stack.request_log.read_text(errors="replace")
    actions = {(r["principal"], r["action"]) for r in map(json.loads, requests.splitlines())}
    assert {("scheduler", "RunTask"), ("scheduler", "GenerateDataKey"), ("task", "Decrypt")} <= actions
    assert JWT.findall(requests) == [], "the emulator's request log holds a JWT"
    assert '"token"' not in requests
    # Every task's raw output in CloudWatch Logs, as a reader of the log group sees it (Airflow 3.1's
    # execute_workload logged the workload with its token there until the unseal step hid it).
    cloudwatch = stack.aws("logs")
    streams = 0
    for group in cloudwatch.describe_log_groups()["logGroups"]:
        name = group["logGroupName"]
        for page in cloudwatch.get_paginator("describe_log_streams").paginate(logGroupName=name):
            for stream in page["logStreams"]:
                streams += 1
                events = cloudwatch.get_log_events(
                    logGroupName=name, logStreamName=stream["logStreamName"], startFromHead=True
                )
                text = json.dumps([e["message"] for e in events["events"]])
                assert JWT.findall(text) == [], f"CloudWatch stream {name} {stream['logStreamName']} holds a JWT"
    assert streams >= 8
    # What the UI shows of each task's log (from CloudWatch Logs).
    tries = [("list_files", -1, 1), *(("process", i, 1) for i in range(5)), ("summarise", -1, 1)]
    tries += [("flaky_once", -1, 2), ("with_resources", -1, 1), ("routed_by_queue", -1, 1), ("long_running", -1, 1)]
    for task_id, map_index, try_number in tries:
        log = log_with(stack, "ecs_demo", run_id, task_id, try_number, "Done. Returned value was", map_index=map_index)
        assert JWT.findall(json.dumps(log)) == [], f"the log view of {task_id}[{map_index}] holds a JWT"


def test_kms_keeps_the_sealed_workload_bound_to_its_launch(stack: Stack) -> None:
    """A sealed command copied from DescribeTasks does not open under another launch's context."""
    task = next(t for t in _describe_all(stack) if t["overrides"]["containerOverrides"][0].get("command"))  # type: ignore[index]
    command = task["overrides"]["containerOverrides"][0]["command"]  # type: ignore[index]
    context = {**json.loads(command[4]), "ecs-executor:attempt": "99"}
    kms = stack.aws("kms")
    blob = base64.urlsafe_b64decode(command[5] + "=" * (-len(command[5]) % 4))
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
