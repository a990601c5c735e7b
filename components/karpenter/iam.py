"""Pure IAM documents for Karpenter v1: the controller policy and the node role.

The controller policy follows the structure of the policies Karpenter publishes for v1 (node
lifecycle, IAM integration, EKS integration, interruption, resource discovery), narrowed further:

- The EC2NodeClasses name a pre-made instance profile, so the controller gets no IAM write
  permission at all (no Create/Tag/AddRoleTo/RemoveRoleFrom/DeleteInstanceProfile), only
  `iam:PassRole` on the one node role and reads of that one instance profile.
- `ssm:GetParameter` only on the AMI parameters the EC2NodeClasses use.
- SQS only on the interruption queue; `eks:DescribeCluster` and the zonal-shift read only on EKS
  and only for this cluster.
- Every launch, tag and delete is tied to resources tagged `kubernetes.io/cluster/<name>=owned` and
  `karpenter.sh/nodepool`, so the controller of one cluster cannot touch another cluster's nodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from components.core.iam_documents import (
    ECR_PULL_ONLY_POLICY_ARN,
    EKS_WORKER_NODE_POLICY_ARN,
    PARTITION,
    SSM_CORE_POLICY_ARN,
    Statement,
    document,
    service_trust,
    ssm_parameter_arn,
    statement,
)

EC2_SERVICE = "ec2.amazonaws.com"

# AWS-managed node policies (components.core.iam_documents). The VPC CNI's permissions are not on
# the node role: the EKS control plane binds them to the aws-node ServiceAccount through Pod Identity.

# Parameters behind the `al2023@<version>` alias (EKS-optimized AMIs).
EKS_AMI_PARAMETER_PREFIX = "/aws/service/eks/optimized-ami/"


def node_trust() -> dict[str, Any]:
    return service_trust(EC2_SERVICE)


def node_managed_policy_arns(kind: str) -> list[str]:
    """EKS nodes need the worker policy (kubelet reads the cluster); K3s nodes only pull images and take
    SSM sessions."""
    if kind == "eks":
        return [EKS_WORKER_NODE_POLICY_ARN, ECR_PULL_ONLY_POLICY_ARN, SSM_CORE_POLICY_ARN]
    return [ECR_PULL_ONLY_POLICY_ARN, SSM_CORE_POLICY_ARN]


def ami_parameter_arns(kind: str, ssm_parameters: Iterable[str], region: str, account_id: str) -> list[str]:
    if kind == "eks":
        return [ssm_parameter_arn(EKS_AMI_PARAMETER_PREFIX + "*", region, account_id)]
    return sorted({ssm_parameter_arn(p, region, account_id) for p in ssm_parameters})


def controller_policy(
    *,
    cluster_name: str,
    kind: str,
    region: str,
    account_id: str,
    node_role_arn: str,
    instance_profile_arn: str,
    queue_arn: str,
    ami_parameter_arns: list[str],
) -> dict[str, Any]:
    """The Karpenter v1 controller policy for one cluster."""
    ec2 = f"arn:{PARTITION}:ec2:{region}"
    # Karpenter tags everything it launches with both keys, on EKS and elsewhere alike.
    owned = {
        f"aws:RequestTag/kubernetes.io/cluster/{cluster_name}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": cluster_name,
    }
    resource_owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}": "owned"}
    nodepool_requested = {"aws:RequestTag/karpenter.sh/nodepool": "*"}
    nodepool_resource = {"aws:ResourceTag/karpenter.sh/nodepool": "*"}
    launched = [
        f"{ec2}:*:{r}/*"
        for r in ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")
    ]
    # After launch the controller only adds the NodeClaim name, the Name tag and the cluster name.
    tagging_conditions: dict[str, dict[str, Any]] = {
        "StringEquals": resource_owned,
        "StringLike": nodepool_resource,
        "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]},
    }

    statements: list[Statement] = [
        # --- node lifecycle
        statement(
            ["ec2:RunInstances", "ec2:CreateFleet"],
            [
                f"{ec2}::image/*",
                f"{ec2}::snapshot/*",
                f"{ec2}:*:security-group/*",
                f"{ec2}:*:subnet/*",
                f"{ec2}:*:capacity-reservation/*",
                f"{ec2}:*:placement-group/*",
            ],
            sid="AllowScopedEC2InstanceAccessActions",
        ),
        statement(
            ["ec2:RunInstances", "ec2:CreateFleet"],
            f"{ec2}:*:launch-template/*",
            conditions={"StringEquals": resource_owned, "StringLike": nodepool_resource},
            sid="AllowScopedEC2LaunchTemplateAccessActions",
        ),
        statement(
            ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            launched,
            conditions={"StringEquals": owned, "StringLike": nodepool_requested},
            sid="AllowScopedEC2InstanceActionsWithTags",
        ),
        statement(
            "ec2:CreateTags",
            launched,
            conditions={
                "StringEquals": {**owned, "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                "StringLike": nodepool_requested,
            },
            sid="AllowScopedResourceCreationTagging",
        ),
        statement(
            "ec2:CreateTags", f"{ec2}:*:instance/*", conditions=tagging_conditions, sid="AllowScopedResourceTagging"
        ),
        statement(
            ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
            conditions={"StringEquals": resource_owned, "StringLike": nodepool_resource},
            sid="AllowScopedDeletion",
        ),
        # --- IAM integration: pass exactly the node role, to EC2 only; read exactly its instance profile
        statement(
            "iam:PassRole",
            node_role_arn,
            conditions={"StringEquals": {"iam:PassedToService": EC2_SERVICE}},
            sid="AllowPassingInstanceRole",
        ),
        statement("iam:GetInstanceProfile", instance_profile_arn, sid="AllowInstanceProfileReadActions"),
        # Karpenter's instance-profile garbage collection lists profiles; listing returns metadata only.
        statement("iam:ListInstanceProfiles", "*", sid="AllowUnscopedInstanceProfileListAction"),
        # --- interruption
        statement(
            ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            queue_arn,
            sid="AllowInterruptionQueueActions",
        ),
        # --- resource discovery
        statement(
            [
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            "*",
            conditions={"StringEquals": {"aws:RequestedRegion": region}},
            sid="AllowRegionalReadActions",
        ),
        statement("ssm:GetParameter", ami_parameter_arns, sid="AllowSSMReadActions"),
        # The Price List API has no resource-level permissions.
        statement("pricing:GetProducts", "*", sid="AllowPricingReadActions"),
    ]
    if kind == "eks":
        cluster_arn = f"arn:{PARTITION}:eks:{region}:{account_id}:cluster/{cluster_name}"
        statements += [
            statement("eks:DescribeCluster", cluster_arn, sid="AllowAPIServerEndpointDiscovery"),
            statement(
                "arc-zonal-shift:GetManagedResource",
                "*",
                conditions={"StringEquals": {"arc-zonal-shift:ResourceIdentifier": cluster_arn}},
                sid="AllowZonalShiftStatusReadOnly",
            ),
        ]
    return document(*statements)
