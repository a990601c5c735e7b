"""Shared pieces of every rule module: rule metadata, the policy factories, and readers for the
values the engine hands a policy.

The engine passes resource inputs under their camelCase names wrapped in
`pulumi_policy.proxy.unknown_checking_proxy`: sequences are not `list`, mappings are not `dict`,
and touching an unknown value raises `UnknownValueError`. Readers here accept those proxies
(`collections.abc.Sequence`/`Mapping`) and never swallow that exception, so a policy that needs an
unknown value is reported the way the engine reports it ("can't run policy during preview").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError


@dataclass(frozen=True)
class Benchmark:
    """The public control a rule maps to: `framework` is one of `CIS EKS` (Amazon EKS Benchmark),
    `checkov`, `awsguard`, `CIS AWS` (AWS Foundations Benchmark v3.0.0 numbering), or
    `EKS Best Practices` where no numbered control exists."""

    framework: str
    control: str

    def __str__(self) -> str:
        return f"{self.framework} {self.control}"


def cis_eks(control: str) -> Benchmark:
    return Benchmark("CIS EKS", control)


def checkov(check_id: str) -> Benchmark:
    return Benchmark("checkov", check_id)


def awsguard(rule: str) -> Benchmark:
    return Benchmark("awsguard", rule)


def cis_aws(control: str) -> Benchmark:
    return Benchmark("CIS AWS", control)


def eks_best_practices(section: str) -> Benchmark:
    return Benchmark("EKS Best Practices", section)


@dataclass(frozen=True)
class Rule:
    """One guardrail: its metadata (what the registry lists) and the pulumi_policy object."""

    id: str
    description: str
    severity: Severity
    benchmarks: tuple[Benchmark, ...]
    kind: str  # "resource" | "stack"
    resource_types: tuple[str, ...]
    config_schema: dict[str, dict[str, Any]] = field(default_factory=dict)
    policy: Any = None

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.config_schema.items() if "default" in v}


Check = Callable[[Any, dict[str, Any], Callable[[str], None], ResourceValidationArgs], None]
StackCheck = Callable[[list[Any], dict[str, Any], ReportViolation, StackValidationArgs], None]


def _framework(benchmarks: tuple[Benchmark, ...]) -> PolicyComplianceFramework:
    first = benchmarks[0]
    return PolicyComplianceFramework(
        name=first.framework, reference=first.control, specification="; ".join(str(b) for b in benchmarks)
    )


def with_defaults(schema: dict[str, dict[str, Any]], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The engine fills schema defaults before a policy runs; do the same for direct callers."""
    merged = {k: v["default"] for k, v in schema.items() if "default" in v}
    merged.update(dict(given or {}))
    return merged


def resource_rule(
    id: str,
    description: str,
    severity: Severity,
    benchmarks: Iterable[Benchmark],
    types: Iterable[str],
    check: Check,
    config_schema: dict[str, dict[str, Any]] | None = None,
    remediation: str | None = None,
) -> Rule:
    """A ResourceValidationPolicy that runs `check(props, config, report, args)` on the given types."""
    # A tuple subclass may widen membership (e.g. "any aws: type"); keep it as given.
    types_t = types if isinstance(types, tuple) else tuple(types)
    schema = dict(config_schema or {})

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type not in types_t:
            return
        check(args.props, with_defaults(schema, args.get_config()), lambda msg: report(msg, None), args)

    bench = tuple(benchmarks)
    policy = ResourceValidationPolicy(
        validate=validate, **_policy_fields(id, description, severity, bench, schema, remediation)
    )
    return Rule(id, description, severity, bench, "resource", types_t, schema, policy)


def stack_rule(
    id: str,
    description: str,
    severity: Severity,
    benchmarks: Iterable[Benchmark],
    types: Iterable[str],
    check: StackCheck,
    config_schema: dict[str, dict[str, Any]] | None = None,
    remediation: str | None = None,
) -> Rule:
    """A StackValidationPolicy: `check(resources, config, report, args)` sees every resource of the stack."""
    schema = dict(config_schema or {})

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        check(list(args.resources), with_defaults(schema, args.get_config()), report, args)

    bench = tuple(benchmarks)
    policy = StackValidationPolicy(
        validate=validate, **_policy_fields(id, description, severity, bench, schema, remediation)
    )
    return Rule(id, description, severity, bench, "stack", tuple(types), schema, policy)


# Fail safe: what a policy enforces when the run has no policy config (`pulumi preview --policy-pack
# policy` without `--policy-pack-config`). Critical and high findings block; the rest advise. A config
# file overrides this per policy or with `all`.
MANDATORY_WITHOUT_CONFIG = (Severity.CRITICAL, Severity.HIGH)


def default_enforcement(severity: Severity) -> EnforcementLevel:
    return EnforcementLevel.MANDATORY if severity in MANDATORY_WITHOUT_CONFIG else EnforcementLevel.ADVISORY


def _policy_fields(
    id: str,
    description: str,
    severity: Severity,
    bench: tuple[Benchmark, ...],
    schema: dict[str, dict[str, Any]],
    remediation: str | None,
) -> dict[str, Any]:
    """What resource and stack policies declare alike: identity, knobs, severity, benchmark mapping."""
    return {
        "name": id,
        "enforcement_level": default_enforcement(severity),
        "description": description,
        "config_schema": PolicyConfigSchema(properties=schema) if schema else None,
        "severity": severity,
        "framework": _framework(bench),
        "tags": [str(b) for b in bench],
        "remediation_steps": remediation,
    }


# ------------------------------------------------------------------------------ value readers
def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_seq(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def get(value: Any, *path: Any, default: Any = None) -> Any:
    """`props["a"]["b"][0]` that returns `default` where a level is missing (unknowns still raise)."""
    cur = value
    for key in path:
        if isinstance(key, int):
            if not is_seq(cur) or key >= len(cur):
                return default
            cur = cur[key]
        else:
            if not is_map(cur) or key not in cur:
                return default
            cur = cur[key]
        if cur is None:
            return default
    return cur


class _Unknown:
    """What `peek` returns for a value the engine does not know yet (computed at preview)."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()


def peek(value: Any, *path: Any, default: Any = None) -> Any:
    """`get`, except that an unknown value comes back as `UNKNOWN` instead of ending the policy.

    For checks that only need to know a value is *set* (a KMS key ARN, subnet ids) or that can
    decide without it (an ARN created in the stack is never an AWS-managed policy): those values
    are typically outputs of other resources, unknown during a first preview, and reading them
    would turn a mandatory policy into an advisory "can't run policy during preview".
    """
    try:
        return get(value, *path, default=default)
    except UnknownValueError:
        return UNKNOWN


def is_set(value: Any, *path: Any) -> bool:
    """The input at `path` is present and not empty; an unknown value counts as set."""
    found = peek(value, *path)
    if found is UNKNOWN:
        return True
    if is_seq(found) or is_map(found):
        return len(found) > 0
    return found not in (None, "")


def known_items(value: Any) -> list[Any]:
    """The elements of a list input that are known (unknown elements, or an unknown list, skipped)."""
    if value is UNKNOWN or value is None:
        return []
    if isinstance(value, (str, bytes)) or not is_seq(value):
        return [value]
    out = []
    for i in range(len(value)):
        try:
            out.append(value[i])
        except UnknownValueError:
            continue
    return out


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not is_seq(value):
        return [value]
    return [value[i] for i in range(len(value))]


def plain(value: Any) -> Any:
    """Proxy -> plain dict/list (reads every value, so unknowns raise)."""
    if is_map(value):
        return {k: plain(value[k]) for k in value}
    if is_seq(value):
        return [plain(v) for v in as_list(value)]
    return value


def truthy(value: Any) -> bool:
    """Booleans some providers model as strings ("true"/"false")."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def is_false(value: Any) -> bool:
    """Explicitly false (not merely absent)."""
    if isinstance(value, str):
        return value.strip().lower() == "false"
    return value is False


def policy_document(value: Any) -> dict[str, Any] | None:
    """An IAM/resource policy given as JSON text or a mapping -> dict; None when absent or not JSON."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            doc = json.loads(value)
        except json.JSONDecodeError:
            return None
        return doc if isinstance(doc, dict) else None
    if is_map(value):
        return plain(value)
    return None


def statements(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not doc:
        return []
    stmts = doc.get("Statement", [])
    if isinstance(stmts, dict):
        stmts = [stmts]
    return [s for s in stmts if isinstance(s, dict)]


def str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in as_list(value)]


def principals(stmt: dict[str, Any]) -> dict[str, list[str]]:
    """Statement principal -> {"AWS": [...], "Service": [...], "Federated": [...], "*": ["*"]}."""
    p = stmt.get("Principal")
    if p is None:
        return {}
    if p == "*":
        return {"*": ["*"]}
    if isinstance(p, dict):
        return {k: str_list(v) for k, v in p.items()}
    return {}


def is_wildcard_principal(stmt: dict[str, Any]) -> bool:
    ps = principals(stmt)
    return "*" in ps or "*" in ps.get("AWS", [])


def conditions(stmt: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Condition block with every value as a list of strings: {operator: {key: [values]}}."""
    out: dict[str, dict[str, list[str]]] = {}
    for op, body in (stmt.get("Condition") or {}).items():
        if isinstance(body, dict):
            out[op] = {k: str_list(v) for k, v in body.items()}
    return out


def tags_of(props: Any) -> dict[str, str]:
    """Tags as a dict from either map form (`tags: {k: v}`) or the ASG list form (`[{key, value}]`)."""
    tags = get(props, "tags")
    if is_map(tags):
        # An unknown tag value (computed from another resource) is still a set tag.
        values = {k: peek(tags, k) for k in tags}
        return {str(k): "" if v is None else ("<unknown>" if v is UNKNOWN else str(v)) for k, v in values.items()}
    out: dict[str, str] = {}
    for t in as_list(tags):
        if is_map(t) and "key" in t:
            out[str(t["key"])] = str(get(t, "value", default=""))
    return out


def resources_of(resources: list[Any], *types: str) -> list[Any]:
    return [r for r in resources if r.resource_type in types]


def dependency_closure(resource: Any) -> list[Any]:
    """The resource's direct dependencies plus those of its property dependencies."""
    seen: dict[str, Any] = {}
    for d in list(resource.dependencies) + [d for deps in resource.property_dependencies.values() for d in deps]:
        seen.setdefault(d.urn, d)
    return list(seen.values())


def transitive_dependencies(resource: Any) -> list[Any]:
    """Everything the resource depends on, directly or through other resources."""
    seen: dict[str, Any] = {}
    stack = dependency_closure(resource)
    while stack:
        dep = stack.pop()
        if dep.urn in seen:
            continue
        seen[dep.urn] = dep
        stack.extend(dependency_closure(dep))
    return list(seen.values())
