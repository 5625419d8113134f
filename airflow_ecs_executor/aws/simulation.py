"""IAM's policy simulator for the calls the executor makes that cannot be probed without side effects.

``iam:SimulatePrincipalPolicy`` evaluates the identity policies of a user or role for an action on a
resource, with the request context keys given, and changes nothing
(https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html). The simulated
principal is the caller's own: ``sts:GetCallerIdentity`` names an assumed-role session
(``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``), whose policies are the role's
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

_ARN_PARTS: Final = 6


@dataclass(frozen=True)
class Simulated:
    """One simulated call: IAM's decision (allowed, explicitDeny, implicitDeny) and the context keys it lacked."""

    action: str
    resource: str
    decision: str
    missing_context: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"


def principal_arn(caller_arn: str, iam: Any | None = None) -> str | None:
    """The IAM user or role whose policies apply to ``caller_arn``; None for the root user or a federated user.

    An assumed-role ARN names the role without its path; with an ``iam`` client the role's full ARN is
    asked (iam:GetRole), and when that is not allowed the role is assumed to have the default path ``/``.
    """
    parts = caller_arn.split(":", 5)
    if len(parts) != _ARN_PARTS:
        return None
    partition, service, account, resource = parts[1], parts[2], parts[4], parts[5]
    if service == "iam" and resource.startswith(("user/", "role/")):
        return caller_arn
    if service != "sts" or not resource.startswith("assumed-role/"):
        return None
    role = resource.split("/")[1]
    if iam is not None:
        try:
            return str(iam.get_role(RoleName=role)["Role"]["Arn"])
        except (ClientError, BotoCoreError):
            pass
    return f"arn:{partition}:iam::{account}:role/{role}"


def simulate(
    iam: Any, principal: str, action: str, resource: str, context: Mapping[str, str] | None = None
) -> Simulated:
    """Simulate one action on one resource for ``principal``; botocore errors propagate."""
    entries = [
        {"ContextKeyName": key, "ContextKeyValues": [value], "ContextKeyType": "string"}
        for key, value in (context or {}).items()
    ]
    response = iam.simulate_principal_policy(
        PolicySourceArn=principal, ActionNames=[action], ResourceArns=[resource], ContextEntries=entries
    )
    (result,) = response["EvaluationResults"]
    return Simulated(
        action=action,
        resource=resource,
        decision=str(result["EvalDecision"]),
        missing_context=tuple(result.get("MissingContextValues") or ()),
    )
