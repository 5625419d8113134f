"""``airflow ecs-executor check``: a checklist of a live set-up, each failure with its fix.

What it checks, in order: the ``[ecs_executor]`` section; that AWS answers and who the credentials are
(sts:GetCallerIdentity); the cluster; per task definition in use (the section's and each queue
profile's): the revision is ACTIVE and has the container, its awslogs settings, that the log group
exists and that logs:GetLogEvents is allowed on it, the network settings, the capacity the RunTask
request will ask for (EC2 without container instances), the task subnets and security groups (one VPC,
a way to the image registry, the logs and the API server: EC2 Describe* calls), and the API server URL
the *task* gets (its task definition's environment, as RunTask overrides it); then the permissions the
executor needs (DescribeTasks and StopTask probed; RunTask, PassRole, TagResource and GetLogEvents
simulated with iam:SimulatePrincipalPolicy for the caller's own role or user), sealed workloads and
tracking by ECS events. docs/setup.md, "Check the set-up", lists each item with its fix.

Every probe is read-only or answers before doing anything (StopTask of a task ID that cannot exist,
GetLogEvents of a stream that cannot exist, a simulation): running the check never starts, stops or
changes anything in the account.
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

from airflow_ecs_executor.aws.capacity import build_launch
from airflow_ecs_executor.aws.requests import RequestError, WorkloadSpec
from airflow_ecs_executor.aws.sealing import launch_context
from airflow_ecs_executor.aws.session import AWS_ERRORS, client_config, error_code, error_message, is_service_error
from airflow_ecs_executor.aws.simulation import principal_arn, simulate
from airflow_ecs_executor.aws.vpc import ECR_ENDPOINTS, NetworkView, describe_network
from airflow_ecs_executor.config import SECTION, ConfigError, ExecutorConfig, parse_config, valid_endpoint_url

Status = Literal["ok", "fail", "warn", "info"]
_NO_SUCH_TASK = "0" * 32
_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException")
_CHECK_QUEUEING = "ecs-executor-check"
# PassRole of a task's roles is checked with iam:PassedToService = the service that will use them.
_TASK_ROLE_SERVICE = "ecs-tasks.amazonaws.com"


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
        self._caller_arn = ""
        self._cluster_info: Mapping[str, Any] = {}
        self._clients: dict[tuple[int, str], Any] = {}

    def _add(self, status: Status, what: str, detail: str = "", fix: str = "") -> None:
        self.items.append(Item(status, what, detail, fix))

    def _client(self, cfg: ExecutorConfig, service: str) -> Any:
        # One client per service and run: building one resolves the Airflow connection each time.
        key = (id(cfg), service)
        if key not in self._clients:
            self._clients[key] = self._factory(cfg, service, config=client_config(attempts=2, read_timeout=15))
        return self._clients[key]

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
        in_use: list[tuple[Mapping[str, Any], str]] = []
        api_checked = False
        for queue, definition, container in self._definitions(cfg):
            found = self._task_definition(cfg, ecs, queue, definition, container)
            if found is None:
                continue
            in_use.append((found, container))
            self._awslogs(cfg, found, container, queue)
            self._network(cfg, found, queue)
            request = self._request(cfg, queue)
            if request is not None:
                self._capacity(request, queue)
                self._vpc(cfg, found, container, request, queue)
                api_checked = self._task_api_server(cfg, found, container, request, queue) or api_checked
        self._permissions(cfg, ecs)
        self._simulate(cfg, in_use)
        self._sealing(cfg, ecs)
        self._task_events(cfg)
        if not api_checked:
            self._api_server(cfg)
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
        self._caller_arn = str(identity.get("Arn", ""))
        self._add("ok", f"credentials (connection {cfg.conn_id!r})", self._caller_arn)
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
        self._cluster_info = active[0]
        self._add("ok", f"cluster {cfg.cluster}", f"ACTIVE, capacity providers {sorted(providers) or 'none'}")
        return True

    @staticmethod
    def _definitions(cfg: ExecutorConfig) -> list[tuple[str | None, str, str]]:
        out: list[tuple[str | None, str, str]] = [(None, cfg.task_definition, cfg.container_name)]
        for queue, profile in sorted(cfg.queue_profiles.items()):
            runs_apart = (
                profile.launch_type,
                profile.capacity_provider_strategy,
                profile.subnets,
                profile.security_groups,
            )
            if profile.task_definition or profile.container_name or any(runs_apart):
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
            detail = f"{error_code(exc)}: {error_message(exc)}"
            if error_code(exc) == "ClientException" and ":" not in ref:
                # A bare family names its latest ACTIVE revision; none when all are deregistered (ECS API model).
                detail += f" (family {ref} has no ACTIVE revision: none registered, or all deregistered)"
            self._add("fail", label, detail, "register it (deploy/cloudformation.yaml does) or fix task_definition")
            return None
        if definition.get("status") == "INACTIVE":
            # A deregistered revision starts no new task (ECS API model, DeregisterTaskDefinition).
            self._add(
                "fail",
                label,
                f"revision {definition.get('revision')} is INACTIVE (deregistered): ECS starts no new task from it",
                f"name an ACTIVE revision, or the family alone ({definition.get('family')}) for its latest "
                "ACTIVE revision, in task_definition",
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
        self._get_log_events(cfg, group, f"{options['awslogs-stream-prefix']}/{container}/{_NO_SUCH_TASK}")

    def _get_log_events(self, cfg: ExecutorConfig, group: str, stream: str) -> None:
        """GetLogEvents of a stream no task has: allowed -> ResourceNotFoundException; denied -> AccessDenied.

        IAM authorises a request before the service looks for the stream, so a missing stream answers only a
        caller that is allowed. The UI's log reader (the API server) needs the same permission.
        """
        label = f"permission logs:GetLogEvents on {group}"
        try:
            self._client(cfg, "logs").get_log_events(logGroupName=group, logStreamName=stream, limit=1)
        except AWS_ERRORS as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                self._add("ok", label)
            elif code in _DENIED:
                self._add(
                    "fail",
                    label,
                    f"{code}: {error_message(exc)}: task logs will not show in the Airflow UI",
                    f"allow logs:GetLogEvents on arn:aws:logs:<region>:<account>:log-group:{group}:log-stream:* "
                    "for the scheduler and the API server (a log group ARN ending in ':*' does not match streams)",
                )
            else:
                self._add("warn", label, f"{code}: {error_message(exc)}")
            return
        self._add("ok", label)

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

    # -- what a launch asks for: capacity, VPC, the task's API server URL ------------------------
    def _request(self, cfg: ExecutorConfig, queue: str | None) -> Mapping[str, Any] | None:
        """The RunTask request the executor would send for a workload of ``queue`` (built, never sent)."""
        spec = WorkloadSpec(
            workload_id=_CHECK_QUEUEING,
            queueing=_CHECK_QUEUEING,
            command=["true"],
            queue=queue,
            executor_config={},
            tags={},
        )
        try:
            return build_launch(cfg, spec, attempt=1, on_demand=False)
        except RequestError as exc:
            label = "RunTask request" + (f" (queue {queue!r})" if queue else "")
            self._add("fail", label, str(exc), "fix run_task_kwargs or the queue profile so the request is valid")
            return None

    def _capacity(self, request: Mapping[str, Any], queue: str | None) -> None:
        """EC2 capacity: the cluster has container instances for a launch type of EC2 (or EXTERNAL).

        RunTask with launch type EC2 (also what it uses with no launch type, no strategy and no cluster default
        strategy) on a cluster without container instances raises InvalidParameterException "No Container
        Instances were found in your cluster" (ECS API model, RunTask; AWS's "Amazon ECS launch types").
        """
        label = "capacity" + (f" (queue {queue!r})" if queue else "")
        cluster = self._cluster_info
        instances = int(cluster.get("registeredContainerInstancesCount") or 0)
        strategy = request.get("capacityProviderStrategy") or []
        launch_type = request.get("launchType")
        if not launch_type and not strategy:
            strategy = cluster.get("defaultCapacityProviderStrategy") or []
            launch_type = None if strategy else "EC2"
        if launch_type in ("EC2", "EXTERNAL"):
            if instances == 0:
                self._add(
                    "fail",
                    label,
                    f"launch type {launch_type} on cluster {cluster.get('clusterName')}, which has no registered "
                    "container instances: every RunTask fails with 'No Container Instances were found in your cluster'",
                    "register container instances (an Auto Scaling group of ECS-optimised instances joined to the "
                    "cluster), or set launch_type = FARGATE or a capacity_provider_strategy",
                )
            else:
                self._add("ok", label, f"launch type {launch_type}, {instances} container instance(s) registered")
            return
        providers = [str(item.get("capacityProvider")) for item in strategy]
        on_instances = [p for p in providers if not p.startswith("FARGATE")]
        if on_instances and instances == 0:
            self._add(
                "warn",
                label,
                f"capacity providers {on_instances} run on EC2 instances and the cluster has none registered: tasks "
                "wait in PROVISIONING until managed scaling starts one, and never start without it",
                "turn on managed scaling for the capacity provider, or give its Auto Scaling group a desired "
                "capacity above 0",
            )
            return
        where = f"launch type {launch_type}" if launch_type else f"capacity providers {providers}"
        self._add("ok", label, where)

    def _vpc(
        self,
        cfg: ExecutorConfig,
        definition: Mapping[str, Any],
        container: str,
        request: Mapping[str, Any],
        queue: str | None,
    ) -> None:
        """The awsvpc subnets and security groups: one VPC, and a way out to the image registry and the logs."""
        vpc_cfg = (request.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        subnets = [str(s) for s in vpc_cfg.get("subnets") or []]
        if not subnets:
            return
        label = "task subnets" + (f" (queue {queue!r})" if queue else "")
        groups = [str(g) for g in vpc_cfg.get("securityGroups") or []]
        region = self._region(cfg)
        try:
            view = describe_network(self._client(cfg, "ec2"), subnets, groups, region)
        except AWS_ERRORS as exc:
            self._add(
                "info",
                label,
                f"not checked: {error_code(exc)}: {error_message(exc)}",
                "allow ec2:DescribeSubnets, ec2:DescribeSecurityGroups, ec2:DescribeRouteTables and "
                "ec2:DescribeVpcEndpoints to check them",
            )
            return
        public_ip = vpc_cfg.get("assignPublicIp") == "ENABLED"
        for problem, fix in _vpc_problems(view, groups):
            self._add("fail", label, problem, fix)
        if view.missing_subnets or view.missing_groups or len({s.vpc_id for s in view.subnets}) > 1:
            return
        if set(view.group_vpcs.values()) - {s.vpc_id for s in view.subnets}:
            return
        image = next(
            (str(c.get("image", "")) for c in definition.get("containerDefinitions", []) if c.get("name") == container),
            "",
        )
        for subnet in view.subnets:
            warning = _egress_warning(subnet.egress, public_ip, view.endpoints.get(subnet.vpc_id, frozenset()), image)
            if warning is not None:
                self._add("warn", f"{label}: {subnet.subnet_id}", *warning)
            else:
                self._add("ok", f"{label}: {subnet.subnet_id}", f"{subnet.vpc_id}, way out: {subnet.egress}")

    def _region(self, cfg: ExecutorConfig) -> str:
        arn = str(self._cluster_info.get("clusterArn") or "")
        parts = arn.split(":")
        return parts[3] if len(parts) > 3 else (cfg.region_name or "")

    def _task_api_server(
        self,
        cfg: ExecutorConfig,
        definition: Mapping[str, Any],
        container: str,
        request: Mapping[str, Any],
        queue: str | None,
    ) -> bool:
        """The API server URL the task gets: its container environment, as the RunTask overrides leave it.

        docker/entrypoint.sh reads AIRFLOW__CORE__EXECUTION_API_SERVER_URL, else derives it from
        AIRFLOW__API__BASE_URL. False when the task definition sets neither (the scheduler's own URL is
        then checked, which is what a local emulator's tasks, running on this machine, get).
        """
        url = _task_url(definition, container, request)
        if url is None:
            return False
        where = f"task definition {definition.get('family')}:{definition.get('revision')}, container {container!r}"
        label = f"API server URL for tasks ({where})" + (f" (queue {queue!r})" if queue else "")
        self._judge_api_url(cfg, label, url)
        return True

    def _simulate(self, cfg: ExecutorConfig, in_use: list[tuple[Mapping[str, Any], str]]) -> None:
        """RunTask, PassRole, TagResource and GetLogEvents, simulated for the caller's own user or role.

        None of them can be probed without side effects (or, for GetLogEvents, on a stream of this cluster's
        tasks); iam:SimulatePrincipalPolicy evaluates the caller's identity policies and changes nothing. When
        the caller may not simulate, that is a note, never a failure.
        """
        label = "simulated permissions"
        iam = self._client(cfg, "iam")
        principal = principal_arn(self._caller_arn, iam) if self._caller_arn else None
        if principal is None:
            self._add(
                "info",
                label,
                f"could not simulate: {self._caller_arn or 'no caller'} is not an IAM user or role",
            )
            return
        for action, resource, context in _simulated_calls(cfg, self._cluster_info, in_use):
            try:
                result = simulate(iam, principal, action, resource, context)
            except AWS_ERRORS as exc:
                fix = f"allow the caller iam:SimulatePrincipalPolicy on its own ARN ({principal}) to check these"
                self._add(
                    "info",
                    label,
                    f"could not simulate for {principal}: {error_code(exc)}: {error_message(exc)}",
                    fix if error_code(exc) in _DENIED else "",
                )
                return
            what = f"permission {action} (simulated)"
            if result.allowed:
                self._add("ok", what, resource)
                continue
            given = ", ".join(f"{k} = {v}" for k, v in (context or {}).items())
            self._add(
                "fail",
                what,
                f"{result.decision} for {principal} on {resource}"
                + (f" (context: {given})" if given else "")
                + (
                    f"; conditions on keys not in the request: {list(result.missing_context)}"
                    if result.missing_context
                    else ""
                ),
                f"allow {action} on {resource} for {principal}"
                + (f" with {given}" if given else "")
                + " (deploy/cloudformation.yaml's SchedulerPolicy does)",
            )

    def _permissions(self, cfg: ExecutorConfig, ecs: Any) -> None:
        """Probe what the executor calls and can be probed without side effects (its tracker and its stopper)."""
        probes: list[tuple[str, Callable[[], Any], tuple[str, ...]]] = [
            ("ecs:DescribeTasks", lambda: ecs.describe_tasks(cluster=cfg.cluster, tasks=[_NO_SUCH_TASK]), ()),
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

    def _api_server(self, cfg: ExecutorConfig) -> None:
        """No task definition sets the URL: tasks get what their image's Airflow configuration says."""
        url = self._api_server_url
        label = "API server URL for tasks ([core] execution_api_server_url)"
        if not url:
            self._add(
                "fail",
                label,
                "not set here nor in the task definition: tasks do not know where to report",
                "set AIRFLOW__CORE__EXECUTION_API_SERVER_URL in the task definition's container environment to the "
                "API server's URL as seen from the VPC (deploy/cloudformation.yaml's ExecutionApiServerUrl)",
            )
            return
        if not _is_local(cfg):
            self._add(
                "warn",
                "API server URL for tasks",
                "the task definition sets neither AIRFLOW__CORE__EXECUTION_API_SERVER_URL nor AIRFLOW__API__BASE_URL: "
                "tasks use their image's configuration (the image in docker/ refuses to start without it)",
                "set AIRFLOW__CORE__EXECUTION_API_SERVER_URL in the task definition's container environment to the "
                "API server's URL as seen from the VPC (deploy/cloudformation.yaml's ExecutionApiServerUrl)",
            )
            return
        self._judge_api_url(cfg, label, url)

    def _judge_api_url(self, cfg: ExecutorConfig, label: str, url: str) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            self._add("fail", label, f"{url!r} is not an http(s) URL", "use e.g. https://airflow.internal/execution/")
            return
        if _is_loopback(parsed.hostname):
            if _is_local(cfg):
                self._add(
                    "warn",
                    label,
                    f"{url} is a loopback address: an ECS task reaches only itself there (fine with the local "
                    "emulator, whose tasks run on this machine)",
                    "use the API server's address inside the VPC (a load balancer or service discovery name)",
                )
            else:
                self._add(
                    "fail",
                    label,
                    f"{url} is a loopback address: an ECS task reaches only itself there, so every task fails",
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


def _is_local(cfg: ExecutorConfig) -> bool:
    """The endpoint is on this machine (the local emulator): its tasks run here, with this machine's network."""
    host = urllib.parse.urlparse(cfg.endpoint_url or "").hostname
    return host is not None and _is_loopback(host)


_URL_ENV = "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"
_BASE_URL_ENV = "AIRFLOW__API__BASE_URL"


def _task_url(definition: Mapping[str, Any], container: str, request: Mapping[str, Any]) -> str | None:
    """The task's API server URL: the container's environment with the RunTask overrides applied.

    As docker/entrypoint.sh reads it: AIRFLOW__CORE__EXECUTION_API_SERVER_URL, else
    {AIRFLOW__API__BASE_URL}/execution/. None when neither is set.
    """
    cdef: Mapping[str, Any] = next(
        (c for c in definition.get("containerDefinitions", []) if c.get("name") == container), {}
    )
    env = {str(e.get("name")): str(e.get("value", "")) for e in cdef.get("environment") or []}
    for override in (request.get("overrides") or {}).get("containerOverrides") or []:
        if override.get("name") == container:
            env.update({str(e.get("name")): str(e.get("value", "")) for e in override.get("environment") or []})
    if env.get(_URL_ENV):
        return env[_URL_ENV]
    if env.get(_BASE_URL_ENV):
        return f"{env[_BASE_URL_ENV].rstrip('/')}/execution/"
    return None


def _vpc_problems(view: NetworkView, groups: list[str]) -> list[tuple[str, str]]:
    """Subnets or security groups that do not exist, or not all in one VPC: RunTask fails for each task.

    "All specified subnets must be from the same VPC", and the security groups must be of that VPC (ECS API
    model, AwsVpcConfiguration).
    """
    problems: list[tuple[str, str]] = []
    if view.missing_subnets:
        problems.append((f"subnets {list(view.missing_subnets)} do not exist", "fix [ecs_executor] subnets"))
    if view.missing_groups:
        problems.append(
            (f"security groups {list(view.missing_groups)} do not exist", "fix [ecs_executor] security_groups")
        )
    vpcs = sorted({s.vpc_id for s in view.subnets})
    if len(vpcs) > 1:
        by_vpc = {v: [s.subnet_id for s in view.subnets if s.vpc_id == v] for v in vpcs}
        problems.append(
            (f"the subnets are in different VPCs ({by_vpc}): RunTask fails", "name subnets of one VPC in subnets")
        )
    elif vpcs:
        strays = {g: v for g, v in view.group_vpcs.items() if v != vpcs[0]}
        if strays:
            problems.append(
                (
                    f"security groups {strays} are not in the subnets' VPC {vpcs[0]}: RunTask fails",
                    f"name security groups of {vpcs[0]} in security_groups",
                )
            )
    return problems


def _egress_warning(egress: str, public_ip: bool, endpoints: frozenset[str], image: str) -> tuple[str, str] | None:
    """Why a task in this subnet may not reach its image, its log group or the API server; None when it can."""
    if egress == "nat" or (egress == "internet-gateway" and public_ip):
        return None
    on_ecr = ".dkr.ecr." in image
    missing = [e for e in ECR_ENDPOINTS if e not in endpoints]
    if on_ecr and not missing:
        return None  # image pulls and logs through VPC endpoints; the API server is inside the VPC or not
    if egress == "internet-gateway":
        why = "its route to the internet is an internet gateway but tasks get no public IP (assign_public_ip off)"
        fix = "set assign_public_ip = true, or use private subnets with a NAT gateway"
    else:
        why = "its route table has no route to the internet (no internet gateway, no NAT)"
        fix = "add a NAT gateway route (0.0.0.0/0) to the subnet's route table"
    endpoint_fix = f", or VPC endpoints for {', '.join(missing)}" if on_ecr else ""
    return (
        f"{why}: tasks cannot pull {image or 'their image'} (CannotPullContainerError) nor ship logs, and reach "
        "the API server only if it is inside the VPC",
        fix + endpoint_fix + " (docs/setup.md, 'Network')",
    )


def _simulated_calls(
    cfg: ExecutorConfig, cluster: Mapping[str, Any], in_use: list[tuple[Mapping[str, Any], str]]
) -> list[tuple[str, str, dict[str, str]]]:
    """(action, resource, request context) of the calls the executor makes that the check cannot probe."""
    cluster_arn = str(cluster.get("clusterArn") or "")
    parts = cluster_arn.split(":")
    partition, region, account = (parts[1], parts[3], parts[4]) if len(parts) > 4 else ("aws", "", "")
    calls: list[tuple[str, str, dict[str, str]]] = []
    seen: set[tuple[str, str]] = set()

    def add(action: str, resource: str, context: dict[str, str]) -> None:
        if resource and (action, resource) not in seen:
            seen.add((action, resource))
            calls.append((action, resource, context))

    for definition, container in in_use:
        add("ecs:RunTask", str(definition.get("taskDefinitionArn") or ""), {"ecs:cluster": cluster_arn})
        for key in ("taskRoleArn", "executionRoleArn"):
            add("iam:PassRole", str(definition.get(key) or ""), {"iam:PassedToService": _TASK_ROLE_SERVICE})
        cdef: Mapping[str, Any] = next(
            (c for c in definition.get("containerDefinitions", []) if c.get("name") == container), {}
        )
        options = (cdef.get("logConfiguration") or {}).get("options") or {}
        if options.get("awslogs-group") and options.get("awslogs-stream-prefix"):
            group_region = options.get("awslogs-region") or region
            stream = f"{options['awslogs-stream-prefix']}/{container}/{_NO_SUCH_TASK}"
            add(
                "logs:GetLogEvents",
                f"arn:{partition}:logs:{group_region}:{account}:log-group:{options['awslogs-group']}:log-stream:{stream}",
                {},
            )
    # The executor tags every task at launch (RunTask with tags), which IAM authorises as ecs:TagResource with
    # ecs:CreateAction = RunTask (ECS developer guide, "Grant permission to tag resources on creation").
    task = f"arn:{partition}:ecs:{region}:{account}:task/{cluster.get('clusterName') or cfg.cluster}/{_NO_SUCH_TASK}"
    add("ecs:TagResource", task, {"ecs:CreateAction": "RunTask"})
    return calls


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
