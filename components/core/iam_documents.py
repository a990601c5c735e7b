"""Pure renderers for IAM policy documents shared by every component.

Documents are built as plain dicts (testable, comparable) and serialised once with
`to_json`. Component code passes the JSON string to `policy=`/`assume_role_policy=`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

Statement = dict[str, Any]


def statement(
    actions: str | Iterable[str],
    resources: str | Iterable[str] | None = None,
    *,
    effect: str = "Allow",
    principal: dict[str, Any] | None = None,
    conditions: dict[str, dict[str, Any]] | None = None,
    sid: str | None = None,
) -> Statement:
    stmt: Statement = {}
    if sid:
        stmt["Sid"] = sid
    stmt["Effect"] = effect
    if principal is not None:
        stmt["Principal"] = principal
    stmt["Action"] = _one_or_list(actions)
    if resources is not None:
        stmt["Resource"] = _one_or_list(resources)
    if conditions:
        stmt["Condition"] = conditions
    return stmt


def document(*statements: Statement) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=False, separators=(",", ":"))


def service_trust(
    service: str | list[str],
    actions: Iterable[str] = ("sts:AssumeRole",),
    conditions: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Trust policy letting an AWS service principal assume a role."""
    return document(statement(list(actions), principal={"Service": service}, conditions=conditions))


def account_root(account_id: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:root"


def kms_key_policy(account_id: str, *extra: Statement) -> dict[str, Any]:
    """Key policy: the account administers the key through IAM (no lock-out), plus service grants."""
    return document(
        statement("kms:*", "*", principal={"AWS": account_root(account_id)}, sid="AccountAdministersThroughIam"),
        *extra,
    )


def logs_kms_statement(account_id: str, region: str) -> Statement:
    """Lets CloudWatch Logs in this account and region use the key for log groups of this account."""
    return statement(
        ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        "*",
        principal={"Service": f"logs.{region}.amazonaws.com"},
        conditions={
            "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account_id}:log-group:*"}
        },
        sid="CloudWatchLogsInThisAccount",
    )


def _one_or_list(value: str | Iterable[str]) -> str | list[str]:
    if isinstance(value, str):
        return value
    items = list(value)
    return items[0] if len(items) == 1 else items


# ------------------------------------------------------------------------ AWS managed policies
# The AWS-managed policies the platform attaches, each named once. (IAM reference: "AWS managed
# policies"; the ARNs carry the `aws` account field and, for service-role policies, their path.)
PARTITION = "aws"
EKS_WORKER_NODE_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/AmazonEKSWorkerNodePolicy"
ECR_PULL_ONLY_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly"
SSM_CORE_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/AmazonSSMManagedInstanceCore"
EBS_CSI_DRIVER_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
LAMBDA_VPC_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
# EFS CSI driver: create/delete access points (tag-scoped to the driver's own), describe file systems
# and mount targets; the EKS add-on and the chart use the same policy.
EFS_CSI_DRIVER_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"
# On the EKS cluster role: lets the VPC resource controller in the control plane attach trunk ENIs
# to nodes and branch ENIs to pods (security groups for pods).
EKS_VPC_RESOURCE_CONTROLLER_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/AmazonEKSVPCResourceController"
# On the Fargate pod execution role: pull images from ECR (and write logs through the log router).
EKS_FARGATE_POD_EXECUTION_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/AmazonEKSFargatePodExecutionRolePolicy"
# EKS Auto Mode (EKS User Guide "Amazon EKS Auto Mode cluster IAM role" and "... node IAM role"): the cluster
# role carries these four next to AmazonEKSClusterPolicy; Auto Mode nodes need only the minimal worker policy
# and ECR pull (no CNI policy: the VPC CNI runs inside AWS's node image, on the cluster role's permissions).
EKS_CLUSTER_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/AmazonEKSClusterPolicy"
EKS_COMPUTE_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/AmazonEKSComputePolicy"
EKS_BLOCK_STORAGE_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/AmazonEKSBlockStoragePolicy"
EKS_LOAD_BALANCING_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/AmazonEKSLoadBalancingPolicy"
EKS_NETWORKING_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/AmazonEKSNetworkingPolicy"
AUTO_MODE_CLUSTER_POLICY_ARNS = (
    EKS_COMPUTE_POLICY_ARN,
    EKS_BLOCK_STORAGE_POLICY_ARN,
    EKS_LOAD_BALANCING_POLICY_ARN,
    EKS_NETWORKING_POLICY_ARN,
)
EKS_WORKER_NODE_MINIMAL_POLICY_ARN = f"arn:{PARTITION}:iam::aws:policy/AmazonEKSWorkerNodeMinimalPolicy"
AUTO_MODE_NODE_POLICY_ARNS = (EKS_WORKER_NODE_MINIMAL_POLICY_ARN, ECR_PULL_ONLY_POLICY_ARN)


def ssm_parameter_arn(name: str, region: str, account_id: str) -> str:
    """ARN of an SSM parameter. Public parameters (`/aws/service/...`) live in no account: their ARN
    has an empty account field."""
    path = name.lstrip("/")
    owner = "" if name.startswith("/aws/service/") else account_id
    return f"arn:{PARTITION}:ssm:{region}:{owner}:parameter/{path}"


def deny_insecure_transport(
    actions: str,
    resources: str | Iterable[str],
    *,
    principal: str | dict[str, Any] | None = None,
    sid: str = "DenyInsecureTransport",
) -> Statement:
    """Deny every request to `resources` that does not use TLS (S3 bucket and SQS queue policies;
    CIS AWS 2.1.1). `actions` is the service's wildcard (`s3:*`, `sqs:*`)."""
    return statement(
        actions,
        resources,
        effect="Deny",
        principal=principal if principal is not None else {"AWS": "*"},
        conditions={"Bool": {"aws:SecureTransport": "false"}},
        sid=sid,
    )
