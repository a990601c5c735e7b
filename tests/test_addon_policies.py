"""The add-on IAM policies: what each controller may do, and what it may not (checked by evaluation)."""

from __future__ import annotations

import pytest

from components.addons.policies import (
    EBS_CSI_MANAGED_POLICY_ARN,
    LB_CLUSTER_TAG,
    LB_WAF_SHIELD_ACTIONS_REMOVED_BY_DEFAULT,
    cloud_controller_manager_policy,
    ebs_csi_kms_policy,
    load_balancer_controller_policy,
)
from tests.iam_eval import allows

CLUSTER, VPC, REGION, ACCOUNT = "prod-eks", "vpc-0abc", "us-east-1", "222222222222"
LB_POLICY = load_balancer_controller_policy(CLUSTER, VPC, REGION, ACCOUNT)
ALB = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/k8s-shared-0123/abcdef"
TG = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/k8s-default-web-0123/abcdef"
SG = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0123"
VPC_ARN = f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{VPC}"
OWNED = {f"aws:ResourceTag/{LB_CLUSTER_TAG}": CLUSTER}
OTHER_CLUSTER = {f"aws:ResourceTag/{LB_CLUSTER_TAG}": "other-cluster"}


def _actions(policy: dict) -> set[str]:
    found: set[str] = set()
    for stmt in policy["Statement"]:
        found.update([stmt["Action"]] if isinstance(stmt["Action"], str) else stmt["Action"])
    return found


WAF_POLICY = load_balancer_controller_policy(CLUSTER, VPC, REGION, ACCOUNT, waf_integration=True)


# Which actions are granted, against upstream's published iam_policy.json itself (with and without
# wafIntegration): tests/test_upstream_contracts_iam.py.


def test_lb_policy_without_waf_integration_cannot_touch_waf_or_shield():
    for action in LB_WAF_SHIELD_ACTIONS_REMOVED_BY_DEFAULT:
        assert not allows(LB_POLICY, action, ALB), action


def test_lb_waf_and_shield_calls_are_limited_to_this_accounts_albs():
    acl = f"arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/webacl/edge/0123"
    assert allows(WAF_POLICY, "wafv2:AssociateWebACL", ALB) and allows(WAF_POLICY, "wafv2:AssociateWebACL", acl)
    assert allows(WAF_POLICY, "shield:CreateProtection", ALB)
    other_account = ALB.replace(ACCOUNT, "333333333333")
    other_region = ALB.replace(REGION, "eu-west-1")
    for action in (
        "wafv2:AssociateWebACL",
        "wafv2:DisassociateWebACL",
        "waf-regional:AssociateWebACL",
        "shield:CreateProtection",
        "shield:DeleteProtection",
    ):
        assert not allows(WAF_POLICY, action, other_account), action
        assert not allows(WAF_POLICY, action, other_region), action
    cloudfront = f"arn:aws:cloudfront::{ACCOUNT}:distribution/EDFDVBD6EXAMPLE"
    assert not allows(WAF_POLICY, "shield:CreateProtection", cloudfront)


def test_lb_policy_reads_are_pinned_where_the_action_takes_a_resource():
    """Only calls without resource-level permissions (lists, Describe*) stay on "*" (checkov CKV_AWS_355)."""
    on_star = {
        a
        for s in LB_POLICY["Statement"]
        if s["Resource"] == "*"
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert (
        not {
            "acm:DescribeCertificate",
            "iam:GetServerCertificate",
            "cognito-idp:DescribeUserPoolClient",
            "ec2:GetCoipPoolUsage",
            "ec2:GetSecurityGroupsForVpc",
        }
        & on_star
    )
    cert = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0123"
    assert allows(LB_POLICY, "acm:DescribeCertificate", cert)
    assert not allows(LB_POLICY, "acm:DescribeCertificate", cert.replace(ACCOUNT, "333333333333"))
    assert allows(LB_POLICY, "ec2:GetSecurityGroupsForVpc", VPC_ARN)
    assert not allows(LB_POLICY, "ec2:GetSecurityGroupsForVpc", VPC_ARN.replace(VPC, "vpc-other"))


def test_lb_policy_has_no_action_wildcards():
    assert not [a for a in _actions(LB_POLICY) if "*" in a]


@pytest.mark.parametrize(
    "action,resource",
    [
        ("elasticloadbalancing:DeleteLoadBalancer", ALB),
        ("elasticloadbalancing:DeleteTargetGroup", TG),
        ("elasticloadbalancing:ModifyLoadBalancerAttributes", ALB),
        ("elasticloadbalancing:SetSecurityGroups", ALB),
        ("ec2:DeleteSecurityGroup", SG),
    ],
)
def test_lb_controller_changes_only_its_own_clusters_resources(action, resource):
    assert allows(LB_POLICY, action, resource, OWNED)
    assert not allows(LB_POLICY, action, resource, OTHER_CLUSTER)  # upstream would allow this
    assert not allows(LB_POLICY, action, resource, {})  # untagged: not ours


@pytest.mark.parametrize(
    "action,resource",
    [
        ("elasticloadbalancing:CreateLoadBalancer", ALB),
        ("elasticloadbalancing:CreateTargetGroup", TG),
    ],
)
def test_lb_controller_creates_only_resources_tagged_for_this_cluster(action, resource):
    assert allows(LB_POLICY, action, resource, {f"aws:RequestTag/{LB_CLUSTER_TAG}": CLUSTER})
    assert not allows(LB_POLICY, action, resource, {f"aws:RequestTag/{LB_CLUSTER_TAG}": "other-cluster"})
    assert not allows(LB_POLICY, action, resource, {})


def test_lb_controller_cannot_take_over_or_drop_the_ownership_tag():
    retag_ours = {**OWNED}
    assert allows(LB_POLICY, "elasticloadbalancing:AddTags", ALB, retag_ours)
    assert allows(LB_POLICY, "ec2:CreateTags", SG, retag_ours)
    # Changing the ownership tag itself (it appears in the request) is refused...
    rewrite = {**OWNED, f"aws:RequestTag/{LB_CLUSTER_TAG}": "other-cluster"}
    assert not allows(LB_POLICY, "elasticloadbalancing:AddTags", ALB, rewrite)
    # ...and so is tagging another cluster's load balancer after the fact.
    assert not allows(LB_POLICY, "elasticloadbalancing:AddTags", ALB, {f"aws:RequestTag/{LB_CLUSTER_TAG}": CLUSTER})


def test_security_groups_tagged_on_create_only_for_this_cluster():
    on_create = {"ec2:CreateAction": "CreateSecurityGroup", f"aws:RequestTag/{LB_CLUSTER_TAG}": CLUSTER}
    assert allows(LB_POLICY, "ec2:CreateTags", SG, on_create)
    assert not allows(LB_POLICY, "ec2:CreateTags", SG, {**on_create, f"aws:RequestTag/{LB_CLUSTER_TAG}": "x"})


def test_security_group_rules_only_inside_the_cluster_vpc():
    assert allows(LB_POLICY, "ec2:AuthorizeSecurityGroupIngress", SG, {"ec2:Vpc": VPC_ARN})
    other_vpc = f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-other"
    assert not allows(LB_POLICY, "ec2:AuthorizeSecurityGroupIngress", SG, {"ec2:Vpc": other_vpc})
    assert allows(LB_POLICY, "ec2:CreateSecurityGroup", VPC_ARN)
    assert not allows(LB_POLICY, "ec2:CreateSecurityGroup", other_vpc)


def test_lb_policy_is_pinned_to_this_account_and_region():
    for stmt in LB_POLICY["Statement"]:
        resources = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
        for arn in resources:
            if arn == "*":
                continue
            assert f":{ACCOUNT}:" in arn, arn
            assert arn.startswith("arn:aws:iam::") or f":{REGION}:" in arn, arn
    other_account_alb = ALB.replace(ACCOUNT, "999999999999")
    assert not allows(LB_POLICY, "elasticloadbalancing:DeleteLoadBalancer", other_account_alb, OWNED)


@pytest.mark.parametrize("policy", [LB_POLICY, WAF_POLICY], ids=["default", "wafIntegration"])
def test_star_resources_only_for_reads(policy):
    mutating_on_star = set()
    for stmt in policy["Statement"]:
        if stmt["Resource"] == "*" and "Condition" not in stmt:
            for action in [stmt["Action"]] if isinstance(stmt["Action"], str) else stmt["Action"]:
                verb = action.split(":", 1)[1]
                if not verb.startswith(("Describe", "Get", "List")):
                    mutating_on_star.add(action)
    # Upstream grants WAF/Shield associations on "*"; here they are pinned to this account's ALBs.
    assert mutating_on_star == set()


def test_service_linked_role_only_for_elastic_load_balancing():
    slr = (
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/elasticloadbalancing.amazonaws.com/"
        "AWSServiceRoleForElasticLoadBalancing"
    )
    assert allows(
        LB_POLICY, "iam:CreateServiceLinkedRole", slr, {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}
    )
    assert not allows(LB_POLICY, "iam:CreateServiceLinkedRole", slr, {"iam:AWSServiceName": "ec2.amazonaws.com"})


def test_cloud_controller_with_lb_controller_only_reads_ec2():
    policy = cloud_controller_manager_policy(VPC, REGION, ACCOUNT, manages_load_balancers=False)
    actions = _actions(policy)
    assert "ec2:DescribeInstances" in actions and "ec2:DescribeAvailabilityZones" in actions
    assert all(a.split(":", 1)[1].startswith("Describe") for a in actions), actions


def test_cloud_controller_without_lb_controller_manages_service_load_balancers_in_its_vpc():
    policy = cloud_controller_manager_policy(VPC, REGION, ACCOUNT, manages_load_balancers=True)
    clb = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/a0123"
    assert allows(policy, "elasticloadbalancing:CreateLoadBalancer", clb)
    assert not allows(policy, "elasticloadbalancing:CreateLoadBalancer", clb.replace(ACCOUNT, "999999999999"))
    assert allows(policy, "ec2:AuthorizeSecurityGroupIngress", SG, {"ec2:Vpc": VPC_ARN})
    assert not allows(policy, "ec2:AuthorizeSecurityGroupIngress", SG, {"ec2:Vpc": VPC_ARN.replace(VPC, "vpc-x")})


def test_ebs_kms_policy_limits_grants_to_aws_resources_on_one_key():
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b5c6a43-1e8f-4c9a-9d1e-0123456789ab"
    policy = ebs_csi_kms_policy(key)
    assert allows(policy, "kms:CreateGrant", key, {"kms:GrantIsForAWSResource": "true"})
    assert not allows(policy, "kms:CreateGrant", key, {"kms:GrantIsForAWSResource": "false"})
    assert not allows(policy, "kms:CreateGrant", key, {})
    assert allows(policy, "kms:GenerateDataKeyWithoutPlaintext", key)
    assert not allows(policy, "kms:Decrypt", key.replace("0b5c", "ffff"))


def test_ebs_csi_uses_the_aws_managed_policy():
    assert EBS_CSI_MANAGED_POLICY_ARN == "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
