"""Cross-field rules of Kubernetes versions on EKS: one minor per control-plane update, node skew.

- `cluster.eks.deployedVersion` (the control plane as deployed; `platformctl upgrade` and
  `platformctl preview --offline --previous-plan` set it): `cluster.eks.version` must be that minor or
  the next one. Without it the program cannot know, and a skip reaches EKS (README "Upgrading EKS").
- `cluster.eks.systemNodeGroup.version` and a kube-proxy build in `cluster.eks.addonVersions`: never
  newer than the control plane, at most three minors older (components/core/version_skew.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from components.core.eks_support_calendar import CALENDAR
from components.core.pins import KUBE_PROXY
from components.core.version_skew import minor_of, node_skew_problem, upgrade_problem

if TYPE_CHECKING:
    from components.config.stack import StackConfig

Problem = tuple[str, str]

_MINOR_ONLY = re.compile(r"^\d+\.\d+$")


def version_problems(cfg: "StackConfig") -> Iterator[Problem]:
    if cfg.cluster.kind != "eks":
        return
    eks = cfg.cluster.eks
    deployed = eks.deployed_version
    if deployed is not None:
        if not _MINOR_ONLY.fullmatch(deployed):
            yield ("cluster.eks.deployedVersion", f"'{deployed}' is not a Kubernetes minor like \"1.35\" (quoted)")
        else:
            problem = upgrade_problem(deployed, eks.version)
            if problem:
                yield ("cluster.eks.version", f"the control plane is deployed at {deployed}: {problem}")
    nodes = eks.system_node_group.version
    if nodes is not None:
        key = "cluster.eks.systemNodeGroup.version"
        if not _MINOR_ONLY.fullmatch(nodes):
            yield (key, f"'{nodes}' is not a Kubernetes minor like \"1.35\" (quoted)")
        elif nodes not in CALENDAR:
            yield (key, f"EKS {nodes} is not a minor EKS supports here; known: {', '.join(CALENDAR)}")
        else:
            problem = node_skew_problem(eks.version, nodes, "the system nodes")
            if problem:
                yield (key, problem)
    kube_proxy = eks.addon_versions.get(KUBE_PROXY)
    if kube_proxy is not None and minor_of(kube_proxy) is not None:
        problem = node_skew_problem(eks.version, kube_proxy, f"kube-proxy {kube_proxy}")
        if problem:
            yield ("cluster.eks.addonVersions", problem)
