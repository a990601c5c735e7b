"""Views of a plan for `platformctl graph`: collapse components below a depth, focus on one component.

Both return a plan of the same shape (`programs/plan.py`) that `graph.plan_to_dot` draws. A
collapsed component becomes one node carrying `collapsed: <resources inside>`; dependencies of what
it hides are redirected to it, so the picture keeps every relationship at the chosen level.
"""

from __future__ import annotations

from typing import Any

# What `graph` draws without --depth: every top-level component as one node (with its resource
# count), the dependencies between them and the stack's own resources: the prod stack then renders at
# about screen size (README "Graph"). --depth 1 opens the top-level components, --depth all draws all.
DEFAULT_DEPTH = 0


def _index(plan: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    by_urn = {r["urn"]: r for r in plan.get("resources", [])}
    depth: dict[str, int] = {}

    def depth_of(urn: str) -> int:
        """Components: 1 at the top, +1 per enclosing component. Custom resources: their parent's."""
        if urn in depth:
            return depth[urn]
        r = by_urn[urn]
        parent = r.get("parent") if r.get("parent") in by_urn else None
        base = depth_of(parent) if parent else 0
        depth[urn] = base if r.get("custom") else base + 1
        return depth[urn]

    for urn in by_urn:
        depth_of(urn)
    return by_urn, depth


def collapse(plan: dict[str, Any], max_depth: int | None) -> dict[str, Any]:
    """Components below `max_depth` open levels drawn as one node each (0: every top-level component
    is one node; 1: top-level components open, the ones inside them collapsed); None keeps everything."""
    if max_depth is None:
        return plan
    if max_depth < 0:
        raise ValueError(f"--depth must be 0 or more (or 'all'), got {max_depth}")
    by_urn, depth = _index(plan)

    def representative(urn: str) -> str:
        """The outermost component deeper than max_depth that holds `urn` (itself included), else urn."""
        chain = []
        cur: str | None = urn
        while cur in by_urn:
            chain.append(cur)
            parent = by_urn[cur].get("parent")
            cur = parent if parent in by_urn else None
        for c in reversed(chain):  # outermost first
            if not by_urn[c].get("custom") and depth[c] > max_depth:
                return c
        return urn

    rep = {urn: representative(urn) for urn in by_urn}
    hidden_count: dict[str, int] = {}
    protected_count: dict[str, int] = {}
    for urn, r in rep.items():
        if r != urn:
            hidden_count[r] = hidden_count.get(r, 0) + 1
            protected_count[r] = protected_count.get(r, 0) + (1 if by_urn[urn].get("protect") else 0)
    out = []
    deps_of: dict[str, set[str]] = {}
    for urn, r in rep.items():
        deps_of.setdefault(r, set()).update(rep[d] for d in by_urn[urn].get("dependencies") or [] if d in rep)
    for urn, res in by_urn.items():
        if rep[urn] != urn:
            continue
        entry = dict(res)
        entry["dependencies"] = sorted(d for d in deps_of.get(urn, ()) if d != urn)
        if urn in hidden_count or (not res.get("custom") and depth[urn] > max_depth):
            entry["custom"] = True  # a leaf node now
            entry["collapsed"] = hidden_count.get(urn, 0)
            entry["protect"] = bool(res.get("protect")) or protected_count.get(urn, 0) > 0
        out.append(entry)
    return {**plan, "resources": out, "totalResources": plan.get("totalResources", len(by_urn))}


def focus(plan: dict[str, Any], name: str) -> dict[str, Any]:
    """One component (by name, or `type::name`) with everything inside it, plus its neighbours: the
    resources outside it that it depends on or that depend on it (drawn as `neighbour` nodes)."""
    by_urn, _ = _index(plan)
    matches = [r for r in by_urn.values() if not r.get("custom") and name in (r["name"], f"{r['type']}::{r['name']}")]
    if not matches:
        components = sorted({r["name"] for r in by_urn.values() if not r.get("custom")})
        raise ValueError(f"--focus {name}: no component of that name; components: {', '.join(components)}")
    if len(matches) > 1:
        raise ValueError(
            f"--focus {name}: {len(matches)} components have that name; give TYPE::NAME "
            f"({', '.join(r['type'] + '::' + r['name'] for r in matches)})"
        )
    root = matches[0]["urn"]

    def inside(urn: str) -> bool:
        cur: str | None = urn
        seen = set()
        while cur in by_urn and cur not in seen:
            if cur == root:
                return True
            seen.add(cur)
            parent = by_urn[cur].get("parent")
            cur = parent if parent in by_urn else None
        return False

    members = {u for u in by_urn if inside(u)}
    neighbours: set[str] = set()
    for urn, r in by_urn.items():
        deps = set(r.get("dependencies") or [])
        if urn in members:
            neighbours |= {d for d in deps if d in by_urn and d not in members}
        elif deps & members:
            neighbours.add(urn)
    out = []
    for urn, r in by_urn.items():
        if urn in members:
            entry = dict(r)
            if urn == root:
                entry["parent"] = None
            out.append(entry)
        elif urn in neighbours:
            out.append(
                {
                    **r,
                    "parent": None,
                    "custom": True,
                    "neighbour": True,
                    "dependencies": [d for d in r.get("dependencies") or [] if d in members],
                }
            )
    return {**plan, "resources": out, "totalResources": len(by_urn)}
