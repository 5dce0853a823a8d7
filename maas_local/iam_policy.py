"""IAM identity-policy evaluation for the local stack: does this policy allow this request?

Written here rather than taken from moto because moto's evaluator
(`moto.iam.access_control.IAMPolicyStatement`) checks only the `StringEquals` condition
operator, ignores every other one (so `StringLike`, `Bool` and `ArnLike` conditions always
pass), and turns a failed condition on an Allow statement into an explicit deny.

The rules follow "Policy evaluation logic" for a single identity-based policy
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny wins, otherwise an Allow whose Action, Resource and every Condition match,
otherwise the implicit deny. Condition operators: "IAM JSON policy elements: Condition
operators" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
A condition whose key is absent from the request does not match, except for the
`...IfExists` operators and `Null`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

ContextValues = Mapping[str, str | list[str]]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE)


def matches(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM's `*` / `?` wildcard match. Actions are case-insensitive, resources are not."""
    return bool(_wildcard(pattern, case_sensitive).match(value))


def _arn_like(pattern: str, value: str) -> bool:
    # ARNs compare field by field: each of the six colon-separated parts on its own.
    want, got = pattern.split(":", 5), value.split(":", 5)
    return len(want) == len(got) == 6 and all(matches(w, g) for w, g in zip(want, got, strict=True))


_OPERATORS = {
    "StringEquals": lambda want, got: want == got,
    "StringNotEquals": lambda want, got: want != got,
    "StringEqualsIgnoreCase": lambda want, got: want.lower() == got.lower(),
    "StringLike": lambda want, got: matches(want, got),
    "StringNotLike": lambda want, got: not matches(want, got),
    "ArnEquals": lambda want, got: want == got,
    "ArnLike": _arn_like,
    "ArnNotEquals": lambda want, got: want != got,
    "ArnNotLike": lambda want, got: not _arn_like(want, got),
    "Bool": lambda want, got: want.lower() == got.lower(),
}
_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


class UnsupportedCondition(ValueError):
    """A policy uses a condition operator the local evaluator does not know. It fails closed."""


def _condition_holds(operator: str, key: str, wanted: Any, context: ContextValues) -> bool:
    if operator == "Null":
        present = key in context
        return str(wanted).lower() == ("false" if present else "true")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    qualifier, _, base = base.rpartition(":")
    check = _OPERATORS.get(base)
    if check is None:
        raise UnsupportedCondition(f"condition operator {operator} is not evaluated locally")
    if key not in context or context[key] == []:
        # ForAllValues holds over an empty set; every other operator needs the key.
        return if_exists or qualifier == "ForAllValues"
    got = [str(v) for v in _as_list(context[key])]
    wants = [str(w).lower() if isinstance(w, bool) else str(w) for w in _as_list(wanted)]
    if qualifier == "ForAllValues":
        return all(any(check(w, g) for w in wants) for g in got)
    if base in _NEGATED:  # a negated operator holds when no listed value matches
        return all(check(w, g) for w in wants for g in got)
    return any(check(w, g) for w in wants for g in got)


@dataclass(frozen=True)
class Request:
    action: str  # service:Operation, e.g. sagemaker:CreateModel
    resource: str  # one ARN, or "*" for actions without resource-level permissions
    context: ContextValues = ()  # type: ignore[assignment]


class Policy:
    """The Allow and Deny statements of one principal's identity policies, taken together."""

    def __init__(self, statements: Iterable[dict[str, Any]]) -> None:
        self.statements = list(statements)

    def _applies(self, statement: dict[str, Any], request: Request) -> bool:
        if "Action" in statement:
            actions = _as_list(statement["Action"])
            if not any(matches(a, request.action, case_sensitive=False) for a in actions):
                return False
        elif any(
            matches(a, request.action, case_sensitive=False)
            for a in _as_list(statement.get("NotAction", []))
        ):
            return False
        if "Resource" in statement:
            if not any(matches(r, request.resource) for r in _as_list(statement["Resource"])):
                return False
        elif any(matches(r, request.resource) for r in _as_list(statement.get("NotResource", []))):
            return False
        context = dict(request.context or {})
        for operator, pairs in (statement.get("Condition") or {}).items():
            for key, wanted in pairs.items():
                if not _condition_holds(operator, key, wanted, context):
                    return False
        return True

    def decide(self, request: Request) -> str:
        """ "Allow", "ExplicitDeny" or "ImplicitDeny"."""
        allowed = False
        for statement in self.statements:
            if not self._applies(statement, request):
                continue
            if statement.get("Effect") == "Deny":
                return "ExplicitDeny"
            allowed = allowed or statement.get("Effect") == "Allow"
        return "Allow" if allowed else "ImplicitDeny"

    def allows(self, request: Request) -> bool:
        return self.decide(request) == "Allow"

    def without(self, predicate: Any) -> Policy:
        """A copy without the statements for which predicate(statement) is true."""
        return Policy(s for s in self.statements if not predicate(s))


def denial_message(principal_arn: str, request: Request, decision: str) -> str:
    """The wording AWS uses for an AccessDenied on an identity-policy decision."""
    why = (
        "with an explicit deny in an identity-based policy"
        if decision == "ExplicitDeny"
        else f"because no identity-based policy allows the {request.action} action"
    )
    return (
        f"User: {principal_arn} is not authorized to perform: {request.action} "
        f"on resource: {request.resource} {why}"
    )
