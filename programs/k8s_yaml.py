"""Every Kubernetes object of an offline plan as manifests (multi-document YAML), for scanners and
schema validators that read manifests (checkov's `kubernetes` framework, kubernetes-validate).

An object's type token is `kubernetes:<group>/<version>:<Kind>` (`core` is the legacy group), its
inputs are the manifest itself. Helm releases are not rendered offline (no chart is downloaded),
so they are listed, not expanded: in a comment at the top of the YAML and by `helm_releases()`.
Secret values stay masked as in the plan.
"""

from __future__ import annotations

from typing import Any

import yaml

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
# A Secret's `data`/`stringData` masked as a whole in the plan: shown as one redacted entry, so the
# manifest keeps its schema type (a map) without revealing even the key names.
REDACTED_KEY = "redacted"


def api_version(token: str) -> tuple[str, str] | None:
    """(apiVersion, kind) of a Kubernetes object type token; None for non-objects (providers, Helm, yaml)."""
    if not token.startswith("kubernetes:") or token == HELM_RELEASE:
        return None
    _, group_version, kind = token.split(":", 2)
    group, _, version = group_version.partition("/")
    if not version or group in ("helm.sh", "yaml", "kustomize"):
        return None
    return (version if group == "core" else f"{group}/{version}"), kind


def manifests(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for r in plan["resources"]:
        found = api_version(r["type"]) if r["custom"] else None
        if found is None:
            continue
        inputs = dict(r.get("inputs") or {})
        manifest = {"apiVersion": found[0], "kind": found[1]}
        manifest.update({k: v for k, v in inputs.items() if k not in ("apiVersion", "kind")})
        if found[1] == "Secret":
            for key in ("data", "stringData"):
                if isinstance(manifest.get(key), str):
                    manifest[key] = {REDACTED_KEY: manifest[key]}
        out.append(manifest)
    return out


def helm_releases(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": (r.get("inputs") or {}).get("name", r["name"]),
            "namespace": (r.get("inputs") or {}).get("namespace"),
            "chart": (r.get("inputs") or {}).get("chart"),
            "version": (r.get("inputs") or {}).get("version"),
        }
        for r in plan["resources"]
        if r["type"] == HELM_RELEASE
    ]


def to_yaml(plan: dict[str, Any]) -> str:
    header = [
        f"# Kubernetes objects of {plan.get('project')}-{plan.get('stack')} (offline plan).",
        "# Helm releases (charts are not rendered offline, so their objects are not below):",
    ]
    releases = helm_releases(plan)
    header += [f"#   {h['namespace']}/{h['name']}: chart {h['chart']} {h['version']}" for h in releases] or [
        "#   (none)"
    ]
    docs = [yaml.safe_dump(m, sort_keys=False, default_flow_style=False) for m in manifests(plan)]
    return "\n".join(header) + "\n" + "".join(f"---\n{d}" for d in docs)
