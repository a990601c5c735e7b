"""EKS resilience: deletion protection on the cluster, auto repair on managed node groups (with the
node monitoring agent that reports the conditions repair acts on).

Deletion protection is EKS's own lock (`DeleteCluster` is refused while it is on): it holds where
Pulumi's `protect` does not (a `--remove`, a hand-edited state, another tool, the console).
Node auto repair replaces nodes that stay unhealthy instead of leaving them to an operator; on a
system node group that is what keeps the cluster's controllers scheduled.
"""

from __future__ import annotations

from pulumi_policy import Severity

from .common import eks_best_practices, get, resource_rule, resources_of, stack_rule, truthy

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
NODE_MONITORING_AGENT = "eks-node-monitoring-agent"


def _deletion_protection(props, cfg, report, args) -> None:
    # The provider's default is false.
    if not truthy(get(props, "deletionProtection", default=False)) and not cfg["allowUnprotected"]:
        report(
            "deletionProtection is off: anyone (or any tool) with eks:DeleteCluster can delete the cluster and "
            "every workload on it; set it true (cluster.eks.deletionProtection)"
        )


def _auto_repair(resources, cfg, report, args) -> None:
    repairing = []
    for group in resources_of(resources, NODE_GROUP):
        if truthy(get(group.props, "nodeRepairConfig", "enabled", default=False)):
            repairing.append(group)
        else:
            report(
                f"node group '{group.name}' has no auto repair (nodeRepairConfig.enabled): an unhealthy node stays "
                "in service until someone replaces it",
                group.urn,
            )
    agents = [a for a in resources_of(resources, ADDON) if get(a.props, "addonName") == NODE_MONITORING_AGENT]
    if repairing and not agents:
        report(
            f"node groups {[g.name for g in repairing]} repair nodes but the stack installs no {NODE_MONITORING_AGENT} "
            "add-on: repair then sees only the kubelet's Ready condition, not kernel, network or disk failures"
        )


RULES = [
    resource_rule(
        "eks-cluster-deletion-protection",
        "EKS clusters have deletion protection on.",
        Severity.HIGH,
        [eks_best_practices("reliability#deletion-protection")],
        [CLUSTER],
        _deletion_protection,
        {
            "allowUnprotected": {
                "type": "boolean",
                "default": False,
                "description": "allow an unprotected cluster (the run that prepares a deliberate teardown)",
            }
        },
        remediation="Set deletionProtection: true (cluster.eks.deletionProtection).",
    ),
    stack_rule(
        "eks-nodegroup-auto-repair",
        "Managed node groups have auto repair on, with the eks-node-monitoring-agent add-on installed.",
        Severity.MEDIUM,
        [eks_best_practices("reliability/node-health#node-auto-repair")],
        [NODE_GROUP, ADDON],
        _auto_repair,
    ),
]
