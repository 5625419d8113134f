"""IAM's evaluation of identity policies, with moto's evaluator for actions and resources.

Actions and resources are matched by moto's IAM policy evaluator (``moto.iam.access_control``). moto evaluates
only ``StringEquals`` conditions and treats a context key missing from the request as a match, where IAM treats
it as no match; the condition operators these policies use are therefore evaluated here, with IAM's rules, and
a policy using any other operator fails the test rather than being waved through.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult


@dataclass(frozen=True)
class Call:
    """One AWS call as IAM sees it: the action, the resource it names, and the request context keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.action} on {self.resource} {dict(self.context) or ''}"


def _arn_like(pattern: str, value: str) -> bool:
    # ArnLike/ArnEquals compare each of the six colon-separated parts; '*' and '?' are wildcards within a part
    # (the last part, the resource, may itself contain colons).
    want, got = pattern.split(":", 5), value.split(":", 5)
    return len(want) == len(got) == 6 and all(fnmatch.fnmatchcase(g, w) for w, g in zip(want, got, strict=True))


_OPERATORS = {
    "StringEquals": lambda want, got: want == got,
    "StringLike": lambda want, got: fnmatch.fnmatchcase(got, want),
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
}


def conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, keys in conditions.items():
        assert operator in _OPERATORS, f"condition operator {operator} is not evaluated by this test: add it"
        for key, wanted in keys.items():
            if key not in context:  # IAM: a key absent from the request context matches nothing
                return False
            values = wanted if isinstance(wanted, list) else [wanted]
            if not any(_OPERATORS[operator](str(v), context[key]) for v in values):
                return False
    return True


def allowed(policies: Sequence[Mapping[str, Any]], call: Call) -> bool:
    """IAM's identity-policy logic: an explicit Deny wins, else any Allow whose conditions hold, else denied."""
    verdict = False
    for policy in policies:
        statements = policy["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            bare = {k: v for k, v in statement.items() if k != "Condition"}
            matched = IAMPolicyStatement(bare).is_action_permitted(call.action, call.resource)
            if matched is PermissionResult.NEUTRAL:
                continue
            if not conditions_hold(statement.get("Condition", {}), call.context):
                continue
            if statement["Effect"] == "Deny":
                return False
            verdict = True
    return verdict
