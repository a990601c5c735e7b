"""Every guardrail of the pack, in one list, with its id, description, severity, benchmark mapping
and config schema. `__main__.py` builds the PolicyPack from `policies()`; the offline runner and
`platformctl policy list` read `RULES`.
"""

from __future__ import annotations

from typing import Any

from policy.rules import (
    cross_account,
    data_plane,
    database,
    eks,
    eks_resilience,
    helm,
    iam,
    identity,
    karpenter,
    network,
    nodes,
    stack,
    storage,
    tags,
)
from policy.rules.common import Rule

PACK_NAME = "k8s-platform-guardrails"

RULES: list[Rule] = [
    *eks.RULES,
    *eks_resilience.RULES,
    *nodes.RULES,
    *network.RULES,
    *iam.RULES,
    *identity.RULES,
    *cross_account.RULES,
    *storage.RULES,
    *data_plane.RULES,
    *database.RULES,
    *karpenter.RULES,
    *helm.RULES,
    *tags.RULES,
    *stack.RULES,
]

BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
if len(BY_ID) != len(RULES):  # pragma: no cover - guards against a copy-paste id
    raise RuntimeError("duplicate policy ids in the registry")


def policies() -> list[Any]:
    """The pulumi_policy Policy objects, in registry order."""
    return [r.policy for r in RULES]


def describe() -> list[dict[str, Any]]:
    """Registry rows: what `platformctl policy list --json` prints and the docs table is built from."""
    return [
        {
            "id": r.id,
            "description": r.description,
            "severity": r.severity.value,
            "kind": r.kind,
            "benchmarks": [str(b) for b in r.benchmarks],
            "resourceTypes": list(r.resource_types) if type(r.resource_types) is tuple else "any",
            "config": r.config_schema,
        }
        for r in RULES
    ]
