"""EKS Auto Mode on the control plane (`cluster.eks.computeMode: auto-mode`): the cluster's three
capability configs, the extra cluster-role policies, the node role and its access.

AWS's rules this module encodes (EKS User Guide, "Amazon EKS Auto Mode cluster IAM role", "... node IAM
role", "Create a Node Class", "Create a Node Pool for EKS Auto Mode"; CreateCluster API):
- `computeConfig.enabled`, `storageConfig.blockStorage.enabled` and
  `kubernetesNetworkConfig.elasticLoadBalancing.enabled` are set together (EKS refuses one without the
  others), with `bootstrapSelfManagedAddons: false`;
- the cluster role trusts eks.amazonaws.com for AssumeRole + TagSession and carries
  AmazonEKSComputePolicy, AmazonEKSBlockStoragePolicy, AmazonEKSLoadBalancingPolicy and
  AmazonEKSNetworkingPolicy next to AmazonEKSClusterPolicy;
- nodes use their own role (never the cluster's) with AmazonEKSWorkerNodeMinimalPolicy and
  AmazonEC2ContainerRegistryPullOnly;
- `computeConfig.nodeRoleArn` goes with non-empty `nodePools` only, and EKS then creates the role's
  access entry itself (a second one for the same principal fails with ResourceInUseException,
  terraform-aws-eks#3241); with no built-in pool the stack creates it: type EC2, AmazonEKSAutoNodePolicy
  at cluster scope (the stack's NodeClasses name the same role either way).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.core import iam_documents as iam
from components.core.cluster_handle import SystemScheduling
from components.eks.access import AUTO_NODE_POLICY

AUTO_MODE_NODE_ENTRY_TYPE = "EC2"
# The built-in `system` pool: tainted CriticalAddonsOnly, its nodes labelled with the pool's name.
SYSTEM_POOL = "system"
NODEPOOL_LABEL = "karpenter.sh/nodepool"
CRITICAL_ADDONS_ONLY = "CriticalAddonsOnly"


def node_role_name(cluster_name: str) -> str:
    return f"{cluster_name}-eks-auto-node"


def node_trust() -> dict:
    return iam.service_trust("ec2.amazonaws.com")


def system_scheduling(built_in_pools: Sequence[str]) -> SystemScheduling:
    """Where the platform's controllers run: the built-in `system` pool when enabled (AWS's advice for
    cluster-critical add-ons), else any Auto Mode node."""
    if SYSTEM_POOL not in built_in_pools:
        return SystemScheduling(node_selector={}, tolerations=[])
    return SystemScheduling(
        node_selector={NODEPOOL_LABEL: SYSTEM_POOL},
        tolerations=[{"key": CRITICAL_ADDONS_ONLY, "operator": "Exists", "effect": "NoSchedule"}],
    )


def compute_config(built_in_pools: Sequence[str], node_role_arn: pulumi.Input[str]) -> aws.eks.ClusterComputeConfigArgs:
    pools = list(built_in_pools)
    return aws.eks.ClusterComputeConfigArgs(
        enabled=True,
        node_pools=pools,
        # EKS refuses a node role without built-in pools: custom NodeClasses name their role themselves.
        node_role_arn=node_role_arn if pools else None,
    )


def storage_config() -> aws.eks.ClusterStorageConfigArgs:
    return aws.eks.ClusterStorageConfigArgs(block_storage=aws.eks.ClusterStorageConfigBlockStorageArgs(enabled=True))


def elastic_load_balancing() -> aws.eks.ClusterKubernetesNetworkConfigElasticLoadBalancingArgs:
    return aws.eks.ClusterKubernetesNetworkConfigElasticLoadBalancingArgs(enabled=True)


def attach_cluster_policies(
    name: str, role: aws.iam.Role, kms_policy_json: str | None, parent: pulumi.Resource
) -> list[pulumi.Resource]:
    """The cluster role's Auto Mode policies; with a customer-managed volume key, its grant policy too
    (Auto Mode creates node and persistent volumes with the cluster role)."""
    child = pulumi.ResourceOptions(parent=parent)
    grants: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(
            f"{name}-cluster-{arn.rsplit('/', 1)[1]}", role=role.name, policy_arn=arn, opts=child
        )
        for arn in iam.AUTO_MODE_CLUSTER_POLICY_ARNS
    ]
    if kms_policy_json is not None:
        grants.append(
            aws.iam.RolePolicy(f"{name}-cluster-volume-kms", role=role.id, policy=kms_policy_json, opts=child)
        )
    return grants


def create_node_role(
    name: str, cluster_name: str, tags: dict[str, str], parent: pulumi.Resource
) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-auto-node",
        name=node_role_name(cluster_name),
        assume_role_policy=iam.to_json(node_trust()),
        description=f"Nodes EKS Auto Mode launches for {cluster_name}",
        tags=tags,
        opts=child,
    )
    attachments: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(
            f"{name}-auto-node-{arn.rsplit('/', 1)[1]}", role=role.name, policy_arn=arn, opts=child
        )
        for arn in iam.AUTO_MODE_NODE_POLICY_ARNS
    ]
    return role, attachments


def create_node_access(
    name: str, cluster: aws.eks.Cluster, role: aws.iam.Role, tags: dict[str, str], parent: pulumi.Resource
) -> list[pulumi.Resource]:
    """The node role's EC2 access entry and its AmazonEKSAutoNodePolicy association (no built-in pools)."""
    child = pulumi.ResourceOptions(parent=parent)
    entry = aws.eks.AccessEntry(
        f"{name}-access-auto-node",
        cluster_name=cluster.name,
        principal_arn=role.arn,
        type=AUTO_MODE_NODE_ENTRY_TYPE,
        tags={**tags, "k8s-platform/access": "node"},
        opts=child,
    )
    association = aws.eks.AccessPolicyAssociation(
        f"{name}-access-auto-node-0",
        cluster_name=cluster.name,
        principal_arn=entry.principal_arn,
        policy_arn=AUTO_NODE_POLICY,
        access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
        opts=child,
    )
    return [entry, association]
