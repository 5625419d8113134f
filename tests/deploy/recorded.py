"""Calls recorded by the emulator's request log, as IAM would see them in a deployment of the template.

The emulator's request log (ecs_emulator/requestlog.py) records every AWS request of an end-to-end run with the
principal that signed it: the devstack's ``scheduler``, ``api-server`` (its log reader), ``dag-processor`` and
``triggerer`` keys, a task's role credentials (``task``), and the emulator's own key (``emulator``: the devstack
setting up ECS, KMS, SQS and EventBridge as an administrator would, and the tests looking on).

``iam_calls`` turns one recorded request into the IAM authorisations AWS makes for it (RunTask is also
``ecs:TagResource`` on the tasks it starts and ``iam:PassRole`` of each role it passes), with the emulator's
names (Region, cluster, family, log group, roles, key, queue, rule) replaced by the deployment's, one by one
through ``Names``. A recorded action this module does not know, or a resource name the mapping does not list,
raises ``Unmapped``: a new call the product makes cannot slip through unevaluated.

Not recorded, so not evaluated here: what ECS does itself with the execution role (pulling the image, writing
awslogs; the devstack's emulator does both without AWS calls). tests/deploy/test_policies.py evaluates the
execution role against a hand-made list of those calls.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack import stack as devstack
from tests.deploy import deployment
from tests.deploy.iam import Call, allowed
from tests.deploy.render import Stack

EMULATOR_REGION, EMULATOR_ACCOUNT = "us-east-1", "123456789012"
ECS_TASKS = "ecs-tasks.amazonaws.com"
# Principals of a recorded run whose calls are evaluated, and the role each stands for in the deployment.
ROLE_OF_PRINCIPAL = {
    "scheduler": deployment.PARAMETERS["SchedulerRoleName"],
    "api-server": deployment.PARAMETERS["ApiServerRoleName"],
}
# ... and whose calls are not: the emulator's own key is the administrator's (set-up and tests).
NOT_EVALUATED = {"emulator": "the administrator: the devstack's set-up and the tests"}


class Unmapped(Exception):
    """A recorded call (or a name in it) that this module cannot translate: add it, with its IAM action."""


@dataclass(frozen=True)
class Names:
    """The emulator's resource names and the deployed resources they stand for, each listed explicitly."""

    region: str
    account: str
    clusters: Mapping[str, str]  # emulator cluster name -> deployed cluster name
    families: Mapping[str, str]  # emulator task definition family -> deployed family
    log_groups: Mapping[str, str]  # emulator log group -> deployed log group
    roles: Mapping[str, str]  # emulator role ARN -> deployed role ARN
    keys: Mapping[str, str]  # emulator KeyId (alias, ID or ARN) -> deployed key ARN; "" for a Decrypt's key
    queues: Mapping[str, str]  # emulator queue name -> deployed queue ARN
    rules: Mapping[str, str]  # emulator rule name -> deployed rule ARN

    def _one(self, table: Mapping[str, str], name: str, what: str) -> str:
        if name not in table:
            raise Unmapped(f"the mapping of emulator to deployed names has no {what} {name!r}")
        return table[name]

    def cluster_arn(self, ref: str | None) -> str:
        name = (ref or "default").rsplit("/", 1)[-1]
        return f"arn:aws:ecs:{self.region}:{self.account}:cluster/{self._one(self.clusters, name, 'cluster')}"

    def task_arn(self, ref: str, cluster: str | None) -> str:
        parts = ref.split(":task/", 1)[-1].split("/")  # an ARN's "cluster/id", or a bare ID
        task_id = parts[-1]
        cluster_name = parts[0] if len(parts) == 2 else (cluster or "default").rsplit("/", 1)[-1]
        deployed = self._one(self.clusters, cluster_name, "cluster")
        return f"arn:aws:ecs:{self.region}:{self.account}:task/{deployed}/{task_id}"

    def task_definition_arn(self, arn: str) -> str:
        family, _, revision = arn.split(":task-definition/", 1)[-1].partition(":")
        deployed = self._one(self.families, family, "task definition family")
        return f"arn:aws:ecs:{self.region}:{self.account}:task-definition/{deployed}:{revision or '1'}"

    def log_stream_arn(self, group: str, stream: str) -> str:
        deployed = self._one(self.log_groups, group, "log group")
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{deployed}:log-stream:{stream}"

    def role_arn(self, arn: str) -> str:
        return self._one(self.roles, arn, "role")

    def key_arn(self, key_id: str) -> str:
        return self._one(self.keys, key_id, "KMS key")

    def queue_arn(self, url_or_arn: str) -> str:
        name = urllib.parse.urlsplit(url_or_arn).path.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        return self._one(self.queues, name, "queue")

    def rule_arn(self, name: str) -> str:
        return self._one(self.rules, name, "rule")


def devstack_names(s: Stack) -> Names:
    """The devstack's names (devstack/stack.py) and what they stand for in the rendered template ``s``."""

    def arn(logical: str) -> str:
        return str(s.resolve({"Fn::GetAtt": [logical, "Arn"]}))

    queue = arn("TaskEventsQueue")
    rule_name = str(s.resolve({"Ref": "TaskEventsRule"}))
    return Names(
        region=s.region,
        account=s.account,
        clusters={devstack.CLUSTER: str(s.resolve({"Ref": "Cluster"}))},
        # The template creates one family; the devstack's other families (queue profiles "big", Fargate)
        # keep their names and are allowed by the statement docs/setup.md (section 7, "Queues") tells the
        # administrator to add (queue_profile_grants); any other family fails as unmapped.
        families={
            devstack.TASK_DEFINITION: str(s.values["TaskFamily"]),
            **{family: family for family in QUEUE_PROFILE_FAMILIES},
        },
        log_groups={devstack.LOG_GROUP: str(s.resolve({"Ref": "LogGroup"}))},
        roles={
            devstack.TASK_ROLE["taskRoleArn"]: arn("TaskRole"),
            devstack.EXECUTION_ROLE_ARN: arn("ExecutionRole"),
        },
        # The scheduler names the key by its alias ([ecs_executor] workload_kms_key); IAM authorises the key it
        # resolves to. A Decrypt names no key (the ciphertext does): the devstack creates one key only.
        keys={devstack.WORKLOAD_KEY_ALIAS: arn("WorkloadKey"), "": arn("WorkloadKey")},
        queues={devstack.EVENTS_QUEUE: queue},
        rules={devstack.EVENTS_QUEUE: f"arn:aws:events:{s.region}:{s.account}:rule/{rule_name}"},
    )


def _kms_context(resources: Mapping[str, Any]) -> dict[str, str]:
    context = resources.get("EncryptionContext") or {}
    return {f"kms:EncryptionContext:{k}": str(v) for k, v in context.items()}


def _ecs(action: str, r: Mapping[str, Any], names: Names) -> list[Call]:
    if action == "DescribeClusters":
        return [Call("ecs:DescribeClusters", names.cluster_arn(c)) for c in r.get("clusters") or ["default"]]
    if action == "DescribeTaskDefinition":  # no resource-level permissions: whichever family it names
        return [Call("ecs:DescribeTaskDefinition", "*")]
    cluster = names.cluster_arn(r.get("cluster"))  # the calls below act in one cluster: the ecs:cluster key
    on_cluster = {"ecs:cluster": cluster}
    if action == "RunTask":
        definition = r.get("taskDefinitionArn")
        if not definition:
            raise Unmapped(f"RunTask of an unknown task definition: {r.get('taskDefinitionUnresolved')}")
        calls = [Call("ecs:RunTask", names.task_definition_arn(definition), on_cluster)]
        if r.get("tagged"):  # tags on create: TagResource on each task started (ECS Developer Guide, tagging)
            calls += [
                Call("ecs:TagResource", names.task_arn(arn, r.get("cluster")), {"ecs:CreateAction": "RunTask"})
                for arn in r.get("startedTaskArns") or []
            ]
        calls += [
            Call("iam:PassRole", names.role_arn(role), {"iam:PassedToService": ECS_TASKS})
            for role in r.get("passedRoles") or []
        ]
        return calls
    if action == "DescribeTasks":
        return [Call("ecs:DescribeTasks", names.task_arn(t, r.get("cluster")), on_cluster) for t in r["tasks"]]
    if action == "StopTask":
        return [Call("ecs:StopTask", names.task_arn(r["task"], r.get("cluster")), on_cluster)]
    if action == "ListTasks":  # authorised on the cluster's container instances (Service Authorization Reference)
        name = cluster.rsplit("/", 1)[-1]
        return [
            Call("ecs:ListTasks", f"arn:aws:ecs:{names.region}:{names.account}:container-instance/{name}/*", on_cluster)
        ]
    raise Unmapped(f"ecs:{action}")


def iam_calls(record: Mapping[str, Any], names: Names) -> list[Call]:
    """The IAM authorisations one recorded request needs, on the deployed resources."""
    service, action, r = record["service"], record["action"], record.get("resources") or {}
    if service == "ecs":
        return _ecs(action, r, names)
    if service == "logs" and action == "GetLogEvents":
        group = r.get("logGroupName") or r.get("logGroupIdentifier", "").split(":log-group:", 1)[-1]
        return [Call("logs:GetLogEvents", names.log_stream_arn(group, r["logStreamName"]))]
    if service == "logs" and action == "DescribeLogGroups":
        return [Call("logs:DescribeLogGroups", f"arn:aws:logs:{names.region}:{names.account}:log-group:*")]
    if service == "kms" and action in ("GenerateDataKey", "Decrypt"):
        return [Call(f"kms:{action}", names.key_arn(r.get("KeyId", "")), _kms_context(r))]
    if service == "sqs" and action in ("ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "GetQueueAttributes"):
        # DeleteMessageBatch is authorised as sqs:DeleteMessage (SQS API reference).
        iam_action = "DeleteMessage" if action == "DeleteMessageBatch" else action
        return [Call(f"sqs:{iam_action}", names.queue_arn(r["QueueUrl"]))]
    if service == "events" and action == "DescribeRule":
        return [Call("events:DescribeRule", names.rule_arn(r["Name"]))]
    if service == "events" and action == "ListRuleNamesByTarget":
        names.queue_arn(r["TargetArn"])  # the target must be the known queue
        return [Call("events:ListRuleNamesByTarget", next(iter(names.rules.values())))]
    if service == "sts" and action == "GetCallerIdentity":
        return []  # needs no permission (STS API reference)
    raise Unmapped(f"{service}:{action}")


def read(path: Path) -> list[dict[str, Any]]:
    """The records of a request log."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class Verdict:
    """One recorded call of one principal, as IAM would decide it."""

    principal: str
    record: Mapping[str, Any]
    call: Call
    allowed: bool

    def __str__(self) -> str:
        return f"{self.principal}: {self.record['service']}:{self.record['action']} -> {self.call}"


def role_of(record: Mapping[str, Any], names: Names) -> str:
    """The deployed role name whose policies decide a recorded call, or ``Unmapped``."""
    principal = record["principal"]
    if principal == "task":
        return names.role_arn(record["role_arn"]).rsplit("/", 1)[-1]
    if principal in ROLE_OF_PRINCIPAL:
        return ROLE_OF_PRINCIPAL[principal]
    raise Unmapped(f"principal {principal!r} has no role in the deployment, yet made {record['action']}")


QUEUE_PROFILE_FAMILIES = (devstack.BIG_TASK_DEFINITION, devstack.FARGATE_TASK_DEFINITION)


def queue_profile_grants(principal: str, names: Names) -> list[dict[str, Any]]:
    """What docs/setup.md tells the administrator to add for queue profiles' task definitions (scheduler only)."""
    if principal != "scheduler":
        return []
    resources = [f"arn:aws:ecs:{names.region}:{names.account}:task-definition/{f}:*" for f in QUEUE_PROFILE_FAMILIES]
    statement = {
        "Effect": "Allow",
        "Action": "ecs:RunTask",
        "Resource": resources,
        "Condition": {"ArnEquals": {"ecs:cluster": names.cluster_arn(devstack.CLUSTER)}},
    }
    return [{"Version": "2012-10-17", "Statement": [statement]}]


def evaluated(records: Iterable[Mapping[str, Any]], s: Stack, names: Names) -> list[Verdict]:
    """Every recorded call of an evaluated principal, decided against that principal's policies in ``s``."""
    verdicts: list[Verdict] = []
    policies: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        principal = record.get("principal")
        if principal is None or principal in NOT_EVALUATED:
            continue  # refused before it was served (no verified signer), or the administrator
        role = role_of(record, names)
        documents = policies.setdefault(
            role, deployment.policies_attached_to(s, role) + queue_profile_grants(str(principal), names)
        )
        for call in iam_calls(record, names):
            verdicts.append(Verdict(principal, record, call, allowed(documents, call)))
    return verdicts
