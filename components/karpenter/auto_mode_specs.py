"""Pure builders for EKS Auto Mode's node objects: `NodeClass` (eks.amazonaws.com/v1) and the
`karpenter.sh/v1` NodePools that reference it.

The same `karpenter.nodeClasses` / `nodePools` config as self-managed Karpenter, rendered for what Auto
Mode accepts (EKS User Guide, "Create a Node Class" and "Create a Node Pool for EKS Auto Mode"):
- a NodeClass names the node IAM role, selects the node subnets and security group by the stack's
  discovery tags, puts pod addresses in the pod subnets (`podSubnetSelectorTerms` with
  `podSecurityGroupSelectorTerms`, Auto Mode's counterpart of VPC CNI custom networking), and sizes and
  encrypts the ephemeral storage; no AMI, user-data, IMDS or kubelet fields exist (AWS owns the node);
- NodePool requirements use Auto Mode's `eks.amazonaws.com/instance-*` labels (the
  `karpenter.k8s.aws/*` ones are Karpenter's) and no `kubernetes.io/os` (unsupported: Linux only).
Resource tags are not set on the NodeClass: AWS's Auto Mode managed policies do not permit user tags
on the instances, and a NodeClass with tags would fail to launch nodes without extra permissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from components.config.auto_mode import auto_mode_expire_after
from components.karpenter.specs import (
    DISCOVERY_TAG,
    NodePoolSpec,
    _prune,
    config_pool_requirements,
    config_pool_spec,
)

if TYPE_CHECKING:
    from components.config import KarpenterNodeClassConfig, KarpenterNodePoolConfig

NODE_CLASS_API_VERSION = "eks.amazonaws.com/v1"
NODE_CLASS_GROUP = "eks.amazonaws.com"
NODE_CLASS_KIND = "NodeClass"

# Auto Mode's well-known instance labels (EKS User Guide, "EKS Auto Mode Supported Labels"): the
# `instance-category`, `-generation`, `-family` and `-size` that Karpenter has under karpenter.k8s.aws.
AUTO_MODE_LABELS = "eks.amazonaws.com"
# Pod subnets carry these tags (components/network/layout.subnet_tags): tier `pod`, and the cluster tag.
POD_TIER_TAG = "tier"


def cluster_tag(cluster_name: str) -> str:
    return f"kubernetes.io/cluster/{cluster_name}"


@dataclass(frozen=True)
class NodeClassSpec:
    """One Auto Mode NodeClass."""

    name: str
    cluster_name: str
    role: str  # node IAM role *name* (the NodeClass field takes a name, not an ARN)
    ephemeral_storage_gib: int
    kms_key_id: str | None = None  # None: the account's default EBS key (still encrypted)
    pod_subnets: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.ephemeral_storage_gib <= 59000:
            raise ValueError(
                f"NodeClass {self.name}: ephemeral storage {self.ephemeral_storage_gib}Gi outside 1..59000"
            )
        if self.name == "default":
            raise ValueError("NodeClass 'default' is Auto Mode's built-in class; name the stack's class differently")

    def manifest(self) -> dict[str, Any]:
        discovery = [{"tags": {DISCOVERY_TAG: self.cluster_name}}]
        pods = [{"tags": {POD_TIER_TAG: "pod", cluster_tag(self.cluster_name): "shared"}}]
        return _prune(
            {
                "apiVersion": NODE_CLASS_API_VERSION,
                "kind": NODE_CLASS_KIND,
                "metadata": {"name": self.name},
                "spec": {
                    "role": self.role,
                    # Nodes in the private subnets, with the node security group (both tagged for discovery).
                    "subnetSelectorTerms": discovery,
                    "securityGroupSelectorTerms": discovery,
                    # Pod addresses from the pod CIDR subnets, like custom networking on self-managed nodes;
                    # the two selectors go together.
                    "podSubnetSelectorTerms": pods if self.pod_subnets else None,
                    "podSecurityGroupSelectorTerms": discovery if self.pod_subnets else None,
                    "ephemeralStorage": {"size": f"{self.ephemeral_storage_gib}Gi", "kmsKeyID": self.kms_key_id},
                    # Nodes stay private even in a subnet that maps public IPs on launch.
                    "advancedNetworking": {"associatePublicIPAddress": False},
                },
            }
        )


def auto_mode_node_pool_from_config(pool: "KarpenterNodePoolConfig") -> NodePoolSpec:
    return config_pool_spec(
        pool,
        config_pool_requirements(pool, label_prefix=AUTO_MODE_LABELS, linux_only=False),
        auto_mode_expire_after(pool),
        node_class_group=NODE_CLASS_GROUP,
        node_class_kind=NODE_CLASS_KIND,
    )


def auto_mode_node_class_from_config(
    node_class: "KarpenterNodeClassConfig", *, cluster_name: str, role: str, kms_key_id: str | None
) -> NodeClassSpec:
    return NodeClassSpec(
        name=node_class.name,
        cluster_name=cluster_name,
        role=role,
        ephemeral_storage_gib=node_class.volume_size_gib,
        kms_key_id=kms_key_id,
    )
