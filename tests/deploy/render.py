"""Render deploy/cloudformation.yaml as CloudFormation would: parameters filled, intrinsic functions resolved.

Only what the template uses is implemented (Ref, Fn::GetAtt, Fn::Sub, Fn::If, Fn::Join, Fn::Equals, Fn::Not,
Fn::And, Fn::Or, Condition, AWS::NoValue); anything else raises, so a new function cannot slip through
unrendered. Physical IDs and attributes follow what CloudFormation returns for each resource type, including
the one that caught us: an AWS::Logs::LogGroup's ``Arn`` ends in ``:*``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "cloudformation.yaml"

_NO_VALUE = object()


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags turned into their long form ({"Fn::Sub": ...}, {"Ref": ...})."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _tagged)


def load_template() -> dict[str, Any]:
    return dict(yaml.load(TEMPLATE.read_text(), Loader=CfnLoader))


@dataclass
class Stack:
    """One deployment of the template: its parameters, Region, account and the stack's name."""

    parameters: Mapping[str, Any]
    region: str = "eu-west-1"
    account: str = "123456789012"
    partition: str = "aws"
    name: str = "airflow-ecs"
    template: dict[str, Any] = field(default_factory=load_template)

    def __post_init__(self) -> None:
        values: dict[str, Any] = {}
        for key, spec in self.template["Parameters"].items():
            if key in self.parameters:
                value = self.parameters[key]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise KeyError(f"parameter {key} has no default: give it a value")
            if spec["Type"] == "CommaDelimitedList" or spec["Type"].startswith("List<"):
                value = [v for v in str(value).split(",") if v] if isinstance(value, str) else list(value)
            else:
                value = str(value)
            values[key] = value
        unknown = set(self.parameters) - set(values)
        if unknown:
            raise KeyError(f"not parameters of the template: {sorted(unknown)}")
        self.values = values
        self.conditions = {name: self._condition(body) for name, body in self.template.get("Conditions", {}).items()}

    # Physical IDs (Ref) and attributes (Fn::GetAtt) as CloudFormation returns them.
    def _physical_id(self, logical: str) -> Any:
        resource = self.template["Resources"][logical]
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::ECS::Cluster":
            return self.resolve(props["ClusterName"])
        if kind == "AWS::Logs::LogGroup":
            return self.resolve(props["LogGroupName"])
        if kind == "AWS::IAM::Role":
            return f"{self.name}-{logical}-1A2B3C4D5E6F"
        if kind == "AWS::IAM::ManagedPolicy":
            return f"arn:{self.partition}:iam::{self.account}:policy/{self.name}-{logical}-1A2B3C4D5E6F"
        if kind == "AWS::EC2::SecurityGroup":
            return "sg-0123456789abcdef0"
        if kind == "AWS::KMS::Key":  # Ref: the key ID
            return "1234abcd-12ab-34cd-56ef-1234567890ab"
        if kind == "AWS::KMS::Alias":
            return self.resolve(props["AliasName"])
        if kind == "AWS::ECS::TaskDefinition":
            family = self.resolve(props["Family"])
            return f"arn:{self.partition}:ecs:{self.region}:{self.account}:task-definition/{family}:1"
        if kind == "AWS::SQS::Queue":  # Ref is the queue URL (AWS::SQS::Queue return values)
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.name}-{logical}-1A2B3C4D5E6F"
        if kind == "AWS::Events::Rule":  # Ref is the rule's name
            return f"{self.name}-{logical}-1A2B3C4D5E6F"
        raise NotImplementedError(f"Ref of a {kind}")

    def _attribute(self, logical: str, attribute: str) -> str:
        kind = self.template["Resources"][logical]["Type"]
        name = self._physical_id(logical)
        arn = {
            "AWS::ECS::Cluster": f"arn:{self.partition}:ecs:{self.region}:{self.account}:cluster/{name}",
            # CloudFormation's LogGroup Arn carries a trailing ":*" (AWS::Logs::LogGroup return values).
            "AWS::Logs::LogGroup": f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:{name}:*",
            "AWS::IAM::Role": f"arn:{self.partition}:iam::{self.account}:role/{name}",
            "AWS::KMS::Key": f"arn:{self.partition}:kms:{self.region}:{self.account}:key/{name}",
            "AWS::SQS::Queue": f"arn:{self.partition}:sqs:{self.region}:{self.account}:{str(name).rsplit('/', 1)[-1]}",
            "AWS::Events::Rule": f"arn:{self.partition}:events:{self.region}:{self.account}:rule/{name}",
        }
        if attribute != "Arn" or kind not in arn:
            raise NotImplementedError(f"GetAtt {logical}.{attribute}")
        return arn[kind]

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": self.partition,
            "AWS::StackName": self.name,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.values:
            return self.values[name]
        return self._physical_id(name)

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key in variables:
                return str(self.resolve(variables[key]))
            if "." in key:
                logical, attribute = key.split(".", 1)
                return self._attribute(logical, attribute)
            value = self._ref(key)
            if not isinstance(value, str):
                raise TypeError(f"${{{key}}} is not a string in Fn::Sub")
            return value

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def _condition(self, body: Any) -> bool:
        value = self.resolve(body)
        if not isinstance(value, bool):
            raise TypeError(f"condition is not a boolean: {body!r}")
        return value

    def resolve(self, node: Any) -> Any:
        """The value of a template node after CloudFormation's intrinsic functions."""
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Condition":
                return self.conditions[arg]
            if key == "Fn::GetAtt":
                return self._attribute(arg[0], arg[1])
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self._sub(arg[0], arg[1])
                return self._sub(arg, {})
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.conditions[name] else no)
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.resolve(arg[1]))
            if key == "Fn::Equals":
                left, right = (self.resolve(v) for v in arg)
                return bool(left == right)
            if key == "Fn::Not":
                return not self._condition(arg[0])
            if key == "Fn::And":
                return all(self._condition(v) for v in arg)
            if key == "Fn::Or":
                return any(self._condition(v) for v in arg)
            if key.startswith("Fn::"):
                raise NotImplementedError(key)
        out = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not _NO_VALUE}

    def properties(self, logical: str) -> dict[str, Any]:
        resource = self.template["Resources"][logical]
        if "Condition" in resource and not self.conditions[resource["Condition"]]:
            raise LookupError(f"{logical} is not created with these parameters")
        return dict(self.resolve(resource.get("Properties", {})))

    def output(self, name: str) -> Any:
        return self.resolve(self.template["Outputs"][name]["Value"])
