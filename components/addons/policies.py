"""Pure renderers for the IAM permission policies of the cluster add-ons.

Each function returns a policy document dict (`iam_documents.to_json` serialises it). The role that
carries a policy and its trust are made by `ServiceAccountIdentity`; nothing here knows how a pod
gets credentials.

- AWS Load Balancer Controller: written here after the structure of the controller's published
  `docs/install/iam_policy.json` (v3.x), but narrower: every ARN is pinned to this account and
  region, tag conditions require `elbv2.k8s.aws/cluster` to equal *this* cluster's name (upstream
  only requires the tag to exist, so one cluster's controller may delete another cluster's load
  balancers), and security-group rule changes are limited to this VPC.
- AWS cloud controller manager (K3s): only what the node controllers need; the service
  controller's ELB permissions are added only when it runs (no AWS Load Balancer Controller).
- EBS CSI on K3s: the AWS managed `AmazonEBSCSIDriverPolicy` (see `EBS_CSI_MANAGED_POLICY_ARN`)
  plus, when a customer-managed key encrypts volumes, a grant policy limited to that key.
"""

from __future__ import annotations

from typing import Any

from components.core.iam_documents import EBS_CSI_DRIVER_POLICY_ARN, Statement, document, statement

LB_CLUSTER_TAG = "elbv2.k8s.aws/cluster"

# AWS maintains it as the driver gains API calls, and it already scopes every mutation to volumes
# and snapshots tagged by the driver (ebs.csi.aws.com/cluster, CSIVolumeName...). The managed EKS
# add-on uses the same policy, so both control planes grant the driver identical permissions.
EBS_CSI_MANAGED_POLICY_ARN = EBS_CSI_DRIVER_POLICY_ARN


def _arns(partition: str, service: str, region: str, account_id: str, *paths: str) -> list[str]:
    return [f"arn:{partition}:{service}:{region}:{account_id}:{p}" for p in paths]


# ---------------------------------------------------------------------- AWS Load Balancer Controller
LB_DESCRIBE_ACTIONS = (
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAddresses",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeVpcs",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeTags",
    "ec2:DescribeRouteTables",
    "ec2:DescribeIpamPools",
    "ec2:DescribeCoipPools",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeSSLPolicies",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTrustStores",
    "elasticloadbalancing:DescribeCapacityReservation",
)

# Certificates and Cognito user pools are named by the user in Ingress annotations; they offer no
# tag the controller could be conditioned on. Listing has no resource-level permission ("*"); the
# reads take the ARN of the object read, so they are pinned to this account (and region).
LB_LIST_CERTIFICATE_ACTIONS = ("acm:ListCertificates", "iam:ListServerCertificates")

# WAF (Classic regional and v2) and Shield Advanced on the ALBs, granted only with
# `addons.awsLoadBalancerController.wafIntegration` (the chart's enableWaf/enableWafv2/enableShield
# follow it, so the controller makes none of these calls otherwise). Upstream grants them on "*".
LB_WAF_ACTIONS = (
    "waf-regional:GetWebACL",
    "waf-regional:GetWebACLForResource",
    "waf-regional:AssociateWebACL",
    "waf-regional:DisassociateWebACL",
    "wafv2:GetWebACL",
    "wafv2:GetWebACLForResource",
    "wafv2:AssociateWebACL",
    "wafv2:DisassociateWebACL",
)
LB_SHIELD_ACTIONS = (
    "shield:GetSubscriptionState",
    "shield:DescribeProtection",
    "shield:CreateProtection",
    "shield:DeleteProtection",
)
# What a policy without WAF integration leaves out of upstream's iam_policy.json, on purpose.
LB_WAF_SHIELD_ACTIONS_REMOVED_BY_DEFAULT = LB_WAF_ACTIONS + LB_SHIELD_ACTIONS


def load_balancer_waf_shield_statements(region: str, account_id: str, partition: str = "aws") -> list[Statement]:
    """WAF and Shield on this account's ALBs in this region (wafIntegration on).

    Association calls name both the web ACL and the ALB; neither carries a tag IAM could compare
    to this cluster for both at once, so the scope is this account and region's web ACLs and
    application load balancers. Shield protections are global (no region in their ARN)."""
    albs = _arns(partition, "elasticloadbalancing", region, account_id, "loadbalancer/app/*/*")
    web_acls = _arns(partition, "wafv2", region, account_id, "regional/webacl/*/*")
    classic_acls = _arns(partition, "waf-regional", region, account_id, "webacl/*")
    protections = [f"arn:{partition}:shield::{account_id}:protection/*"]
    return [
        statement([a for a in LB_WAF_ACTIONS if a.startswith("wafv2:")], [*web_acls, *albs], sid="WafV2OnAlbs"),
        statement(
            [a for a in LB_WAF_ACTIONS if a.startswith("waf-regional:")],
            [*classic_acls, *albs],
            sid="WafRegionalOnAlbs",
        ),
        # GetSubscriptionState is account-level: no resource-level permission.
        statement("shield:GetSubscriptionState", "*", sid="ShieldSubscription"),
        statement(
            ["shield:DescribeProtection", "shield:CreateProtection", "shield:DeleteProtection"],
            [*protections, *albs],
            sid="ShieldProtectionOfAlbs",
        ),
    ]


LB_MODIFY_OWNED_ACTIONS = (
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:SetIpAddressType",
    "elasticloadbalancing:SetSecurityGroups",
    "elasticloadbalancing:SetSubnets",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:ModifyCapacityReservation",
    "elasticloadbalancing:ModifyIpPools",
)


def load_balancer_controller_policy(
    cluster_name: str, vpc_id: str, region: str, account_id: str, partition: str = "aws", waf_integration: bool = False
) -> dict[str, Any]:
    """Least-privilege permissions of the AWS Load Balancer Controller of one cluster; WAF and
    Shield only with `waf_integration`."""
    elb = lambda *paths: _arns(partition, "elasticloadbalancing", region, account_id, *paths)  # noqa: E731
    security_groups = _arns(partition, "ec2", region, account_id, "security-group/*")
    vpc_arn = _arns(partition, "ec2", region, account_id, f"vpc/{vpc_id}")[0]
    owned_lbs = elb("targetgroup/*/*", "loadbalancer/net/*/*", "loadbalancer/app/*/*")
    owned = {"StringEquals": {f"aws:ResourceTag/{LB_CLUSTER_TAG}": cluster_name}}
    tagged_for_cluster = {f"aws:RequestTag/{LB_CLUSTER_TAG}": cluster_name}
    # Retagging may change other tags, never the ownership tag itself (absent from the request).
    keeps_owner_tag = {"Null": {f"aws:RequestTag/{LB_CLUSTER_TAG}": "true"}, **owned}
    return document(
        statement(
            "iam:CreateServiceLinkedRole",
            f"arn:{partition}:iam::{account_id}:role/aws-service-role/elasticloadbalancing.amazonaws.com/*",
            conditions={"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
            sid="ElbServiceLinkedRole",
        ),
        # Describe/Get calls support no resource-level permissions: "*" is the only valid resource.
        statement(list(LB_DESCRIBE_ACTIONS), "*", sid="Describe"),
        statement(list(LB_LIST_CERTIFICATE_ACTIONS), "*", sid="ListCertificates"),
        statement(
            ["acm:DescribeCertificate"],
            _arns(partition, "acm", region, account_id, "certificate/*"),
            sid="ReadCertificates",
        ),
        statement(
            ["iam:GetServerCertificate"],
            f"arn:{partition}:iam::{account_id}:server-certificate/*",
            sid="ReadServerCertificates",
        ),
        statement(
            ["cognito-idp:DescribeUserPoolClient"],
            _arns(partition, "cognito-idp", region, account_id, "userpool/*"),
            sid="ReadCognitoUserPools",
        ),
        statement(
            "ec2:GetCoipPoolUsage", _arns(partition, "ec2", region, account_id, "coip-pool/*"), sid="ReadCoipPools"
        ),
        statement("ec2:GetSecurityGroupsForVpc", [vpc_arn, *security_groups], sid="ReadClusterVpcSecurityGroups"),
        *(load_balancer_waf_shield_statements(region, account_id, partition) if waf_integration else []),
        statement(
            ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
            security_groups,
            conditions={"ArnEquals": {"ec2:Vpc": vpc_arn}},
            sid="SecurityGroupRulesInClusterVpc",
        ),
        statement("ec2:CreateSecurityGroup", [vpc_arn, *security_groups], sid="CreateSecurityGroupInClusterVpc"),
        statement(
            "ec2:CreateTags",
            security_groups,
            conditions={"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup", **tagged_for_cluster}},
            sid="TagSecurityGroupOnCreate",
        ),
        statement(
            ["ec2:CreateTags", "ec2:DeleteTags"],
            security_groups,
            conditions=keeps_owner_tag,
            sid="RetagOwnedSecurityGroups",
        ),
        statement("ec2:DeleteSecurityGroup", security_groups, conditions=owned, sid="DeleteOwnedSecurityGroups"),
        statement(
            ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
            elb("loadbalancer/*", "targetgroup/*/*"),
            conditions={"StringEquals": tagged_for_cluster},
            sid="CreateTaggedLoadBalancers",
        ),
        statement(
            "elasticloadbalancing:AddTags",
            owned_lbs,
            conditions={
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"],
                    **tagged_for_cluster,
                }
            },
            sid="TagLoadBalancersOnCreate",
        ),
        statement(
            ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            owned_lbs,
            conditions=keeps_owner_tag,
            sid="RetagOwnedLoadBalancers",
        ),
        statement(
            list(LB_MODIFY_OWNED_ACTIONS),
            elb("loadbalancer/*", "targetgroup/*/*"),
            conditions=owned,
            sid="ModifyOwnedLoadBalancers",
        ),
        # Listeners and rules carry no ownership tag of their own; they live under owned load
        # balancers and are pinned to this account and region.
        statement(
            [
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteRule",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:SetRulePriorities",
                "elasticloadbalancing:AddListenerCertificates",
                "elasticloadbalancing:RemoveListenerCertificates",
                "elasticloadbalancing:SetWebAcl",
            ],
            elb("loadbalancer/*", "listener/*", "listener-rule/*"),
            sid="ListenersAndRules",
        ),
        # ModifyListenerAttributes acts on listener ARNs only (upstream grants it on load balancers
        # and target groups, where it never matches): any listener attribute would be AccessDenied.
        statement(
            "elasticloadbalancing:ModifyListenerAttributes",
            elb("listener/app/*/*/*", "listener/net/*/*/*"),
            sid="ModifyListenerAttributes",
        ),
        statement(
            ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            elb("listener/net/*/*/*", "listener/app/*/*/*", "listener-rule/net/*/*/*", "listener-rule/app/*/*/*"),
            sid="TagListenersAndRules",
        ),
        # TargetGroupBinding may point at target groups created outside the cluster (upstream does
        # the same); registration stays inside this account and region.
        statement(
            ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
            elb("targetgroup/*/*"),
            sid="RegisterTargets",
        ),
    )


# ------------------------------------------------------------------ AWS cloud controller manager
CCM_NODE_ACTIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceTopology",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeRegions",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeRouteTables",
)

CCM_SERVICE_ACTIONS = (
    "elasticloadbalancing:AddTags",
    "elasticloadbalancing:ApplySecurityGroupsToLoadBalancer",
    "elasticloadbalancing:AttachLoadBalancerToSubnets",
    "elasticloadbalancing:ConfigureHealthCheck",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateLoadBalancerListeners",
    "elasticloadbalancing:CreateLoadBalancerPolicy",
    "elasticloadbalancing:CreateTargetGroup",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteLoadBalancerListeners",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
    "elasticloadbalancing:DeregisterTargets",
    "elasticloadbalancing:DetachLoadBalancerFromSubnets",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer",
    "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
)


def cloud_controller_manager_policy(
    vpc_id: str, region: str, account_id: str, manages_load_balancers: bool, partition: str = "aws"
) -> dict[str, Any]:
    """The AWS cloud controller manager of a K3s cluster.

    Node initialisation and lifecycle (provider ID, zone labels, deleting nodes whose instance is
    gone) only read EC2. With `manages_load_balancers` (no AWS Load Balancer Controller), its service
    controller also manages the Classic/Network load balancers of `type: LoadBalancer` Services.
    """
    statements: list[Statement] = [statement(list(CCM_NODE_ACTIONS), "*", sid="DescribeNodesAndNetwork")]
    if manages_load_balancers:
        security_groups = _arns(partition, "ec2", region, account_id, "security-group/*")
        vpc_arn = _arns(partition, "ec2", region, account_id, f"vpc/{vpc_id}")[0]
        statements += [
            statement(
                ["elasticloadbalancing:Describe*", "ec2:DescribeNetworkInterfaces"], "*", sid="DescribeLoadBalancers"
            ),
            statement(
                list(CCM_SERVICE_ACTIONS),
                _arns(
                    partition,
                    "elasticloadbalancing",
                    region,
                    account_id,
                    "loadbalancer/*",
                    "targetgroup/*/*",
                    "listener/*",
                ),
                sid="ServiceLoadBalancers",
            ),
            statement("ec2:CreateSecurityGroup", [vpc_arn, *security_groups], sid="CreateSecurityGroupInClusterVpc"),
            statement(
                [
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:CreateTags",
                    "ec2:DeleteSecurityGroup",
                ],
                security_groups,
                conditions={"ArnEquals": {"ec2:Vpc": vpc_arn}},
                sid="SecurityGroupsInClusterVpc",
            ),
            statement(
                "iam:CreateServiceLinkedRole",
                f"arn:{partition}:iam::{account_id}:role/aws-service-role/elasticloadbalancing.amazonaws.com/*",
                conditions={"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
                sid="ElbServiceLinkedRole",
            ),
        ]
    return document(*statements)


# ------------------------------------------------------------------------------------- EBS CSI
def ebs_csi_kms_policy(kms_key_arn: str) -> dict[str, Any]:
    """Lets the EBS CSI controller create and use volumes encrypted with one customer-managed key.

    EBS uses the key through grants it creates on the caller's behalf; the grant actions are
    limited to grants for AWS resources (EBS), never to arbitrary principals.
    """
    return document(
        statement(
            ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
            kms_key_arn,
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            sid="GrantsForEbs",
        ),
        statement(
            ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            kms_key_arn,
            sid="UseVolumeKey",
        ),
    )
