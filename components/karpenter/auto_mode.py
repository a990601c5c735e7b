"""`AutoModeNodePools`: the stack's NodeClasses and NodePools on an EKS Auto Mode cluster.

Wiring only; the specs come from `auto_mode_specs`. No controller, IAM or interruption queue: AWS runs
Auto Mode's Karpenter and handles Spot interruptions itself. Every object depends on the cluster (and the
node role with its access), so Pulumi deletes NodePools first, then NodeClasses, and only then the
cluster: deleting a NodePool makes Auto Mode drain and terminate its nodes, and the NodeClass's
finalizer waits for them, so no Auto Mode instance outlives the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.config import KarpenterConfig, StackConfig
from components.config.auto_mode import auto_mode_node_classes
from components.core.cluster_handle import ClusterHandle
from components.karpenter.auto_mode_specs import (
    NODE_CLASS_API_VERSION,
    NODE_CLASS_KIND,
    auto_mode_node_class_from_config,
    auto_mode_node_pool_from_config,
)


@dataclass(frozen=True)
class AutoModeNodePoolsArgs:
    config: KarpenterConfig
    """The `karpenter` section: node classes (ephemeral storage size) and node pools."""
    cluster: ClusterHandle
    """The Auto Mode cluster (its `ready` holds the cluster and, without built-in pools, the node access)."""
    node_role: aws.iam.Role
    """Auto Mode's node role (`EksCluster.auto_mode_node_role`), named by every NodeClass."""
    node_role_name: str
    """That role's name as rendered into the NodeClasses (known before deployment, so previews show it)."""
    kms_key_id: str | None = None
    """Customer-managed key for the nodes' ephemeral storage (`addons.ebsCsi.kmsKeyArn`); default: none,
    the account's `aws/ebs` key."""

    @classmethod
    def from_stack(
        cls, cfg: StackConfig, cluster: ClusterHandle, node_role: aws.iam.Role, node_role_name: str
    ) -> "AutoModeNodePoolsArgs":
        return cls(
            config=cfg.karpenter,
            cluster=cluster,
            node_role=node_role,
            node_role_name=node_role_name,
            kms_key_id=cfg.addons.ebs_csi.kms_key_arn,
        )


class AutoModeNodePools(pulumi.ComponentResource):
    node_classes: dict[str, k8s.apiextensions.CustomResource]  # by `karpenter.nodeClasses[].name`
    node_pools: dict[str, k8s.apiextensions.CustomResource]  # by `karpenter.nodePools[].name`

    def __init__(self, name: str, args: AutoModeNodePoolsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:karpenter:AutoModeNodePools", name, None, opts)
        cfg, cluster = args.config, args.cluster
        if cluster.eks_cluster is None:
            raise ValueError(f"{name}: EKS Auto Mode NodePools need an EKS cluster")
        on_cluster = [cluster.eks_cluster, *cluster.ready, args.node_role]
        self.node_classes = {}
        # Without `karpenter.nodeClasses`, pools on class `default` use Auto Mode's built-in NodeClass.
        for nc in auto_mode_node_classes(cfg):
            manifest = auto_mode_node_class_from_config(
                nc, cluster_name=cluster.name, role=args.node_role_name, kms_key_id=args.kms_key_id
            ).manifest()
            self.node_classes[nc.name] = k8s.apiextensions.CustomResource(
                f"{name}-nodeclass-{nc.name}",
                api_version=NODE_CLASS_API_VERSION,
                kind=NODE_CLASS_KIND,
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions(parent=self, provider=cluster.k8s_provider, depends_on=on_cluster),
            )
        self.node_pools = {}
        for pool in cfg.node_pools:
            manifest = auto_mode_node_pool_from_config(pool).manifest()
            self.node_pools[pool.name] = k8s.apiextensions.CustomResource(
                f"{name}-nodepool-{pool.name}",
                api_version=manifest["apiVersion"],
                kind=manifest["kind"],
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=cluster.k8s_provider,
                    depends_on=[
                        *on_cluster,
                        *([self.node_classes[pool.node_class]] if pool.node_class in self.node_classes else []),
                    ],
                ),
            )
        self.register_outputs({"nodeClasses": list(self.node_classes), "nodePools": list(self.node_pools)})
