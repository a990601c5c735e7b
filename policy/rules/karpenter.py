"""Karpenter v1 NodePools and EC2NodeClasses: limits as a circuit breaker, disruption budgets,
consolidation, node expiry, and pinned AMIs. (IMDS, volumes, public IPs and user-data of
EC2NodeClasses are checked by the node rules.)

The NodePool rules hold for both node providers: self-managed Karpenter's pools reference an
`EC2NodeClass` (group karpenter.k8s.aws), EKS Auto Mode's a `NodeClass` (group eks.amazonaws.com), and
Auto Mode caps a node's life at 21 days and labels instances under `eks.amazonaws.com/`, not
`karpenter.k8s.aws/`. A pool's class must exist: in the stack, or Auto Mode's built-in `default`, which
exists only while the cluster enables built-in pools (`computeConfig.nodePools`)."""

from __future__ import annotations

import re

from pulumi_policy import Severity

from .common import as_list, eks_best_practices, get, resource_rule, resources_of, stack_rule, str_list, truthy

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
EC2_NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
AUTO_MODE_NODE_CLASS = "kubernetes:eks.amazonaws.com/v1:NodeClass"
CLUSTER = "aws:eks/cluster:Cluster"
# nodeClassRef.group -> (the class's resource type, the instance-label domain its provider sets)
PROVIDERS = {
    "karpenter.k8s.aws": (EC2_NODE_CLASS, "karpenter.k8s.aws/"),
    "eks.amazonaws.com": (AUTO_MODE_NODE_CLASS, "eks.amazonaws.com/"),
}
AUTO_MODE_GROUP = "eks.amazonaws.com"
AUTO_MODE_BUILT_IN_CLASS = "default"
# EKS Auto Mode replaces every node after at most 21 days.
AUTO_MODE_MAX_EXPIRE_HOURS = 21 * 24
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def duration_hours(value: str) -> float | None:
    """Go duration ("720h", "1h30m", "90s") -> hours; None when not a duration."""
    m = _DURATION.match(value.strip())
    if not m or not any(m.groups()):
        return None
    h, mi, s = (int(g or 0) for g in m.groups())
    return h + mi / 60 + s / 3600


def _limits(props, cfg, report, args) -> None:
    limits = get(props, "spec", "limits", default={})
    missing = [k for k in cfg["requiredLimits"] if not get(limits, k)]
    if missing:
        report(
            f"spec.limits lacks {missing}: without them a scheduling storm or a bad deployment launches "
            "nodes without bound"
        )


# NodePool CRD defaults (karpenter.sh/v1): the engine hands policies the inputs, and the API server
# fills these in for absent fields.
DEFAULT_BUDGETS = ({"nodes": "10%"},)
DEFAULT_CONSOLIDATION_POLICY = "WhenEmptyOrUnderutilized"
DEFAULT_EXPIRE_AFTER = "720h"


def _budgets(props, cfg, report, args) -> None:
    given = get(props, "spec", "disruption", "budgets")
    budgets = list(DEFAULT_BUDGETS) if given is None else as_list(given)
    if not budgets:
        report("spec.disruption.budgets is an empty list: no budget bounds how many nodes are disrupted at once")
        return
    if all(str(get(b, "nodes", default="")) in ("100%", "") for b in budgets):
        report("every disruption budget allows 100% of nodes (or none sets nodes): budgets must bound disruption")


def _consolidation(props, cfg, report, args) -> None:
    disruption = get(props, "spec", "disruption", default={})
    policy = get(disruption, "consolidationPolicy", default=DEFAULT_CONSOLIDATION_POLICY)
    if policy not in cfg["allowedPolicies"]:
        report(f"consolidationPolicy is {policy}; allowed: {cfg['allowedPolicies']}")
    after = get(disruption, "consolidateAfter")
    if after is None:
        report("consolidateAfter is not set")
    elif str(after) == "Never":
        report("consolidateAfter is Never: consolidation is switched off")


def node_class_group(props) -> str | None:
    return get(props, "spec", "template", "spec", "nodeClassRef", "group")


def _expire_after(props, cfg, report, args) -> None:
    value = get(props, "spec", "template", "spec", "expireAfter", default=DEFAULT_EXPIRE_AFTER)
    limit = cfg["maxExpireAfterHours"]
    if node_class_group(props) == AUTO_MODE_GROUP:
        limit = min(limit, AUTO_MODE_MAX_EXPIRE_HOURS)
    if str(value) == "Never":
        report(
            f"spec.template.spec.expireAfter is {value}: nodes must be replaced regularly "
            f"(at most {limit}h) so they pick up patched AMIs"
        )
        return
    hours = duration_hours(str(value))
    if hours is None:
        report(f"expireAfter '{value}' is not a duration like 720h")
    elif hours > limit:
        why = (
            " (EKS Auto Mode replaces nodes after 21 days whatever the pool says)"
            if limit == AUTO_MODE_MAX_EXPIRE_HOURS
            else ""
        )
        report(f"expireAfter {value} exceeds {limit}h{why}")


def _requirement_labels(props, cfg, report, args) -> None:
    group = node_class_group(props)
    if group not in PROVIDERS:
        return
    own = PROVIDERS[group][1]
    foreign = [domain for g, (_, domain) in PROVIDERS.items() if g != group]
    for req in as_list(get(props, "spec", "template", "spec", "requirements")):
        key = str(get(req, "key", default=""))
        if any(key.startswith(d) for d in foreign):
            report(
                f"requirement '{key}' uses another provider's instance label, which nodes of a {group} class never "
                f"carry: the pool would match no instance type; use the {own}* label"
            )


def _class_exists(resources, cfg, report, args) -> None:
    names: dict[str, set[str]] = {t: set() for t, _ in PROVIDERS.values()}
    for typ, found in names.items():
        for res in resources_of(resources, typ):
            name = get(res.props, "metadata", "name")
            if name is not None:
                found.add(str(name))
    built_in = any(
        truthy(get(c.props, "computeConfig", "enabled", default=False))
        and str_list(get(c.props, "computeConfig", "nodePools"))
        for c in resources_of(resources, CLUSTER)
    )
    for pool in resources_of(resources, NODE_POOL):
        ref = get(pool.props, "spec", "template", "spec", "nodeClassRef", default={})
        group, kind, name = get(ref, "group"), get(ref, "kind"), str(get(ref, "name", default=""))
        if group not in PROVIDERS:
            report(
                f"NodePool '{pool.name}': nodeClassRef.group '{group}' is neither karpenter.k8s.aws nor "
                "eks.amazonaws.com",
                pool.urn,
            )
            continue
        typ = PROVIDERS[group][0]
        expected_kind = typ.rsplit(":", 1)[1]
        if kind != expected_kind:
            report(f"NodePool '{pool.name}': nodeClassRef kind '{kind}' is not {group}'s {expected_kind}", pool.urn)
        elif name in names[typ] or (group == AUTO_MODE_GROUP and name == AUTO_MODE_BUILT_IN_CLASS and built_in):
            continue
        else:
            where = (
                " (Auto Mode's built-in 'default' exists only with computeConfig.nodePools)"
                if group == AUTO_MODE_GROUP
                else ""
            )
            report(
                f"NodePool '{pool.name}' references {kind} '{name}', which this stack does not define{where}", pool.urn
            )


def _ami_pinned(props, cfg, report, args) -> None:
    terms = as_list(get(props, "spec", "amiSelectorTerms"))
    if not terms:
        report("spec.amiSelectorTerms is empty")
    for term in terms:
        alias = get(term, "alias")
        if alias is not None:
            family, _, version = str(alias).partition("@")
            if not version:
                report(f"AMI alias '{alias}' has no @version")
            elif version == "latest" and not cfg["allowLatest"]:
                report(
                    f"AMI alias '{alias}' floats to the newest AMI: pin {family}@v<YYYYMMDD> "
                    "(policy config allowLatest)"
                )
        elif get(term, "ssmParameter") is not None and not cfg["allowSsmParameter"]:
            report(f"AMI selector uses SSM parameter {get(term, 'ssmParameter')}, which can move; pin an id or alias")


KARPENTER_BENCH = [eks_best_practices("karpenter")]

RULES = [
    resource_rule(
        "karpenter-nodepool-limits",
        "NodePools cap total cpu and memory.",
        Severity.HIGH,
        KARPENTER_BENCH,
        [NODE_POOL],
        _limits,
        {"requiredLimits": {"type": "array", "items": {"type": "string"}, "default": ["cpu", "memory"]}},
    ),
    resource_rule(
        "karpenter-nodepool-disruption-budgets",
        "NodePools bound voluntary disruption with budgets.",
        Severity.MEDIUM,
        KARPENTER_BENCH,
        [NODE_POOL],
        _budgets,
    ),
    resource_rule(
        "karpenter-nodepool-consolidation",
        "NodePools consolidate underutilized nodes after a delay.",
        Severity.LOW,
        KARPENTER_BENCH,
        [NODE_POOL],
        _consolidation,
        {
            "allowedPolicies": {
                "type": "array",
                "items": {"type": "string", "enum": ["WhenEmpty", "WhenEmptyOrUnderutilized", "Balanced"]},
                "default": ["WhenEmptyOrUnderutilized", "Balanced"],
            }
        },
    ),
    resource_rule(
        "karpenter-nodepool-expire-after",
        "NodePools expire nodes so they are replaced with patched AMIs.",
        Severity.MEDIUM,
        KARPENTER_BENCH,
        [NODE_POOL],
        _expire_after,
        {"maxExpireAfterHours": {"type": "integer", "minimum": 1, "default": 720}},
    ),
    resource_rule(
        "karpenter-nodepool-requirement-labels",
        "NodePool requirements use the instance labels of their node class's provider.",
        Severity.MEDIUM,
        KARPENTER_BENCH,
        [NODE_POOL],
        _requirement_labels,
    ),
    stack_rule(
        "karpenter-nodepool-node-class-exists",
        "Every NodePool references a node class that exists (in the stack, or Auto Mode's built-in one).",
        Severity.HIGH,
        KARPENTER_BENCH,
        [NODE_POOL, EC2_NODE_CLASS, AUTO_MODE_NODE_CLASS, CLUSTER],
        _class_exists,
    ),
    resource_rule(
        "karpenter-ami-pinned",
        "EC2NodeClasses select a pinned AMI (no @latest alias where not allowed).",
        Severity.HIGH,
        KARPENTER_BENCH,
        [EC2_NODE_CLASS],
        _ami_pinned,
        {
            "allowLatest": {"type": "boolean", "default": False},
            "allowSsmParameter": {"type": "boolean", "default": True},
        },
    ),
]
