"""IAM ``SimulatePrincipalPolicy`` for the principals in moto's IAM backend, and a scheduler identity to simulate.

moto serves IAM but not its policy simulator. This module answers ``SimulatePrincipalPolicy`` by evaluating
the identity policies that moto holds for the principal (a role's inline and attached policies; a user's,
with its groups') with IAM's identity-policy logic: an explicit Deny wins, else an Allow whose conditions
hold, else an implicit deny. Statements and conditions are matched by moto's own evaluator
(``moto.iam.access_control.IAMPolicyStatement``) with the conditions taken out and evaluated here, because
moto treats a condition key missing from the request as a match where IAM treats it as no match.

Stricter than IAM, never kinder: what this evaluator cannot judge faithfully is refused with an error
naming it (a permissions boundary, ``NotResource``, a condition operator other than those below, custom
policies passed in the request, more than one resource per call), so a caller reports "could not
simulate" rather than a verdict the real simulator might not give.

Sources: "SimulatePrincipalPolicy" (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html),
"Policy evaluation logic" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html),
"IAM JSON policy elements: Condition operators"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
"""

from __future__ import annotations

import fnmatch
import json
import re
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final
from xml.sax.saxutils import escape

from ecs_emulator.server import Reply

_NS: Final = "https://iam.amazonaws.com/doc/2010-05-08/"
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/(?P<service>[^/]+)/aws4_request")
_ARN_PARTS: Final = 6


class Refused(Exception):
    """The request cannot be evaluated faithfully, or names nothing that exists: an IAM error reply."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def is_simulation(method: str, path: str, headers: Mapping[str, str], body: bytes) -> bool:
    """A signed IAM query-protocol request for ``SimulatePrincipalPolicy``."""
    lower = {k.lower(): v for k, v in headers.items()}
    scope = _CREDENTIAL_SCOPE.search(lower.get("authorization", ""))
    if method != "POST" or scope is None or scope.group("service") != "iam":
        return False
    return _form(path, body).get("Action") == ["SimulatePrincipalPolicy"]


def handle(path: str, body: bytes) -> Reply:
    """Answer one ``SimulatePrincipalPolicy`` request as IAM's query protocol does (XML)."""
    try:
        results = simulate(_form(path, body))
    except Refused as refused:
        return _error(refused)
    members = "".join(_result_xml(r) for r in results)
    payload = (
        f'<SimulatePrincipalPolicyResponse xmlns="{_NS}"><SimulatePrincipalPolicyResult>'
        f"<IsTruncated>false</IsTruncated><EvaluationResults>{members}</EvaluationResults>"
        f"</SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
        "</ResponseMetadata></SimulatePrincipalPolicyResponse>"
    )
    return Reply(200, payload.encode(), headers=[("Content-Type", "text/xml")])


def simulate(form: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """One evaluation result per action (on the one resource named, or ``*``)."""
    unsupported = sorted(
        {key.split(".", 1)[0] for key in form}
        & {"PolicyInputList", "PermissionsBoundaryPolicyInputList", "ResourcePolicy", "CallerArn", "ResourceOwner"}
    )
    if unsupported:
        raise Refused("InvalidInput", f"the emulator does not simulate {', '.join(unsupported)}")
    source = (form.get("PolicySourceArn") or [""])[0]
    actions = _members(form, "ActionNames")
    resources = _members(form, "ResourceArns") or ["*"]
    if not source or not actions:
        raise Refused("ValidationError", "PolicySourceArn and ActionNames are required")
    if len(resources) > 1:
        raise Refused("InvalidInput", "the emulator simulates one resource per call; call once per resource")
    policies = _policies_of(source)
    context = _context_entries(form)
    return [_evaluate(policies, action, resources[0], context) for action in actions]


# -- the principal's identity policies (moto's IAM backend) ------------------------------------------
def _policies_of(arn: str) -> list[dict[str, Any]]:
    from moto.iam.models import iam_backends  # noqa: PLC0415 - moto is optional (the emulator extra)

    parts = arn.split(":", 5)
    if len(parts) != _ARN_PARTS or parts[2] != "iam":
        raise Refused("InvalidInput", f"PolicySourceArn {arn} is not an IAM user, group or role ARN")
    backend = iam_backends[parts[4]][parts[1]]
    kind, _, name = parts[5].partition("/")
    name = name.rsplit("/", 1)[-1]
    holders: list[Any]
    if kind == "role":
        holders = [r for r in backend.get_roles() if r.arn == arn]
    elif kind == "user":
        holders = [u for u in backend.users.values() if u.arn == arn]
        holders += backend.get_groups_for_user(name) if holders else []
    else:
        raise Refused("InvalidInput", f"the emulator simulates roles and users, not {kind}")
    if not holders:
        raise Refused("NoSuchEntity", f"The {kind} with name {name} cannot be found.", 404)
    documents: list[dict[str, Any]] = []
    for holder in holders:
        if getattr(holder, "permissions_boundary_arn", None):
            raise Refused("InvalidInput", f"{arn} has a permissions boundary, which the emulator does not evaluate")
        documents += [_document(doc) for doc in holder.policies.values()]
        for managed in holder.managed_policies.values():
            default = next(v for v in managed.versions if v.is_default)
            documents.append(_document(default.document))
    return documents


def _document(raw: Any) -> dict[str, Any]:
    text = raw if isinstance(raw, str) else json.dumps(raw)
    parsed = json.loads(urllib.parse.unquote(text) if text.lstrip().startswith("%") else text)
    return dict(parsed)


# -- evaluation ----------------------------------------------------------------------------------------
def _arn_like(pattern: str, value: str) -> bool:
    # ArnLike/ArnEquals compare each of the six colon-separated parts; * and ? are wildcards within a part.
    want, got = pattern.split(":", 5), value.split(":", 5)
    return len(want) == len(got) == _ARN_PARTS and all(
        fnmatch.fnmatchcase(g, w) for w, g in zip(want, got, strict=True)
    )


_OPERATORS: Final[Mapping[str, Callable[[str, str], bool]]] = {
    "StringEquals": lambda want, got: want == got,
    "StringLike": lambda want, got: fnmatch.fnmatchcase(got, want),
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
}


def _conditions(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, list[str]]) -> tuple[bool, set[str]]:
    """Whether every condition holds, and the context keys it needed that the request did not give."""
    missing: set[str] = set()
    holds = True
    for operator, keys in conditions.items():
        compare = _OPERATORS.get(operator)
        if compare is None:
            raise Refused("InvalidInput", f"the emulator does not evaluate the condition operator {operator}")
        for key, wanted in keys.items():
            got = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if got is None:  # IAM: a key absent from the request context matches nothing
                missing.add(key)
                holds = False
                continue
            values = wanted if isinstance(wanted, list) else [wanted]
            if not any(compare(str(w), g) for w in values for g in got):
                holds = False
    return holds, missing


def _evaluate(
    policies: list[dict[str, Any]], action: str, resource: str, context: Mapping[str, list[str]]
) -> dict[str, Any]:
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult  # noqa: PLC0415 - moto is optional

    allowed = denied = False
    missing: set[str] = set()
    for policy in policies:
        statements = policy.get("Statement") or []
        for statement in statements if isinstance(statements, list) else [statements]:
            if "NotResource" in statement or "NotPrincipal" in statement:
                raise Refused("InvalidInput", "the emulator does not evaluate NotResource or NotPrincipal")
            bare = {k: v for k, v in statement.items() if k != "Condition"}
            if IAMPolicyStatement(bare).is_action_permitted(action, resource) is PermissionResult.NEUTRAL:
                continue
            holds, lacking = _conditions(statement.get("Condition") or {}, context)
            missing |= lacking
            if not holds:
                continue
            if statement.get("Effect") == "Deny":
                denied = True
            elif statement.get("Effect") == "Allow":
                allowed = True
    decision = "explicitDeny" if denied else "allowed" if allowed else "implicitDeny"
    return {"action": action, "resource": resource, "decision": decision, "missing": sorted(missing)}


# -- the query protocol ---------------------------------------------------------------------------------
def _form(path: str, body: bytes) -> dict[str, list[str]]:
    query = urllib.parse.parse_qs(path.partition("?")[2])
    return query | urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def _members(form: Mapping[str, list[str]], name: str) -> list[str]:
    prefix = f"{name}.member."
    numbered = [
        (int(k[len(prefix) :]), v[0]) for k, v in form.items() if k.startswith(prefix) and k[len(prefix) :].isdigit()
    ]
    return [value for _, value in sorted(numbered)]


def _context_entries(form: Mapping[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    index = 1
    while f"ContextEntries.member.{index}.ContextKeyName" in form:
        entry = f"ContextEntries.member.{index}"
        out[form[f"{entry}.ContextKeyName"][0]] = _members(form, f"{entry}.ContextKeyValues")
        index += 1
    return out


def _result_xml(result: Mapping[str, Any]) -> str:
    missing = "".join(f"<member>{escape(k)}</member>" for k in result["missing"])
    return (
        f"<member><EvalActionName>{escape(result['action'])}</EvalActionName>"
        f"<EvalResourceName>{escape(result['resource'])}</EvalResourceName>"
        f"<EvalDecision>{result['decision']}</EvalDecision><MatchedStatements/>"
        f"<MissingContextValues>{missing}</MissingContextValues></member>"
    )


def _error(refused: Refused) -> Reply:
    payload = (
        f'<ErrorResponse xmlns="{_NS}"><Error><Type>Sender</Type><Code>{escape(refused.code)}</Code>'
        f"<Message>{escape(refused.message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return Reply(refused.status, payload.encode(), headers=[("Content-Type", "text/xml")])


# -- who the emulator's own key is --------------------------------------------------------------------
def act_as_role(access_key_id: str, role_arn: str, session_name: str, region: str = "us-east-1") -> None:
    """Make ``access_key_id`` (the emulator's own key) a session of ``role_arn``, as an instance or task role is.

    STS ``GetCallerIdentity`` then answers ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``, as it does
    for a scheduler running with a role; the role itself need not exist (nor does it for AssumeRole's answer).
    """
    from moto.sts.models import sts_backends  # noqa: PLC0415 - moto is optional (the emulator extra)

    forget_role_sessions(access_key_id)
    partition = role_arn.split(":", 2)[1]
    backend = sts_backends[role_arn.split(":")[4]][partition]
    session = backend.assume_role(
        region_name=region,
        role_session_name=session_name,
        role_arn=role_arn,
        policy="",
        duration=3600,
        external_id="",
    )
    session.access_key_id = access_key_id


def forget_role_sessions(access_key_id: str) -> None:
    """Undo ``act_as_role``: the key is moto's default identity again."""
    from moto.sts.models import sts_backends  # noqa: PLC0415 - moto is optional (the emulator extra)

    for by_partition in sts_backends.values():
        for backend in by_partition.values():
            backend.assumed_roles[:] = [r for r in backend.assumed_roles if r.access_key_id != access_key_id]
