"""`k8s-platform:cluster.eks.computeMode` / `cluster.eks.autoMode`: EKS Auto Mode, and the rules that
keep self-managed-Karpenter keys out of an Auto Mode stack.

Under `computeMode: auto-mode` AWS runs the node provisioning (Karpenter), the VPC CNI, kube-proxy,
CoreDNS, the EBS CSI driver, the load balancer controller and the Pod Identity agent itself. Keys that
configure the self-managed versions of those would be silently ignored, so `auto_mode_problems` refuses
them with what to do instead. The stack's `karpenter.nodeClasses` / `nodePools` still apply: they are
rendered as `eks.amazonaws.com/v1` NodeClasses and `karpenter.sh/v1` NodePools that reference them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from components.config.base import Model
from components.config.checks import duration_seconds

if TYPE_CHECKING:
    from components.config.karpenter import KarpenterConfig, KarpenterNodeClassConfig, KarpenterNodePoolConfig
    from components.config.stack import StackConfig

ComputeMode = Literal["karpenter", "auto-mode"]
BuiltInNodePool = Literal["general-purpose", "system"]
BUILT_IN_NODE_POOLS: tuple[str, ...] = ("general-purpose", "system")
# EKS User Guide (create-node-class): "Do not name your custom node class default" (the built-in one).
BUILT_IN_NODE_CLASS = "default"
# EKS Auto Mode enforces a 21-day maximum node lifetime (EKS User Guide, "EKS Auto Mode" overview); its
# NodePools default to 336h (Karpenter's CRD default, 720h, is past that).
AUTO_MODE_MAX_NODE_LIFETIME_HOURS = 21 * 24
AUTO_MODE_DEFAULT_EXPIRE_AFTER = "336h"
# The managed add-ons Auto Mode replaces: installing them as well would run two of each on the nodes.
REPLACED_ADDONS = ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver", "eks-pod-identity-agent")


class EksAutoModeConfig(Model):
    """EKS Auto Mode settings (`computeMode: auto-mode` only)."""

    built_in_node_pools: list[BuiltInNodePool] = Field(
        default_factory=lambda: list(BUILT_IN_NODE_POOLS),
        description=(
            "Auto Mode's built-in NodePools to enable (`computeConfig.nodePools`), distinct: `system` (tainted "
            "`CriticalAddonsOnly`; the platform's controllers run there) and `general-purpose`; `[]` runs only the "
            "stack's `karpenter.nodePools`. With built-in pools EKS creates the node role's access entry itself; "
            "without, the stack creates it (type EC2, AmazonEKSAutoNodePolicy)."
        ),
    )

    @field_validator("built_in_node_pools")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("values must be distinct")
        return v


def uses_auto_mode(cfg: "StackConfig") -> bool:
    """EKS with `computeMode: auto-mode`."""
    return cfg.cluster.kind == "eks" and cfg.cluster.eks.compute_mode == "auto-mode"


def auto_mode_node_classes(karpenter: "KarpenterConfig") -> list["KarpenterNodeClassConfig"]:
    """The NodeClasses the stack renders under Auto Mode: the configured ones. Without
    `karpenter.nodeClasses` the pools' default class `default` is Auto Mode's built-in NodeClass."""
    return list(karpenter.node_classes) if "node_classes" in karpenter.model_fields_set else []


def auto_mode_expire_after(pool: "KarpenterNodePoolConfig") -> str:
    """A pool's `expireAfter` under Auto Mode: as configured, else AWS's default (336h)."""
    return pool.expire_after if "expire_after" in pool.model_fields_set else AUTO_MODE_DEFAULT_EXPIRE_AFTER


def auto_mode_problems(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    eks = cfg.cluster.eks
    if cfg.cluster.kind != "eks":
        return
    if eks.compute_mode != "auto-mode":
        if "auto_mode" in eks.model_fields_set:
            yield (
                "cluster.eks.autoMode",
                "applies to computeMode: auto-mode; this cluster runs self-managed Karpenter "
                "(set computeMode: auto-mode, or remove the block)",
            )
        return
    if "system_node_group" in eks.model_fields_set:
        yield (
            "cluster.eks.systemNodeGroup",
            "Auto Mode runs no managed node group (its nodes need no vpc-cni or kube-proxy add-on, which a "
            "managed node group would): the platform's controllers run on the built-in `system` NodePool; "
            "remove the block",
        )
    replaced = [name for name in eks.addon_versions if name in REPLACED_ADDONS]
    if replaced:
        yield (
            "cluster.eks.addonVersions",
            f"{', '.join(replaced)}: Auto Mode runs {'this' if len(replaced) == 1 else 'these'} itself and the "
            "stack installs no such add-on; remove the override",
        )
    if eks.security_group_policies:
        yield (
            "cluster.eks.securityGroupPolicies",
            "EKS Auto Mode does not support security groups for pods (its nodes run no trunk ENI for the VPC "
            "resource controller to attach branch ENIs to): use Kubernetes NetworkPolicies, or computeMode: karpenter",
        )
    for i, pool in enumerate(cfg.karpenter.node_pools):
        if pool.security_groups_for_pods:
            yield (
                f"karpenter.nodePools[{i}].securityGroupsForPods",
                "EKS Auto Mode does not support security groups for pods: remove the key, or computeMode: karpenter",
            )
    lb = cfg.addons.aws_load_balancer_controller
    if lb.target_type is not None:
        yield (
            "addons.awsLoadBalancerController.targetType",
            "configures the self-managed controller's IngressClassParams; Auto Mode's load balancing picks the "
            "target type itself (remove the key)",
        )
    if lb.waf_integration:
        yield (
            "addons.awsLoadBalancerController.wafIntegration",
            "grants the self-managed controller WAF and Shield permissions; under auto-mode no such controller "
            "runs (Auto Mode supports WAFv2 through the wafv2-acl-arn Ingress annotation, not Shield): remove the key",
        )
    k = cfg.karpenter
    if k.replicas is not None:
        yield (
            "karpenter.replicas",
            "no Karpenter controller runs under auto-mode (AWS runs node provisioning); remove the key",
        )
    pools = k.node_pools if k.enabled else []
    if not pools and not cfg.cluster.eks.auto_mode.built_in_node_pools:
        yield (
            "cluster.eks.autoMode.builtInNodePools",
            "no built-in NodePool and no karpenter.nodePools: Auto Mode would launch no node, so no pod could run; "
            "enable `system` and/or `general-purpose`, or define karpenter.nodePools",
        )
    if not k.enabled:
        return
    for i, nc in enumerate(auto_mode_node_classes(k)):
        key = f"karpenter.nodeClasses.{i}"
        if nc.name == BUILT_IN_NODE_CLASS:
            yield (
                f"{key}.name",
                "'default' is Auto Mode's built-in NodeClass (EKS manages it); name the stack's class differently "
                "and point its pools' nodeClass at the new name",
            )
        if nc.ami_alias is not None:
            yield (
                f"{key}.amiAlias",
                "Auto Mode picks and patches the node AMI itself (a NodeClass has no AMI selection; nodes are "
                "replaced within 21 days); remove the key",
            )
        if "max_pods" in nc.model_fields_set:
            yield (
                f"{key}.maxPods",
                "Auto Mode sets the kubelet's maxPods itself (at most 110; a NodeClass has no kubelet settings); "
                "remove the key",
            )
    own_classes = {nc.name for nc in auto_mode_node_classes(k)}
    for i, pool in enumerate(k.node_pools):
        if pool.node_class == BUILT_IN_NODE_CLASS and not own_classes and not eks.auto_mode.built_in_node_pools:
            yield (
                f"karpenter.nodePools.{i}.nodeClass",
                "'default' is Auto Mode's built-in NodeClass, which EKS provisions only with built-in pools "
                "(autoMode.builtInNodePools is []); define karpenter.nodeClasses and point the pool at one",
            )
        expire_after = auto_mode_expire_after(pool)
        seconds = None if expire_after == "Never" else duration_seconds(expire_after)
        if seconds is None or seconds > AUTO_MODE_MAX_NODE_LIFETIME_HOURS * 3600:
            yield (
                f"karpenter.nodePools.{i}.expireAfter",
                f"'{expire_after}': EKS Auto Mode replaces every node after at most 21 days "
                f"({AUTO_MODE_MAX_NODE_LIFETIME_HOURS}h), whatever the pool says; set at most "
                f"{AUTO_MODE_MAX_NODE_LIFETIME_HOURS}h (AWS's default is 336h)",
            )
