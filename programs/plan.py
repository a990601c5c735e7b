"""The offline plan: the public JSON shape written by `platformctl preview --offline --json`.

    {"project", "stack",
     "resources": [{"urn", "type", "name", "parent", "custom", "inputs", "dependencies", "protect",
                    "propertyDependencies"}],
     "stackInfo": {...} (preview: region, account, cluster, zones, safeguards),
     "outputs": {...}, "policy": {"violations": [{"policy", "level", "urn", "message"}]},
     "warnings": [...] (only when the program warned, e.g. a minor near the end of its EKS support)}

Later issues add keys; none is ever removed or renamed. Secret values are "[secret]" unless the
caller asks for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from policy.offline_runner import SECRET_MASK, Resource
from programs.offline import CapturedResource, OfflineRun, Secret, reveal
from programs.plan_view import empty_plan, render_tree, type_counts  # noqa: F401 (public here too)


def plan_value(value: Any, show_secrets: bool) -> Any:
    if isinstance(value, Secret):
        return plan_value(value.value, show_secrets) if show_secrets else SECRET_MASK
    if isinstance(value, dict):
        return {k: plan_value(v, show_secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plan_value(v, show_secrets) for v in value]
    return value


def resource_entry(res: CapturedResource, show_secrets: bool) -> dict[str, Any]:
    return {
        "urn": res.urn,
        "type": res.type,
        "name": res.name,
        "parent": res.parent,
        "custom": res.custom,
        "inputs": plan_value(res.inputs, show_secrets),
        "dependencies": list(res.dependencies),
        "protect": res.protect,
        # Which inputs come from which resources' outputs (`preview --diff` uses it, the policy runner reads it).
        "propertyDependencies": {k: list(v) for k, v in res.property_dependencies.items() if v},
    }


def build_plan(
    run: OfflineRun, violations: list[dict[str, Any]] | None = None, show_secrets: bool = False
) -> dict[str, Any]:
    plan = {
        "project": run.project,
        "stack": run.stack,
        "resources": [resource_entry(r, show_secrets) for r in run.resources],
        "outputs": plan_value(run.outputs, show_secrets),
        "policy": {"violations": list(violations or [])},
    }
    if run.warnings:
        plan["warnings"] = list(run.warnings)  # the program's warnings (a real preview shows them as diagnostics)
    return plan


def resources_from_run(run: OfflineRun) -> list[Resource]:
    """Resources of an `OfflineRun` for the policy pack; `Secret` values unwrapped, as the engine
    gives policies plaintext."""
    return policy_resources(run.resources)


def policy_resources(captured: Iterable[CapturedResource]) -> list[Resource]:
    """Captured registrations as the policy pack's `Resource`s (secrets revealed)."""
    return [
        Resource(
            urn=r.urn,
            type=r.type,
            name=r.name,
            inputs=reveal(r.inputs),
            parent=r.parent,
            dependencies=list(r.dependencies),
            property_dependencies=dict(r.property_dependencies),
            protect=r.protect,
        )
        for r in captured
    ]
