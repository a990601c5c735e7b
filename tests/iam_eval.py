"""A tiny evaluator of IAM policies for tests: does this request get through?

Identity policies: `allows(policy, action, resource, context)`. Trust policies: pass the calling
`principal=("Federated"|"Service"|"AWS", value)` (a statement with a Principal matches only that
principal); `web_identity_request` builds the AssumeRoleWithWebIdentity request STS evaluates
for a token's claims.

Understood: Effect Allow/Deny (explicit deny wins), Principal, Action/Resource with `*`/`?`
wildcards, and the condition operators StringEquals, StringNotEquals, StringLike, ArnEquals,
ArnLike, Bool and Null. Any other operator raises, so a policy using something this evaluator
does not understand fails the test instead of passing by accident. IAM semantics: every operator
and every key of a statement must match, a key's values are OR'ed, a key absent from the
request context does not match (except for the negated StringNotEquals, and Null).
"""

from __future__ import annotations

import re
from typing import Any


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def like(pattern: str, value: str) -> bool:
    """IAM wildcards: `*` any run of characters (including '/' and ':'), `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


_POSITIVE = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringLike": like,
    "ArnEquals": lambda expected, actual: actual == expected,
    "ArnLike": like,
    "Bool": lambda expected, actual: actual.lower() == expected.lower(),
}


def conditions_match(conditions: dict[str, dict[str, Any]] | None, context: dict[str, str]) -> bool:
    for operator, body in (conditions or {}).items():
        for key, expected in body.items():
            values = _as_list(expected)
            if operator == "Null":
                absent = key not in context
                if absent != (values[0].lower() == "true"):
                    return False
            elif operator == "StringNotEquals":
                if key in context and context[key] in values:
                    return False
            elif operator in _POSITIVE:
                if key not in context or not any(_POSITIVE[operator](e, str(context[key])) for e in values):
                    return False
            else:
                raise NotImplementedError(f"condition operator {operator} is not understood by the test evaluator")
    return True


def _principal_matches(stmt: dict[str, Any], principal: tuple[str, str] | None) -> bool:
    if "Principal" not in stmt:
        return True  # identity policy: the principal is whoever holds it
    declared = stmt["Principal"]
    if declared == "*":
        return True
    if principal is None:
        return False
    kind, value = principal
    return any(v in ("*", value) for v in _as_list(declared.get(kind)))


def _resource_matches(stmt: dict[str, Any], resource: str | None) -> bool:
    if "Resource" not in stmt:
        return True  # trust policies name no resource: the role itself
    if resource is None:
        return False
    return any(like(r, resource) for r in _as_list(stmt["Resource"]))


def statement_applies(
    stmt: dict[str, Any],
    action: str,
    resource: str | None = None,
    context: dict[str, str] | None = None,
    principal: tuple[str, str] | None = None,
) -> bool:
    return (
        _principal_matches(stmt, principal)
        and any(like(a.lower(), action.lower()) for a in _as_list(stmt.get("Action")))
        and _resource_matches(stmt, resource)
        and conditions_match(stmt.get("Condition"), context or {})
    )


def allows(
    policy: dict[str, Any],
    action: str,
    resource: str | None = None,
    context: dict[str, str] | None = None,
    *,
    principal: tuple[str, str] | None = None,
) -> bool:
    stmts = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
    if any(s["Effect"] == "Deny" and statement_applies(s, action, resource, context, principal) for s in stmts):
        return False
    return any(s["Effect"] == "Allow" and statement_applies(s, action, resource, context, principal) for s in stmts)


def web_identity_request(provider_arn: str, claims: dict[str, Any]) -> dict[str, Any]:
    """kwargs for `allows` as STS evaluates AssumeRoleWithWebIdentity: the provider of the token's
    issuer as principal, the token's claims as `<issuer-host>:sub` / `:aud` keys."""
    host = str(claims["iss"]).removeprefix("https://").rstrip("/")
    aud = claims["aud"][0] if isinstance(claims["aud"], list) else claims["aud"]
    return {
        "action": "sts:AssumeRoleWithWebIdentity",
        "principal": ("Federated", provider_arn),
        "context": {f"{host}:sub": str(claims["sub"]), f"{host}:aud": str(aud)},
    }
