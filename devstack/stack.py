"""Start and stop the emulator, the Airflow API server, scheduler, DAG processor and triggerer."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from ecs_emulator import credentials as emulator_credentials

REPO = Path(__file__).resolve().parents[1]
DAGS = Path(__file__).resolve().parent / "dags"
BIN = Path(sys.executable).parent
CLUSTER = "airflow"
TASK_DEFINITION = "airflow-task"
BIG_TASK_DEFINITION = "airflow-task-big"
FARGATE_TASK_DEFINITION = "airflow-task-fargate"  # awsvpc, for Fargate and Fargate Spot
LOG_GROUP = "/ecs/airflow"
WORKLOAD_KEY_ALIAS = "alias/airflow-workloads"  # seals the workloads (setup_sealing)
USER, PASSWORD = "admin", "admin"
# The tasks' AWS credentials come from their task role, through the emulator's container
# credentials endpoint (docs/emulator.md), never from the environment they start in.
TASK_ROLE = {"taskRoleArn": "arn:aws:iam::123456789012:role/airflow-task"}
# Every process of Airflow and every task shares one machine here, on SQLite: under load the API
# server can take longer than the task's default 5 s per call, and a task that gives up after its 5
# retries (about 80 s) fails. On AWS the API server has a machine and a database of its own.
LOCAL_TASK_ENV = [{"name": "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT", "value": "30"}]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


EVENTS_QUEUE = "airflow-ecs-task-events"
EXECUTION_ROLE_ARN = "arn:aws:iam::123456789012:role/airflow-ecs-execution"  # awslogs on Fargate
# The Airflow servers that get an emulator key of their own (Stack.process_env).
PRINCIPALS = ("scheduler", "api-server", "dag-processor", "triggerer")


class Stack:
    """One emulator and one Airflow, in ``home``; every server on 127.0.0.1."""

    def __init__(
        self,
        home: Path,
        *,
        api_port: int | None = None,
        profile: str = "fast",
        extra_env: dict[str, str] | None = None,
        container_env: dict[str, str] | None = None,
        task_events: bool | None = None,
    ) -> None:
        self.home = home
        # Tracking by ECS events (EventBridge rule -> SQS), on unless ECS_DEVSTACK_TASK_EVENTS=0.
        self.task_events = (
            os.environ.get("ECS_DEVSTACK_TASK_EVENTS", "1") != "0" if task_events is None else task_events
        )
        self.api_port = api_port or free_port()
        self.emulator_port = free_port()
        self.profile = profile
        self.extra_env = dict(extra_env or {})
        self.container_env = dict(container_env or {})
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.endpoint_url = f"http://127.0.0.1:{self.emulator_port}"
        self._token: str | None = None
        # -- emulator credentials: drawn here, handed to the emulator, used by Airflow and by us.
        self.emulator_credentials = emulator_credentials.new_credentials()
        self.emulator_control_token = emulator_credentials.new_control_token()
        # Each Airflow server signs with a key of its own, so the emulator's request log says which
        # principal made each call (docs/emulator.md); the emulator's own key is the administrator's
        # (this class setting up ECS, KMS, SQS and EventBridge, and the tests).
        self.principal_credentials = {name: emulator_credentials.new_credentials() for name in PRINCIPALS}
        self.request_log = home / "logs" / "emulator-requests.jsonl"

    # -- environment -----------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__EXECUTOR": "airflow_ecs_executor.EcsExecutor",
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
                "AIRFLOW__API__SECRET_KEY": self._secret("api"),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                # Task logs come from the ECS task's CloudWatch stream, as they would on AWS.
                "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": "airflow_ecs_executor.logs.LOGGING_CONFIG",
                "AIRFLOW__ECS_EXECUTOR__CLUSTER": CLUSTER,
                "AIRFLOW__ECS_EXECUTOR__TASK_DEFINITION": TASK_DEFINITION,
                "AIRFLOW__ECS_EXECUTOR__CONTAINER_NAME": "base",
                "AIRFLOW__ECS_EXECUTOR__ENDPOINT_URL": self.endpoint_url,
                "AIRFLOW__ECS_EXECUTOR__REGION_NAME": "us-east-1",
                "AIRFLOW__ECS_EXECUTOR__WORKLOAD_KMS_KEY": WORKLOAD_KEY_ALIAS,  # see setup_sealing
                "AIRFLOW__ECS_EXECUTOR__QUEUE_PROFILES": json.dumps(
                    {"big": {"task_definition": BIG_TASK_DEFINITION, "memory": 2048}}
                ),
                "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                    {
                        "conn_type": "aws",
                        "login": self.emulator_credentials.access_key_id,
                        "password": self.emulator_credentials.secret_access_key,
                    }
                ),
                "AWS_ACCESS_KEY_ID": self.emulator_credentials.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.emulator_credentials.secret_access_key,
                "AWS_DEFAULT_REGION": "us-east-1",
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        env.update(self._task_events_env())
        env.update(self.extra_env)
        return env

    def process_env(self, name: str) -> dict[str, str]:
        """The environment of one Airflow server: ``env()`` with that server's own emulator key, if it has one."""
        env = self.env()
        key = self.principal_credentials.get(name)
        if key is not None:
            connection = {"conn_type": "aws", "login": key.access_key_id, "password": key.secret_access_key}
            env["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(connection)
            env["AWS_ACCESS_KEY_ID"] = key.access_key_id
            env["AWS_SECRET_ACCESS_KEY"] = key.secret_access_key
        return env

    def _secret(self, name: str) -> str:
        path = self.home / f".{name}-secret"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
        return path.read_text()

    def emulator_env(self) -> dict[str, str]:
        """The emulator's environment: its fixed credentials; nothing of Airflow's connection.

        Its tasks inherit this environment (less the AWS credential variables, which the process
        runner strips): an ECS task gets its credentials from its task role, so its ``aws_default``
        connection names none and boto3 falls back to the container credentials the emulator serves.
        """
        env = self.env()
        env["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({"conn_type": "aws"})
        env[emulator_credentials.FIXED_ACCESS_KEY_ENV] = self.emulator_credentials.access_key_id
        env[emulator_credentials.FIXED_SECRET_KEY_ENV] = self.emulator_credentials.secret_access_key
        env[emulator_credentials.FIXED_CONTROL_TOKEN_ENV] = self.emulator_control_token
        env[emulator_credentials.PRINCIPALS_ENV] = json.dumps(
            {name: [key.access_key_id, key.secret_access_key] for name, key in self.principal_credentials.items()}
        )
        return env

    def _control_headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            emulator_credentials.CONTROL_TOKEN_HEADER: self.emulator_control_token,
        }

    # -- processes -------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        # The child keeps its own descriptor of the log file; the parent's copy closes at once.
        with (self.home / "logs").joinpath(f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                argv,
                env=env or self.process_env(name),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,
            )

    def start(self, *, fresh: bool = True) -> Stack:
        if fresh and self.home.exists():
            shutil.rmtree(self.home)
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
        self._spawn(
            "emulator",
            [
                sys.executable,
                "-m",
                "ecs_emulator",
                "--port",
                str(self.emulator_port),
                "--profile",
                self.profile,
                "--log-level",
                "WARNING",
                "--request-log",
                str(self.request_log),
            ],  # its env file: the default one, so `python -m ecs_emulator env --port N` finds it
            env=self.emulator_env(),
        )
        self._wait_http(f"{self.endpoint_url}/_emulator/health", "the ECS emulator", headers=self._control_headers())
        self.setup_sealing()
        self.setup_ecs()
        self.setup_task_events()
        with (self.home / "logs" / "db-migrate.log").open("ab") as log:
            subprocess.run(
                [str(BIN / "airflow"), "db", "migrate"],
                env=self.env(),
                check=True,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._spawn(
            "api-server",
            [str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1"],
        )
        self.start_scheduler()
        self._spawn("dag-processor", [str(BIN / "airflow"), "dag-processor"])
        # Deferrable operators wait in the triggerer; their resumption is queued to the executor again.
        self._spawn("triggerer", [str(BIN / "airflow"), "triggerer"])
        self._wait_http(f"{self.api_url}/api/v2/monitor/health", "the Airflow API server", timeout=180)
        # The API server builds its Execution API on the first request under /execution/, inside its
        # event loop (tens of seconds on a busy machine): done now, before a task's first call needs it,
        # as a deployment's readiness probe would.
        self._wait_http(f"{self.api_url}/execution/health", "the Airflow Execution API", timeout=180)
        return self

    def start_scheduler(self) -> None:
        self._spawn("scheduler", [str(BIN / "airflow"), "scheduler"])

    def kill_scheduler(self) -> None:
        proc = self.procs.pop("scheduler")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        # The scheduler first, alone: its executor may still call ECS as it ends. Then the other
        # Airflow servers together (the triggerer alone takes seconds to let its triggers clean up),
        # then ECS. Whatever has not exited 30 s after SIGTERM is killed.
        for names in (("scheduler",), ("triggerer", "dag-processor", "api-server"), ("emulator",)):
            self.stop_processes(names)

    def stop_processes(self, names: Sequence[str]) -> None:
        """SIGTERM these processes together; whatever has not exited 30 s later is killed."""
        procs = [proc for proc in (self.procs.pop(name, None) for name in names) if proc is not None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)

    def _wait_http(self, url: str, what: str, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - our own loopback URL
                with urllib.request.urlopen(request, timeout=5):  # noqa: S310
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{what} did not answer at {url} within {timeout:.0f} s; see {self.home}/logs"
                    ) from None
                for name, proc in self.procs.items():
                    if proc.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with code {proc.returncode}; see {self.home}/logs/{name}.log"
                        ) from None
                time.sleep(0.5)

    # -- ECS -------------------------------------------------------------------------------------
    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.emulator_credentials.access_key_id,
            aws_secret_access_key=self.emulator_credentials.secret_access_key,
            config=Config(retries={"mode": "standard"}),
        )

    @property
    def sealed(self) -> bool:
        """Workloads are sealed (the default) unless extra_env asks for plain delivery."""
        return self.extra_env.get("AIRFLOW__ECS_EXECUTOR__WORKLOAD_DELIVERY", "sealed") == "sealed"

    def setup_sealing(self) -> None:
        """The KMS key that seals workloads (moto's, behind the emulator) and the tasks' KMS endpoint.

        On AWS deploy/cloudformation.yaml creates the key and its policy; here the alias is created
        so the configuration can name it before the key exists. Tasks reach KMS through
        AWS_ENDPOINT_URL (boto3's standard variable), with the credentials the emulator gives them.
        """
        if not self.sealed:
            return
        kms = self.aws("kms")
        key = kms.create_key(Description="airflow-ecs-executor workloads (devstack)")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=WORKLOAD_KEY_ALIAS, TargetKeyId=key)
        self.container_env.setdefault("AWS_ENDPOINT_URL", self.endpoint_url)

    # -- tracking by ECS events --------------------------------------------------------------------
    def events_queues(self) -> dict[str, str]:
        """Each scheduler's name and the name of its events queue: here one scheduler, one queue.

        SQS hands a message to one consumer, so every scheduler needs a queue of its own
        (``HaStack`` makes one per scheduler); empty without task events.
        """
        return {"scheduler": EVENTS_QUEUE} if self.task_events else {}

    def events_queue_url(self, scheduler: str) -> str:
        """The events queue URL of one scheduler (moto's form: <endpoint>/<account>/<name>)."""
        return f"{self.endpoint_url}/123456789012/{self.events_queues()[scheduler]}"

    def _task_events_env(self) -> dict[str, str]:
        if not self.task_events:
            return {}
        return {"AIRFLOW__ECS_EXECUTOR__TASK_EVENTS_QUEUE_URL": self.events_queue_url("scheduler")}

    def setup_task_events(self) -> None:
        """What deploy/cloudformation.yaml creates: a rule for the task state changes, a queue per scheduler."""
        queues = self.events_queues()
        if not queues:
            return
        sqs, events = self.aws("sqs"), self.aws("events")
        targets = []
        for scheduler, name in queues.items():
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            targets.append({"Id": scheduler, "Arn": arn})
        cluster_arn = self.aws("ecs").describe_clusters(clusters=[CLUSTER])["clusters"][0]["clusterArn"]
        pattern = {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {"clusterArn": [cluster_arn]},
        }
        events.put_rule(Name=EVENTS_QUEUE, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=EVENTS_QUEUE, Targets=targets)

    def events_queue_depths(self) -> dict[str, int]:
        """Messages each scheduler's events queue still holds (visible or received, not yet deleted)."""
        sqs = self.aws("sqs")
        depths = {}
        for scheduler in self.events_queues():
            attrs = sqs.get_queue_attributes(
                QueueUrl=self.events_queue_url(scheduler),
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            depths[scheduler] = int(attrs["ApproximateNumberOfMessages"]) + int(
                attrs["ApproximateNumberOfMessagesNotVisible"]
            )
        return depths

    def setup_ecs(self) -> None:
        """The cluster and task definitions an administrator would create (deploy/ on AWS)."""
        ecs = self.aws("ecs")
        ecs.create_cluster(clusterName=CLUSTER, capacityProviders=["FARGATE", "FARGATE_SPOT"])
        # EC2 capacity for the EC2 (bridge) task definitions: 8 instances of 16 vCPU and 64 GiB.
        self._control("container-instances", {"cluster": CLUSTER, "count": 8, "cpu": 16384, "memory": 65536})
        environment = [
            {"name": k, "value": v}
            for k, v in self.env().items()
            if k.startswith(("AIRFLOW__CORE__", "AIRFLOW__DATABASE__", "AIRFLOW__API_AUTH__")) or k == "AIRFLOW_HOME"
        ]
        # A container's disk is its own: the API server cannot read the files a task writes there,
        # so the UI shows what reached CloudWatch Logs, exactly as on AWS.
        environment.append(
            {"name": "AIRFLOW__LOGGING__BASE_LOG_FOLDER", "value": str(self.home / "container-disk" / "logs")}
        )
        environment += LOCAL_TASK_ENV
        environment += [{"name": k, "value": v} for k, v in self.container_env.items()]
        fargate = {
            "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc",
            "cpu": "1024",
            "memory": "2048",
            "executionRoleArn": EXECUTION_ROLE_ARN,
        }
        for family, memory, extra in (
            (TASK_DEFINITION, 1536, {}),
            (BIG_TASK_DEFINITION, 3072, {}),
            (FARGATE_TASK_DEFINITION, 1536, fargate),
        ):
            ecs.register_task_definition(
                family=family,
                containerDefinitions=[
                    {
                        "name": "base",
                        "image": f"apache/airflow:{importlib.metadata.version('apache-airflow')}",
                        "memory": memory,
                        "environment": environment,
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {
                                "awslogs-group": LOG_GROUP,
                                "awslogs-stream-prefix": "airflow",
                                "awslogs-create-group": "true",
                                "awslogs-region": "us-east-1",
                            },
                        },
                    }
                ],
                **extra,
                **TASK_ROLE,
            )

    # -- Airflow REST API ------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        if self._token is None and not path.startswith("/auth"):
            self._token = self._request("POST", "/auth/token", {"username": USER, "password": PASSWORD})["access_token"]
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api_url + path, data=data, method=method)  # noqa: S310
        req.add_header("Content-Type", "application/json")
        if self._token and not path.startswith("/auth"):
            req.add_header("Authorization", f"Bearer {self._token}")
        # A GET changes nothing: on a busy machine the API server may answer one late, so it is asked
        # again (three times at most) rather than failing the test that only wanted to look.
        for attempt in range(3 if method == "GET" else 1):
            try:
                with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 - our own loopback URL
                    text = response.read()
                    return json.loads(text) if text else None
            except TimeoutError:
                if attempt == 2 or method != "GET":
                    raise
        raise AssertionError("unreachable")

    def wait_dags(self, dag_ids: list[str], timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            known = {d["dag_id"] for d in self._request("GET", "/api/v2/dags?limit=100")["dags"]}
            if set(dag_ids) <= known:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"DAGs {sorted(set(dag_ids) - known)} not parsed within {timeout:.0f} s")
            time.sleep(1)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        body: dict[str, Any] = {"logical_date": None}
        if conf:
            body["conf"] = conf
        run = self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            if time.monotonic() > deadline:
                raise RuntimeError(f"{dag_id} {run_id} still {state} after {timeout:.0f} s")
            time.sleep(1)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(
            self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]
        )

    def task_tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of one task instance (earlier tries from Airflow's history), oldest first."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}/tries"
        tries = list(self._request("GET", path)["task_instances"])
        return sorted(tries, key=lambda t: int(t["try_number"]))

    def clear_task(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Clear one finished task instance, as the UI's Clear does; its DAG run is queued again."""
        body = {"dry_run": False, "dag_run_id": run_id, "task_ids": [task_id], "only_failed": False}
        self._request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", body)

    def variable(self, key: str) -> str | None:
        """An Airflow Variable's value, or None if it is not set."""
        try:
            return str(self._request("GET", f"/api/v2/variables/{urllib.parse.quote(key, safe='')}")["value"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        self._request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", {"new_state": state})

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> list[dict[str, Any]]:
        """A try's log as the UI gets it from the API server: structured lines, JSON-parsed."""
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}"
            f"/logs/{try_number}?map_index={map_index}&full_content=true"
        )
        return list(self._request("GET", path, timeout=120)["content"])  # a log may be 100,000 lines

    def emulator_tasks(self) -> list[dict[str, Any]]:
        req = urllib.request.Request(f"{self.endpoint_url}/_emulator/tasks", headers=self._control_headers())  # noqa: S310
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            return list(json.loads(r.read())["tasks"])

    def emulator_counters(self) -> dict[str, Any]:
        req = urllib.request.Request(f"{self.endpoint_url}/_emulator/counters", headers=self._control_headers())  # noqa: S310
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            return dict(json.loads(r.read()))

    def _control(self, route: str, payload: dict[str, Any]) -> None:
        req = urllib.request.Request(  # noqa: S310 - our own loopback URL
            f"{self.endpoint_url}/_emulator/{route}",
            data=json.dumps(payload).encode(),
            method="POST",
            headers=self._control_headers(),
        )
        urllib.request.urlopen(req, timeout=10).close()  # noqa: S310

    def inject(self, kind: str, **options: Any) -> None:
        self._control("faults", {"kind": kind, **options})

    def set_capacity(self, max_tasks: int | None) -> None:
        """How many ECS tasks the emulated cluster can place at once (None: no limit)."""
        self._control("capacity", {"max_tasks": max_tasks})
