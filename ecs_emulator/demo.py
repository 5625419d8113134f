"""A short tour of the emulator: real tasks, their lifecycle and their CloudWatch log lines.

``python -m ecs_emulator.demo`` starts an emulator, registers a task definition with awslogs, runs
three tasks (one succeeds, one fails, one prints progress) and shows what ECS would show.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import boto3
from botocore.config import Config

from ecs_emulator.emulator import Emulator

PROGRAMS = {
    "hello": "print('hello from an emulated ECS task')",
    "fails": "import sys; print('about to fail', flush=True); sys.exit(3)",
    "progress": (
        "import time\nfor i in range(1, 6):\n    print(f'progress {i * 20}%', flush=True)\n    time.sleep(0.3)"
    ),
}


def _client(service: str, em: Emulator) -> Any:
    # The emulator's own credentials: it refuses requests not signed with them.
    return boto3.client(service, **em.client_kwargs(), config=Config(retries={"mode": "standard"}))


def main() -> int:
    """Run the tour; 0 when every task ended as designed."""
    with Emulator("fast") as em:
        print(f"Emulator at {em.endpoint_url} (profile {em.profile.name}, runner {em.runner.kind})\n")
        ecs, logs = _client("ecs", em), _client("logs", em)
        ecs.create_cluster(clusterName="demo")
        em.register_container_instances("demo")  # EC2 capacity for the tasks (no launch type: EC2)
        ecs.register_task_definition(
            family="demo",
            containerDefinitions=[
                {
                    "name": "main",
                    "image": "python:3.11-slim",
                    "memory": 256,
                    "command": [sys.executable, "-c", "print('default command')"],
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": "/ecs/demo",
                            "awslogs-stream-prefix": "demo",
                            "awslogs-region": "us-east-1",
                            "awslogs-create-group": "true",
                        },
                    },
                }
            ],
        )
        arns: dict[str, str] = {}
        for name, code in PROGRAMS.items():
            response = ecs.run_task(
                cluster="demo",
                taskDefinition="demo",
                startedBy="ecs-emulator-demo",
                overrides={"containerOverrides": [{"name": "main", "command": [sys.executable, "-c", code]}]},
            )
            arns[name] = response["tasks"][0]["taskArn"]
            print(f"RunTask {name:<9} -> {arns[name]}")
        print()
        last: dict[str, str] = {}
        final: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 60
        while len(final) < len(arns) and time.monotonic() < deadline:
            for task in ecs.describe_tasks(cluster="demo", tasks=list(arns.values()))["tasks"]:
                name = next(n for n, a in arns.items() if a == task["taskArn"])
                if last.get(name) != task["lastStatus"]:
                    last[name] = task["lastStatus"]
                    print(f"  {name:<9} {task['lastStatus']:<15} version {task['version']}")
                if task["lastStatus"] == "STOPPED":
                    final[name] = task
            time.sleep(0.05)
        print("\nLog lines (CloudWatch Logs group /ecs/demo):")
        for name, arn in arns.items():
            stream = f"demo/main/{arn.rsplit('/', 1)[-1]}"
            events = logs.get_log_events(logGroupName="/ecs/demo", logStreamName=stream, startFromHead=True)["events"]
            for event in events:
                print(f"  {name:<9} {event['message']}")
        print(f"\n{'task':<10}{'stopCode':<26}{'exit':>5}  reason")
        for name, task in final.items():
            container = task["containers"][0]
            print(f"{name:<10}{task['stopCode']:<26}{container.get('exitCode', '-'):>5}  {task['stoppedReason']}")
        expected = {"hello": 0, "fails": 3, "progress": 0}
        ok = all(final.get(n, {}).get("containers", [{}])[0].get("exitCode") == code for n, code in expected.items())
        print("\nAll tasks ended as designed." if ok else "\nSome tasks did not end as designed.")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
