"""The Karpenter controller policy and node role documents: least privilege, scoped to one cluster."""

from __future__ import annotations

import json

import pytest

from components.karpenter import iam as kiam

REGION, ACCOUNT = "us-east-1", "222222222222"
NODE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/prod-eks-karpenter-node"
PROFILE = f"arn:aws:iam::{ACCOUNT}:instance-profile/prod-eks-karpenter-node"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:prod-eks-karpenter-interruption"


def policy(kind: str = "eks", cluster: str = "prod-eks", ssm: tuple[str, ...] = ()) -> dict:
    return kiam.controller_policy(
        cluster_name=cluster,
        kind=kind,
        region=REGION,
        account_id=ACCOUNT,
        node_role_arn=NODE_ROLE,
        instance_profile_arn=PROFILE,
        queue_arn=QUEUE,
        ami_parameter_arns=kiam.ami_parameter_arns(kind, ssm, REGION, ACCOUNT),
    )


def statements(doc: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in doc["Statement"]}


def actions(stmt: dict) -> list[str]:
    return [stmt["Action"]] if isinstance(stmt["Action"], str) else stmt["Action"]


def resources(stmt: dict) -> list[str]:
    return [stmt["Resource"]] if isinstance(stmt["Resource"], str) else stmt["Resource"]


def test_every_write_is_conditioned_on_this_clusters_tags():
    s = statements(policy())
    owned = {
        "aws:RequestTag/kubernetes.io/cluster/prod-eks": "owned",
        "aws:RequestTag/eks:eks-cluster-name": "prod-eks",
    }
    launch = s["AllowScopedEC2InstanceActionsWithTags"]
    assert set(actions(launch)) == {"ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"}
    assert launch["Condition"] == {"StringEquals": owned, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}
    create_tags = s["AllowScopedResourceCreationTagging"]
    assert create_tags["Condition"]["StringEquals"]["ec2:CreateAction"] == [
        "RunInstances",
        "CreateFleet",
        "CreateLaunchTemplate",
    ]
    assert create_tags["Condition"]["StringEquals"]["aws:RequestTag/kubernetes.io/cluster/prod-eks"] == "owned"
    retag = s["AllowScopedResourceTagging"]
    assert retag["Condition"]["StringEquals"] == {"aws:ResourceTag/kubernetes.io/cluster/prod-eks": "owned"}
    assert retag["Condition"]["StringLike"] == {"aws:ResourceTag/karpenter.sh/nodepool": "*"}
    assert set(retag["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]) == {
        "eks:eks-cluster-name",
        "karpenter.sh/nodeclaim",
        "Name",
    }
    delete = s["AllowScopedDeletion"]
    assert set(actions(delete)) == {"ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"}
    assert delete["Condition"] == {
        "StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/prod-eks": "owned"},
        "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
    }
    # Launch templates are used only if they are this cluster's.
    lt = s["AllowScopedEC2LaunchTemplateAccessActions"]
    assert lt["Condition"]["StringEquals"] == {"aws:ResourceTag/kubernetes.io/cluster/prod-eks": "owned"}


def test_unconditioned_statements_are_only_reads_or_regional_resources():
    for stmt in policy()["Statement"]:
        if "Condition" in stmt:
            continue
        writes = [a for a in actions(stmt) if not a.split(":")[1].startswith(("Describe", "Get", "List"))]
        if writes:
            # RunInstances/CreateFleet on images, subnets, SGs... cannot be tag-conditioned; everything
            # they create is (AllowScopedEC2InstanceActionsWithTags).
            assert stmt["Sid"] in {"AllowScopedEC2InstanceAccessActions", "AllowInterruptionQueueActions"}, stmt
            assert all(r.startswith(("arn:aws:ec2:us-east-1", QUEUE)) for r in resources(stmt)), stmt


def test_no_iam_write_and_pass_role_only_for_the_node_role_to_ec2():
    doc = policy()
    iam_actions = {a for s in doc["Statement"] for a in actions(s) if a.startswith("iam:")}
    assert iam_actions == {"iam:PassRole", "iam:GetInstanceProfile", "iam:ListInstanceProfiles"}
    pass_role = statements(doc)["AllowPassingInstanceRole"]
    assert pass_role["Resource"] == NODE_ROLE
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    assert statements(doc)["AllowInstanceProfileReadActions"]["Resource"] == PROFILE


def test_sqs_only_on_the_queue_and_only_to_consume():
    doc = policy()
    s = statements(doc)["AllowInterruptionQueueActions"]
    assert s["Resource"] == QUEUE
    assert set(actions(s)) == {"sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"}
    assert all(not a.startswith("sqs:") for st in doc["Statement"] if st is not s for a in actions(st))


def test_regional_reads_are_pinned_to_the_region():
    s = statements(policy())["AllowRegionalReadActions"]
    assert s["Condition"] == {"StringEquals": {"aws:RequestedRegion": REGION}}
    assert all(a.startswith("ec2:Describe") for a in actions(s))


def test_eks_gets_describe_cluster_for_its_own_cluster_only():
    s = statements(policy("eks"))
    assert s["AllowAPIServerEndpointDiscovery"]["Resource"] == f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/prod-eks"
    assert s["AllowAPIServerEndpointDiscovery"]["Action"] == "eks:DescribeCluster"
    k3s = policy("k3s", "dev-k3s", ("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",))
    assert not [a for st in k3s["Statement"] for a in actions(st) if a.startswith(("eks:", "arc-zonal-shift:"))]


def test_ssm_reads_only_the_ami_parameters():
    eks = statements(policy("eks"))["AllowSSMReadActions"]
    assert eks["Resource"] == f"arn:aws:ssm:{REGION}::parameter/aws/service/eks/optimized-ami/*"
    k3s = statements(
        policy(
            "k3s",
            "dev-k3s",
            ("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64", "/golden/k3s-arm64"),
        )
    )["AllowSSMReadActions"]
    assert k3s["Resource"] == [
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/golden/k3s-arm64",
        f"arn:aws:ssm:{REGION}::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    ]


def test_policy_fits_an_inline_role_policy():
    # IAM limits all inline policies of a role to 10,240 characters (whitespace excluded).
    assert len(json.dumps(policy(), separators=(",", ":"))) < 10_240


def test_node_role_trusts_ec2_and_gets_the_managed_policies_per_kind():
    trust = kiam.node_trust()["Statement"][0]
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    eks = kiam.node_managed_policy_arns("eks")
    assert eks == [
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    ]
    # The CNI policy is bound to aws-node with Pod Identity by the EKS control plane, not to nodes.
    assert not any("CNI" in arn for arn in eks)
    assert kiam.node_managed_policy_arns("k3s") == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    ]


@pytest.mark.parametrize(
    "name, arn",
    [
        ("/aws/service/eks/optimized-ami/*", "arn:aws:ssm:us-east-1::parameter/aws/service/eks/optimized-ami/*"),
        ("/team/ami", f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/team/ami"),
    ],
)
def test_ssm_parameter_arns(name, arn):
    assert kiam.ssm_parameter_arn(name, REGION, ACCOUNT) == arn
