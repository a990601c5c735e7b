"""Views of a plan dict (the JSON shape `programs.plan` documents): counts and the resource tree.

Pure functions on plain data with no Pulumi import, so a cached plan can be reported without loading
the SDK (`platformctl preview`'s cache fast path)."""

from __future__ import annotations

from collections import Counter
from typing import Any


def empty_plan(project: str, stack: str, error: list[str] | None = None) -> dict[str, Any]:
    plan: dict[str, Any] = {
        "project": project,
        "stack": stack,
        "resources": [],
        "outputs": {},
        "policy": {"violations": []},
    }
    if error:
        plan["errors"] = list(error)
    return plan


def type_counts(plan: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted(Counter(r["type"] for r in plan["resources"]).items(), key=lambda kv: (-kv[1], kv[0]))


def render_tree(plan: dict[str, Any]) -> str:
    """Indented resource tree (components with their children), like the engine's preview."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    urns = {r["urn"] for r in plan["resources"]}
    for r in plan["resources"]:
        parent = r["parent"] if r["parent"] in urns else None
        children.setdefault(parent, []).append(r)
    lines = [f"{plan['project']}-{plan['stack']} (pulumi:pulumi:Stack)"]

    def walk(parent: str | None, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=lambda x: (x["custom"], x["type"], x["name"])):
            mark = " [protect]" if r["protect"] else ""
            lines.append(f"{'    ' * depth}+ {r['type']}  {r['name']}{mark}")
            walk(r["urn"], depth + 1)

    walk(None, 1)
    return "\n".join(lines)
