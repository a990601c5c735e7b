"""The control plane's deployed minor, as a saved plan or a stack's outputs record it, and the stack
config that tells the program about it (`k8s-platform:cluster.eks.deployedVersion`; on K3s the
servers' exact release, output `k3sVersion`, as `k8s-platform:cluster.k3s.deployedVersion`).

The program refuses a `cluster.eks.version` that skips a minor or goes back when it knows the
deployed minor (components/config/version_rules.py); these helpers are how `platformctl preview
--offline --previous-plan PLAN.json` and `platformctl upgrade` tell it.
"""

from __future__ import annotations

import copy
from typing import Any

from components.core.version_skew import minor_of, minor_str

CLUSTER_KEY = "k8s-platform:cluster"
EKS_CLUSTER_TYPE = "aws:eks/cluster:Cluster"


def _version_text(value: Any) -> str | None:
    if isinstance(value, dict) and "value" in value:  # an Automation API OutputValue as JSON
        value = value["value"]
    return minor_str(value) if isinstance(value, str) and minor_of(value) is not None else None


def from_outputs(outputs: dict[str, Any]) -> str | None:
    """`kubernetesVersion` of a stack's outputs (what `pulumi stack output --json` prints)."""
    return _version_text((outputs or {}).get("kubernetesVersion"))


def from_plan(plan: dict[str, Any]) -> str | None:
    """The EKS minor a plan deploys (its `kubernetesVersion` output, else its cluster resource's
    `version`), or the K3s release of a K3s plan (its `k3sVersion` output)."""
    k3s = (plan.get("outputs") or {}).get("k3sVersion")
    if isinstance(k3s, dict) and "value" in k3s:
        k3s = k3s["value"]
    if isinstance(k3s, str) and "+k3s" in k3s:
        return k3s
    found = from_outputs(plan.get("outputs") or {})
    if found is not None:
        return found
    for res in plan.get("resources") or []:
        if isinstance(res, dict) and res.get("type") == EKS_CLUSTER_TYPE:
            found = _version_text((res.get("inputs") or {}).get("version"))
            if found is not None:
                return found
    return None


def with_deployed_version(raw_config: dict[str, Any], deployed: str) -> dict[str, Any]:
    """A copy of a stack's config with `cluster.eks.deployedVersion` (an EKS minor) or
    `cluster.k3s.deployedVersion` (a K3s release) set; a version of the other kind changes nothing."""
    cluster = raw_config.get(CLUSTER_KEY)
    if not isinstance(cluster, dict):
        return raw_config
    section = {"eks": "eks", "k3s": "k3s"}.get(cluster.get("kind"))
    if section is None or (section == "k3s") != ("+k3s" in deployed):
        return raw_config
    raw = copy.deepcopy(raw_config)
    node = raw[CLUSTER_KEY].setdefault(section, {})
    if isinstance(node, dict):
        node["deployedVersion"] = deployed
    return raw
