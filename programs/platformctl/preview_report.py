"""What `platformctl preview` prints for a person: header, tree, per-component counts, outputs,
violations, summary; and `--diff`, a saved plan compared with this one (what a reviewer reads).

Pure functions of the plan dict (`programs/plan.py`), so the same text comes from a fresh run or a
saved plan file.
"""

from __future__ import annotations

import json
from typing import Any

from policy.secret_mask import SECRET_MASK


# ------------------------------------------------------------------------------------ header
def stack_info(cfg: Any) -> dict[str, Any]:
    """The facts of a stack a reader checks first (plan key `stackInfo`)."""
    kind = cfg.cluster.kind
    version = cfg.cluster.eks.version if kind == "eks" else cfg.cluster.k3s.version
    guards = cfg.safeguards_in_force
    return {
        "environment": cfg.environment,
        "region": cfg.region,
        "accountId": cfg.account_id,
        "cluster": {"kind": kind, "name": cfg.cluster.name, "version": version},
        "availabilityZones": list(cfg.network.availability_zones),
        "safeguards": {
            "protectStatefulResources": guards.protect_stateful_resources,
            "pinnedAmis": guards.pinned_amis,
            "controllerReplicas": guards.controller_replicas,
        },
    }


def render_header(plan: dict[str, Any]) -> str:
    info = plan.get("stackInfo") or {}
    cluster = info.get("cluster") or {}
    rows = [
        ("stack", f"{plan.get('stack')} (project {plan.get('project')}, environment {info.get('environment', '?')})"),
        ("region", info.get("region", "?")),
        ("account", info.get("accountId", "?")),
        ("cluster", f"{cluster.get('name', '?')}: {cluster.get('kind', '?')} {cluster.get('version', '?')}"),
        ("zones", ", ".join(info.get("availabilityZones") or []) or "?"),
        ("policy config", (plan.get("policy") or {}).get("config", "?")),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in rows)


# -------------------------------------------------------------------------- per component
def component_counts(plan: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(top-level component `type name`, resources under it, of those protected), in plan order;
    top-level custom resources (providers) are counted together as `(stack)`."""
    resources = plan["resources"]
    urns = {r["urn"]: r for r in resources}

    def root_of(r: dict[str, Any]) -> dict[str, Any]:
        seen = set()
        while r["parent"] in urns and r["urn"] not in seen:
            seen.add(r["urn"])
            r = urns[r["parent"]]
        return r

    rows: dict[str, list[int]] = {}
    for r in resources:
        root = root_of(r)
        label = "(stack)" if root["custom"] else f"{root['type']}  {root['name']}"
        counts = rows.setdefault(label, [0, 0])
        if r is root and not root["custom"]:
            continue  # the component itself is not one of its resources
        counts[0] += 1
        counts[1] += 1 if r["protect"] else 0
    return [(label, c[0], c[1]) for label, c in rows.items()]


def render_counts(plan: dict[str, Any]) -> str:
    rows = component_counts(plan)
    protected = sum(1 for r in plan["resources"] if r["protect"])
    width = max([len(label) for label, _, _ in rows] + [9])
    lines = ["Resources by component:", f"  {'component':<{width}}  {'resources':>9}  {'protected':>9}"]
    lines += [f"  {label:<{width}}  {n:>9}  {p:>9}" for label, n, p in rows]
    lines.append(f"  {'total':<{width}}  {len(plan['resources']):>9}  {protected:>9}")
    return "\n".join(lines)


# -------------------------------------------------------------------------------- outputs
def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    text = json.dumps(value, sort_keys=False)
    if len(text) <= 100:
        return text
    return "\n" + "\n".join("      " + ln for ln in json.dumps(value, indent=2).splitlines())


def render_outputs(plan: dict[str, Any]) -> str:
    outputs = plan.get("outputs") or {}
    if not outputs:
        return "Outputs: none"
    lines = ["Outputs" + (f" (secrets shown as {SECRET_MASK})" if _has_mask(outputs) else "") + ":"]
    for key, value in outputs.items():
        shown = _show(value)
        lines.append(f"  {key}:{shown if shown.startswith(chr(10)) else ' ' + shown}")
    return "\n".join(lines)


def _has_mask(value: Any) -> bool:
    if value == SECRET_MASK:
        return True
    if isinstance(value, dict):
        return any(_has_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_mask(v) for v in value)
    return False


# ----------------------------------------------------------------------------- violations
def violation_line(v: dict[str, Any]) -> str:
    return f"policy {v['level']}: {v['policy']}: {v['message']} ({v['urn'] or 'stack'})"


def render_violations(plan: dict[str, Any], quiet: bool) -> list[str]:
    """Mandatory first; `quiet` leaves advisories out (the summary still counts them)."""
    violations = plan["policy"]["violations"]
    ordered = sorted(violations, key=lambda v: v["level"] != "mandatory")
    return [violation_line(v) for v in ordered if not quiet or v["level"] == "mandatory"]


# ------------------------------------------------------------------------------------ diff
def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by input key path (`spec.limits.cpu`, `ingress[0].fromPort`)."""
    if isinstance(value, dict):
        if not value:
            return {prefix: {}} if prefix else {}
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list):
        if not value:
            return {prefix: []}
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _resource_key(r: dict[str, Any]) -> str:
    return r["urn"]


def _top_key(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def diff_plans(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Resources added, removed and changed (inputs by key path, plus protect) from `old` to `new`.

    An input computed from another resource's output (`propertyDependencies`) counts as changed only
    when that resource is itself added or changed: the engine keeps the outputs of an unchanged
    resource, while the offline mocks compute fresh ones (random values on every run, keys and
    certificates in every process)."""
    before = {_resource_key(r): r for r in old.get("resources") or []}
    after = {_resource_key(r): r for r in new.get("resources") or []}
    added = [after[u] for u in after if u not in before]
    removed = [before[u] for u in before if u not in after]
    own: dict[str, list[dict[str, Any]]] = {}
    derived: dict[str, list[tuple[dict[str, Any], set[str]]]] = {}
    for urn in (u for u in after if u in before):
        a, b = _flatten(before[urn].get("inputs") or {}), _flatten(after[urn].get("inputs") or {})
        deps = after[urn].get("propertyDependencies") or {}
        for k in sorted(set(a) | set(b)):
            if a.get(k, _MISSING) == b.get(k, _MISSING):
                continue
            change = {"key": k, "old": a.get(k, _MISSING), "new": b.get(k, _MISSING)}
            sources = set(deps.get(_top_key(k)) or ())
            if sources:
                derived.setdefault(urn, []).append((change, sources))
            else:
                own.setdefault(urn, []).append(change)
        if bool(before[urn].get("protect")) != bool(after[urn].get("protect")):
            own.setdefault(urn, []).append(
                {"key": "(protect)", "old": bool(before[urn].get("protect")), "new": bool(after[urn].get("protect"))}
            )
    # Outputs move when a resource is added or its inputs change (protect is an option, not an input).
    moved = {r["urn"] for r in added} | {u for u, cs in own.items() if any(c["key"] != "(protect)" for c in cs)}
    grew = True
    while grew:  # a derived change is real when its source changed: propagate to a fixed point
        grew = False
        for urn, items in derived.items():
            real = [c for c, sources in items if sources & moved]
            if real and urn not in moved:
                moved.add(urn)
                grew = True
    changed = []
    for urn in after:
        if urn not in before:
            continue
        changes = list(own.get(urn, [])) + [c for c, sources in derived.get(urn, []) if sources & moved]
        if changes:
            changed.append({"resource": after[urn], "changes": sorted(changes, key=lambda c: c["key"])})
    return {"added": added, "removed": removed, "changed": changed}


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()


def _value(v: Any) -> str:
    if v is _MISSING:
        return "(absent)"
    text = json.dumps(v)
    return text if len(text) <= 80 else text[:77] + "..."


def render_diff(diff: dict[str, Any], old_name: str) -> str:
    def label(r: dict[str, Any]) -> str:
        return f"{r['type']}  {r['name']}"

    lines = [
        f"Changes against {old_name}: {len(diff['added'])} to add, {len(diff['removed'])} to remove, "
        f"{len(diff['changed'])} to change"
    ]
    lines += [f"  + {label(r)}" for r in diff["added"]]
    lines += [f"  - {label(r)}" + (" [protect]" if r.get("protect") else "") for r in diff["removed"]]
    for c in diff["changed"]:
        lines.append(f"  ~ {label(c['resource'])}")
        lines += [f"      {ch['key']}: {_value(ch['old'])} => {_value(ch['new'])}" for ch in c["changes"]]
    return "\n".join(lines)
