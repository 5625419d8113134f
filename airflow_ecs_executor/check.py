"""``airflow ecs-executor check``: a checklist of a live set-up, each failure with its fix.

Every probe is read-only or answers before doing anything (StopTask of a task ID that cannot exist,
GetLogEvents of a stream that cannot exist): running the check never starts, stops or changes
anything in the account.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_ecs_executor.aws.sealing import launch_context
from airflow_ecs_executor.aws.session import AWS_ERRORS, client_config, error_code, error_message, is_service_error
from airflow_ecs_executor.config import SECTION, ConfigError, ExecutorConfig, parse_config, valid_endpoint_url

Status = Literal["ok", "fail", "warn", "info"]
_NO_SUCH_TASK = "0" * 32
_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException")


@dataclass(frozen=True)
class Item:
    """One line of the checklist."""

    status: Status
    what: str
    detail: str = ""
    fix: str = ""


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Checker:
    """Runs the checks in order; a failure that makes later checks meaningless stops there."""

    def __init__(self, client_factory: Callable[..., Any], api_server_url: str | None) -> None:
        self._factory = client_factory
        self._api_server_url = api_server_url
        self.items: list[Item] = []

    def _add(self, status: Status, what: str, detail: str = "", fix: str = "") -> None:
        self.items.append(Item(status, what, detail, fix))

    def _client(self, cfg: ExecutorConfig, service: str) -> Any:
        return self._factory(cfg, service, config=client_config(attempts=2, read_timeout=15))

    def run(self, section: Mapping[str, Any]) -> list[Item]:
        try:
            cfg = parse_config(section)
        except ConfigError as exc:
            self._add("fail", "configuration [ecs_executor]", str(exc), "fix the keys listed above")
            return self.items
        self._add("ok", "configuration [ecs_executor]", f"cluster {cfg.cluster}, task definition {cfg.task_definition}")
        if not self._connect(cfg):
            return self.items
        if not self._credentials(cfg):
            return self.items
        ecs = self._client(cfg, "ecs")
        if not self._cluster(cfg, ecs):
            return self.items
        for queue, definition, container in self._definitions(cfg):
            found = self._task_definition(cfg, ecs, queue, definition, container)
            if found is not None:
                self._awslogs(cfg, found, container, queue)
                self._network(cfg, found, queue)
        self._permissions(cfg, ecs)
        self._sealing(cfg, ecs)
        self._task_events(cfg)
        self._api_server()
        return self.items

    def startup(self, cfg: ExecutorConfig) -> list[Item]:
        """The checks the scheduler runs at start: cluster, task definitions and network settings."""
        if not self._connect(cfg):
            return self.items
        ecs = self._client(cfg, "ecs")
        if self._cluster(cfg, ecs):
            for queue, definition, container in self._definitions(cfg):
                found = self._task_definition(cfg, ecs, queue, definition, container)
                if found is not None:
                    self._network(cfg, found, queue)
        return self.items

    def _connect(self, cfg: ExecutorConfig) -> bool:
        """Clients can be built: a Region is known and the endpoint is a URL (nothing is sent yet)."""
        problem = client_problem(cfg, self._factory)
        if problem is None:
            return True
        self._add("fail", problem[0], problem[1], problem[2])
        return False

    def _credentials(self, cfg: ExecutorConfig) -> bool:
        try:
            identity = self._client(cfg, "sts").get_caller_identity()
        except AWS_ERRORS as exc:
            if not is_service_error(exc):
                self._add("fail", "endpoint", *_unreachable(cfg, exc))
                return False
            self._add(
                "fail",
                f"credentials (connection {cfg.conn_id!r})",
                f"{error_code(exc)}: {error_message(exc)}",
                f"define the Airflow connection {cfg.conn_id!r} (or set [ecs_executor] conn_id), or give the "
                "scheduler an instance/task role; check region_name and endpoint_url",
            )
            return False
        self._add("ok", f"credentials (connection {cfg.conn_id!r})", str(identity.get("Arn", "")))
        return True

    def _cluster(self, cfg: ExecutorConfig, ecs: Any) -> bool:
        try:
            clusters = ecs.describe_clusters(clusters=[cfg.cluster]).get("clusters", [])
        except AWS_ERRORS as exc:
            if is_service_error(exc):
                fix = "allow ecs:DescribeClusters for the scheduler"
            else:
                fix = f"cannot reach ECS with connection {cfg.conn_id!r}: check endpoint_url, region_name and network"
            self._add("fail", f"cluster {cfg.cluster}", f"{error_code(exc)}: {error_message(exc)}", fix)
            return False
        active = [c for c in clusters if c.get("status") == "ACTIVE"]
        if not active:
            self._add(
                "fail",
                f"cluster {cfg.cluster}",
                "does not exist or is not ACTIVE",
                "create it (deploy/cloudformation.yaml does) or fix [ecs_executor] cluster",
            )
            return False
        providers = set(active[0].get("capacityProviders") or [])
        wanted = {item.capacityProvider for item in cfg.capacity_provider_strategy or []}
        missing = sorted(wanted - providers)
        if missing:
            self._add(
                "fail",
                f"cluster {cfg.cluster}",
                f"capacity providers {missing} are not attached (attached: {sorted(providers)})",
                "attach them with PutClusterCapacityProviders, or fix capacity_provider_strategy",
            )
            return False
        self._add("ok", f"cluster {cfg.cluster}", f"ACTIVE, capacity providers {sorted(providers) or 'none'}")
        return True

    @staticmethod
    def _definitions(cfg: ExecutorConfig) -> list[tuple[str | None, str, str]]:
        out: list[tuple[str | None, str, str]] = [(None, cfg.task_definition, cfg.container_name)]
        for queue, profile in sorted(cfg.queue_profiles.items()):
            if profile.task_definition or profile.container_name:
                out.append(
                    (
                        queue,
                        profile.task_definition or cfg.task_definition,
                        profile.container_name or cfg.container_name,
                    )
                )
        return out

    def _task_definition(
        self, cfg: ExecutorConfig, ecs: Any, queue: str | None, ref: str, container: str
    ) -> Mapping[str, Any] | None:
        label = f"task definition {ref}" + (f" (queue {queue!r})" if queue else "")
        try:
            definition: Mapping[str, Any] = ecs.describe_task_definition(taskDefinition=ref)["taskDefinition"]
        except AWS_ERRORS as exc:
            self._add(
                "fail",
                label,
                f"{error_code(exc)}: {error_message(exc)}",
                "register it (deploy/cloudformation.yaml does) or fix task_definition",
            )
            return None
        names = [c.get("name") for c in definition.get("containerDefinitions", [])]
        if container not in names:
            self._add(
                "fail", label, f"has no container {container!r} (it has {names})", "fix container_name to one of those"
            )
            return None
        self._add("ok", label, f"revision {definition.get('revision')}, container {container!r}")
        return definition

    def _awslogs(self, cfg: ExecutorConfig, definition: Mapping[str, Any], container: str, queue: str | None) -> None:
        label = f"awslogs for container {container!r}" + (f" (queue {queue!r})" if queue else "")
        cdef = next(c for c in definition["containerDefinitions"] if c.get("name") == container)
        log_config = cdef.get("logConfiguration") or {}
        options = log_config.get("options") or {}
        if log_config.get("logDriver") != "awslogs":
            self._add(
                "warn",
                label,
                f"log driver is {log_config.get('logDriver') or 'not set'}: task logs will not show in the Airflow UI",
                "set logConfiguration.logDriver = awslogs with awslogs-group and awslogs-stream-prefix",
            )
            return
        if not options.get("awslogs-stream-prefix"):
            self._add(
                "warn",
                label,
                "no awslogs-stream-prefix: stream names cannot be derived from the task ID",
                "set awslogs-stream-prefix",
            )
            return
        group = options.get("awslogs-group", "")
        try:
            logs = self._client(cfg, "logs")
            groups = logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        except AWS_ERRORS as exc:
            self._add(
                "warn", label, f"cannot look up log group {group}: {error_code(exc)}", "allow logs:DescribeLogGroups"
            )
            return
        if not any(g.get("logGroupName") == group for g in groups) and options.get("awslogs-create-group") != "true":
            self._add(
                "fail",
                label,
                f"log group {group} does not exist and awslogs-create-group is not true: tasks fail to start",
                f"create the log group {group} (deploy/cloudformation.yaml does)",
            )
            return
        self._add("ok", label, f"group {group}, streams {options['awslogs-stream-prefix']}/{container}/<task-id>")

    def _network(self, cfg: ExecutorConfig, definition: Mapping[str, Any], queue: str | None) -> None:
        label = "network settings" + (f" (queue {queue!r})" if queue else "")
        profile = cfg.queue_profiles.get(queue or "")
        subnets = (profile.subnets if profile and profile.subnets else None) or cfg.subnets
        has_kwargs = "networkConfiguration" in cfg.run_task_kwargs
        uses_fargate = cfg.launch_type == "FARGATE" or any(
            i.capacityProvider.startswith("FARGATE") for i in cfg.capacity_provider_strategy or []
        )
        problems = []
        if definition.get("networkMode") == "awsvpc" and not subnets and not has_kwargs:
            problems.append(("the task definition uses awsvpc but no subnets are set", "set [ecs_executor] subnets"))
        if uses_fargate and definition.get("networkMode") not in (None, "awsvpc"):
            problems.append(
                (
                    f"Fargate needs networkMode awsvpc; the task definition has {definition.get('networkMode')}",
                    "register the task definition with networkMode awsvpc",
                )
            )
        if uses_fargate and "FARGATE" not in (definition.get("compatibilities") or []):
            problems.append(("the task definition is not FARGATE-compatible", "add FARGATE to requiresCompatibilities"))
        if uses_fargate and subnets and not cfg.security_groups and not has_kwargs:
            self._add("warn", label, "no security_groups: tasks get the VPC's default security group")
        for detail, fix in problems:
            self._add("fail", label, detail, fix)
        if not problems:
            public = "with" if cfg.assign_public_ip else "without"
            self._add("ok", label, f"subnets {subnets or 'none'}, {public} a public IP")

    def _permissions(self, cfg: ExecutorConfig, ecs: Any) -> None:
        """Probe what can be probed without side effects."""
        probes: list[tuple[str, Callable[[], Any], tuple[str, ...]]] = [
            ("ecs:DescribeTasks", lambda: ecs.describe_tasks(cluster=cfg.cluster, tasks=[_NO_SUCH_TASK]), ()),
            ("ecs:ListTasks", lambda: ecs.list_tasks(cluster=cfg.cluster, maxResults=1), ()),
            # Stopping a task ID that cannot exist: allowed -> "task was not found"; denied -> AccessDenied.
            (
                "ecs:StopTask",
                lambda: ecs.stop_task(cluster=cfg.cluster, task=_NO_SUCH_TASK, reason="ecs-executor check"),
                ("InvalidParameterException",),
            ),
        ]
        for action, call, expected in probes:
            try:
                call()
            except AWS_ERRORS as exc:
                code = error_code(exc)
                if code in expected:
                    self._add("ok", f"permission {action}")
                elif code in _DENIED:
                    self._add("fail", f"permission {action}", error_message(exc), f"allow {action} for the scheduler")
                else:
                    self._add("warn", f"permission {action}", f"{code}: {error_message(exc)}")
                continue
            self._add("ok", f"permission {action}")
        self._add(
            "info",
            "permissions ecs:RunTask, iam:PassRole",
            "cannot be probed without starting a task; the policy in docs/reliability.md and "
            "deploy/cloudformation.yaml grants them for the configured task definitions and roles",
        )

    def _sealing(self, cfg: ExecutorConfig, ecs: Any) -> None:
        """Sealed workloads: the scheduler may seal with the key; the task definition has a task role to open them.

        GenerateDataKey has no side effect (KMS stores nothing; the data key is dropped here). Whether the
        task role may Decrypt cannot be probed from the scheduler: the role is named, and the fix says what
        it needs. docs/reliability.md, "Sealed workloads".
        """
        label = "sealed workloads (workload_delivery)"
        if cfg.workload_delivery == "plain" or not cfg.workload_kms_key:
            self._add(
                "warn",
                label,
                "plain: each task's Execution API token is readable by anyone allowed ecs:DescribeTasks on the "
                "cluster or to read CloudTrail",
                "set workload_delivery = sealed and workload_kms_key (deploy/cloudformation.yaml's WorkloadKmsKey)",
            )
            return
        context = launch_context(cfg.cluster, "ecs-executor-check", 0)
        try:
            self._client(cfg, "kms").generate_data_key(
                KeyId=cfg.workload_kms_key, KeySpec="AES_256", EncryptionContext=context
            )
        except AWS_ERRORS as exc:
            code = error_code(exc)
            fix = (
                f"allow kms:GenerateDataKey on {cfg.workload_kms_key} for the scheduler with the encryption context "
                f"ecs-executor:cluster = {context['ecs-executor:cluster']} (the template's SchedulerPolicy does)"
            )
            if code in ("NotFoundException", "DisabledException", "KMSInvalidStateException"):
                fix = f"fix workload_kms_key: the key {cfg.workload_kms_key} is missing or not enabled"
            self._add("fail", f"{label}: kms:GenerateDataKey", f"{code}: {error_message(exc)}", fix)
            return
        self._add("ok", f"{label}: kms:GenerateDataKey", f"key {cfg.workload_kms_key}, cluster context")
        try:
            definition = ecs.describe_task_definition(taskDefinition=cfg.task_definition)["taskDefinition"]
        except AWS_ERRORS:
            return  # reported by the task definition check
        role = definition.get("taskRoleArn")
        if not role:
            self._add(
                "fail",
                f"{label}: task role",
                f"task definition {cfg.task_definition} has no task role: its tasks cannot open sealed workloads",
                "give the task definition a task role allowed kms:Decrypt on the key (the template's TaskRole)",
            )
            return
        self._add(
            "info",
            f"{label}: task role {role}",
            "needs kms:Decrypt on the key with the encryption context ecs-executor:cluster = "
            f"{context['ecs-executor:cluster']} (cannot be probed from the scheduler; a task that cannot "
            "open its workload exits 77 and says why in its log)",
        )

    # -- tracking by ECS events (docs/setup.md, "Tracking by ECS events") ------------------------
    def _task_events(self, cfg: ExecutorConfig) -> None:
        """The events queue can be read, a rule of this cluster's task state changes targets it, deletes are allowed.

        Nothing is received: a receive would count against the message's redrive limit.
        """
        url = cfg.task_events_queue_url
        if not url:
            self._add("info", "tracking by ECS events", "off: tasks are tracked by polling DescribeTasks")
            return
        sqs = self._client(cfg, "sqs")
        try:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "Policy"])["Attributes"]
        except AWS_ERRORS as exc:
            self._add(
                "fail",
                "task events queue",
                f"{url}: {error_code(exc)}: {error_message(exc)}",
                "create the queue (deploy/cloudformation.yaml, TaskEventQueues) and allow sqs:GetQueueAttributes",
            )
            return
        queue_arn = str(attributes.get("QueueArn", ""))
        self._add("ok", "task events queue", queue_arn)
        if "events.amazonaws.com" not in str(attributes.get("Policy", "")):
            self._add(
                "warn",
                "task events queue policy",
                "no statement names events.amazonaws.com: EventBridge may not be allowed to send to the queue",
                "allow sqs:SendMessage to events.amazonaws.com with aws:SourceArn = the rule (see the template)",
            )
        self._task_events_rule(cfg, queue_arn)
        try:  # a receipt handle that cannot exist: allowed -> ReceiptHandleIsInvalid, denied -> AccessDenied
            sqs.delete_message(QueueUrl=url, ReceiptHandle="ecs-executor-check")
            self._add("ok", "permission sqs:DeleteMessage")
        except AWS_ERRORS as exc:
            code = error_code(exc)
            if code in _DENIED:
                self._add("fail", "permission sqs:DeleteMessage", error_message(exc), "allow it on the queue")
            elif "ReceiptHandle" in code or code == "InvalidParameterValue":
                self._add("ok", "permission sqs:DeleteMessage")
            else:
                self._add("warn", "permission sqs:DeleteMessage", f"{code}: {error_message(exc)}")
        self._add(
            "info",
            "permission sqs:ReceiveMessage",
            "not probed (a receive counts against a message's redrive limit); the scheduler logs 'cannot be read' "
            "and counts ecs_executor.events.fallback when it is denied",
        )

    def _task_events_rule(self, cfg: ExecutorConfig, queue_arn: str) -> None:
        events = self._client(cfg, "events")
        try:
            names = events.list_rule_names_by_target(TargetArn=queue_arn).get("RuleNames") or []
            rules = [events.describe_rule(Name=name) for name in names]
        except AWS_ERRORS as exc:
            self._add(
                "warn",
                "task events rule",
                f"{error_code(exc)}: {error_message(exc)}",
                "allow events:ListRuleNamesByTarget and events:DescribeRule to verify it",
            )
            return
        matching = [r["Name"] for r in rules if r.get("State") == "ENABLED" and _matches_task_changes(r, cfg.cluster)]
        if matching:
            self._add("ok", "task events rule", f"{', '.join(matching)} sends this cluster's task state changes")
            return
        self._add(
            "fail",
            "task events rule",
            f"no ENABLED EventBridge rule sends cluster {cfg.cluster}'s ECS Task State Change events to the queue",
            'add one: {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"], '
            '"detail": {"clusterArn": [<cluster ARN>]}} with the queue as a target (see the template)',
        )

    def _api_server(self) -> None:
        url = self._api_server_url
        label = "API server URL for tasks ([core] execution_api_server_url)"
        if not url:
            self._add(
                "fail",
                label,
                "not set: tasks do not know where to report",
                "set [core] execution_api_server_url to the API server's URL as seen from the VPC",
            )
            return
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            self._add("fail", label, f"{url!r} is not an http(s) URL", "use e.g. https://airflow.internal/execution/")
            return
        if _is_loopback(parsed.hostname):
            self._add(
                "warn",
                label,
                f"{url} is a loopback address: an ECS task reaches only itself there (fine with the local emulator)",
                "use the API server's address inside the VPC (a load balancer or service discovery name)",
            )
            return
        try:
            with urllib.request.urlopen(f"{parsed.scheme}://{parsed.netloc}/api/v2/version", timeout=5):  # noqa: S310
                pass
            self._add("ok", label, f"{url} answers from here")
        except urllib.error.HTTPError:
            self._add("ok", label, f"{url} answers from here")
        except OSError as exc:
            self._add(
                "warn",
                label,
                f"{url} does not answer from here ({exc}); tasks in the VPC may still reach it",
                "check security groups and DNS between the task subnets and the API server",
            )


def client_problem(cfg: ExecutorConfig, client_factory: Callable[..., Any]) -> tuple[str, str, str] | None:
    """Why no AWS client can be built from the section and its connection, as (what, detail, fix); None when one can.

    botocore refuses to build a client without a Region (``NoRegionError``) or with an endpoint that
    is not a URL (``ValueError``); both are configuration problems, listed like the others.
    """
    try:
        client = client_factory(cfg, "ecs")
        # The connection's endpoint_url is not checked when the client is built, only when it first sends.
        valid_endpoint_url(getattr(getattr(client, "meta", None), "endpoint_url", None))
    except Exception as exc:
        if error_code(exc) == "NoRegionError":
            return (
                "AWS Region",
                "no Region is set for the executor or its connection, and the environment names none",
                f"set region_name in [{SECTION}] (e.g. region_name = us-east-1), or region_name in the extra of "
                f"the Airflow connection {cfg.conn_id!r}, or AWS_DEFAULT_REGION",
            )
        if isinstance(exc, ValueError):
            return (
                "endpoint",
                str(exc),
                f"fix endpoint_url in [{SECTION}] or in the extra of the Airflow connection {cfg.conn_id!r}: "
                "an http(s) URL such as http://127.0.0.1:4566, or unset for AWS",
            )
        if isinstance(exc, AWS_ERRORS):
            return (
                f"AWS client (connection {cfg.conn_id!r})",
                f"{error_code(exc)}: {error_message(exc)}",
                f"check the Airflow connection {cfg.conn_id!r} and [{SECTION}] region_name and endpoint_url",
            )
        if type(exc).__name__ == "AirflowNotFoundException":
            return (
                f"connection {cfg.conn_id!r}",
                str(exc),
                f"define the Airflow connection {cfg.conn_id!r}, or set [{SECTION}] conn_id to one that exists",
            )
        raise
    return None


def _unreachable(cfg: ExecutorConfig, exc: Exception) -> tuple[str, str]:
    """Detail and fix for an endpoint that did not answer at all (refused, timed out, unknown host)."""
    where = cfg.endpoint_url or "AWS's endpoint for the Region"
    fix = (
        "start the emulator there (python -m ecs_emulator) or fix endpoint_url"
        if cfg.endpoint_url
        else "check the network, proxy settings and region_name"
    )
    return f"nothing answers at {where}: {error_code(exc)}: {error_message(exc)}", fix


def connection_problems(cfg: ExecutorConfig, client_factory: Callable[..., Any]) -> list[str]:
    """The scheduler's first check, run even with check_health_on_startup off: can a client be built at all."""
    problem = client_problem(cfg, client_factory)
    return [] if problem is None else [f"{problem[0]}: {problem[1]}; fix: {problem[2]}"]


def _matches_task_changes(rule: Mapping[str, Any], cluster: str) -> bool:
    """The rule's pattern selects ECS Task State Change events of this cluster (or of every cluster)."""
    try:
        pattern = json.loads(rule.get("EventPattern") or "{}")
    except ValueError:
        return False
    if "aws.ecs" not in (pattern.get("source") or []):
        return False
    if "ECS Task State Change" not in (pattern.get("detail-type") or ["ECS Task State Change"]):
        return False
    clusters = (pattern.get("detail") or {}).get("clusterArn")
    if clusters is None:
        return True
    return any(c == cluster or str(c).endswith(f":cluster/{cluster}") for c in clusters)


def startup_problems(cfg: ExecutorConfig, client_factory: Callable[..., Any]) -> list[str]:
    """The start-up checks' failures, each with its fix; empty when all is well."""
    items = Checker(client_factory, None).startup(cfg)
    return [f"{i.what}: {i.detail}" + (f"; fix: {i.fix}" if i.fix else "") for i in items if i.status == "fail"]


def refuse_quietly(exc: ConfigError) -> None:
    """Make Python end the process on this configuration error with its list of problems, not a traceback.

    Only this exception object is treated so; any other uncaught exception keeps its traceback.
    """
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if value is exc:
            sys.stderr.write(f"airflow-ecs-executor: {exc}\n")
            return
        previous(kind, value, tb)

    sys.excepthook = hook


MARKS: Mapping[Status, str] = {"ok": "[ok]  ", "fail": "[FAIL]", "warn": "[warn]", "info": "[info]"}


def render(items: list[Item]) -> str:
    """The checklist as text, one item per line, each failure with its fix."""
    lines = []
    for item in items:
        line = f"{MARKS[item.status]} {item.what}" + (f": {item.detail}" if item.detail else "")
        lines.append(line)
        if item.fix and item.status in ("fail", "warn"):
            lines.append(f"        fix: {item.fix}")
    failed = sum(1 for i in items if i.status == "fail")
    lines.append("")
    lines.append("all checks passed" if not failed else f"{failed} check(s) failed")
    return "\n".join(lines)
