"""Upstream contracts of the controller IAM policies (Karpenter, AWS Load Balancer Controller).

Oracles (../shared/reference/upstream): iam-policy-karpenter-controller-v1.14.json (the six
controller policies of Karpenter's v1.14 getting-started CloudFormation) and
iam-policy-aws-load-balancer-controller-v3.4.2.json (the controller's docs/install/iam_policy.json).

1. Every action upstream grants is granted, unless it is in the short list of deliberate removals
   below (each with its reason); no action outside upstream's list is granted (a controller needs
   nothing it does not call).
2. Every action is granted only on ARNs of a resource type that action acts on (AWS Service
   Authorization Reference), or on "*" only where the action has no resource-level permissions:
   a statement on the wrong ARN kind never matches, and the call is denied at run time.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from components.addons import policies as addon_policies
from components.karpenter import iam as karpenter_iam
from tests.upstream_reference import upstream_file

REGION, ACCOUNT, CLUSTER = "us-east-1", "111111111111", "dev-k3s"

# Deliberate removals from Karpenter's reference policy.
KARPENTER_REMOVALS = {
    # Our EC2NodeClasses name a pre-made instance profile (spec.instanceProfile): Karpenter then
    # never creates, tags, fills or deletes instance profiles, so it gets no IAM write at all.
    "iam:CreateInstanceProfile": "pre-made instance profile",
    "iam:TagInstanceProfile": "pre-made instance profile",
    "iam:AddRoleToInstanceProfile": "pre-made instance profile",
    "iam:RemoveRoleFromInstanceProfile": "pre-made instance profile",
    "iam:DeleteInstanceProfile": "pre-made instance profile",
}
# On K3s there is no EKS control plane to discover or zonal-shift.
KARPENTER_K3S_REMOVALS = {
    "eks:DescribeCluster": "no EKS cluster",
    "arc-zonal-shift:GetManagedResource": "no EKS cluster",
}
# Without `addons.awsLoadBalancerController.wafIntegration` the chart's enableWaf/enableWafv2/
# enableShield are off, so the controller makes none of these calls (components/addons/policies.py).
LBC_REMOVALS: dict[str, str] = {
    a: "WAF/Shield integration off by default" for a in addon_policies.LB_WAF_SHIELD_ACTIONS_REMOVED_BY_DEFAULT
}

# Action -> ARN resource types it acts on ("*": no resource-level permissions, only "*" matches).
# From the AWS Service Authorization Reference (actions, resources and condition keys per service).
ELB_LB, ELB_TG = {"loadbalancer/app", "loadbalancer/net"}, {"targetgroup"}
ELB_LISTENER, ELB_RULE = {"listener/app", "listener/net"}, {"listener-rule/app", "listener-rule/net"}
EC2_LAUNCH = {
    "image",
    "snapshot",
    "security-group",
    "subnet",
    "capacity-reservation",
    "placement-group",
    "launch-template",
    "instance",
    "volume",
    "network-interface",
    "fleet",
    "spot-instances-request",
}
RESOURCE_KINDS: dict[str, set[str]] = {
    "elasticloadbalancing:CreateLoadBalancer": ELB_LB,
    "elasticloadbalancing:CreateTargetGroup": ELB_TG,
    "elasticloadbalancing:AddTags": ELB_LB | ELB_TG | ELB_LISTENER | ELB_RULE,
    "elasticloadbalancing:RemoveTags": ELB_LB | ELB_TG | ELB_LISTENER | ELB_RULE,
    "elasticloadbalancing:CreateListener": ELB_LB | ELB_LISTENER,
    "elasticloadbalancing:DeleteListener": ELB_LISTENER,
    "elasticloadbalancing:ModifyListener": ELB_LISTENER,
    "elasticloadbalancing:ModifyListenerAttributes": ELB_LISTENER,
    "elasticloadbalancing:AddListenerCertificates": ELB_LISTENER,
    "elasticloadbalancing:RemoveListenerCertificates": ELB_LISTENER,
    "elasticloadbalancing:CreateRule": ELB_LISTENER | ELB_RULE,
    "elasticloadbalancing:DeleteRule": ELB_RULE,
    "elasticloadbalancing:ModifyRule": ELB_RULE,
    "elasticloadbalancing:SetRulePriorities": ELB_RULE,
    "elasticloadbalancing:SetWebAcl": ELB_LB,
    **{
        f"elasticloadbalancing:{a}": ELB_LB
        for a in (
            "ModifyLoadBalancerAttributes",
            "SetIpAddressType",
            "SetSecurityGroups",
            "SetSubnets",
            "DeleteLoadBalancer",
            "ModifyCapacityReservation",
            "ModifyIpPools",
        )
    },
    **{
        f"elasticloadbalancing:{a}": ELB_TG
        for a in (
            "ModifyTargetGroup",
            "ModifyTargetGroupAttributes",
            "DeleteTargetGroup",
            "RegisterTargets",
            "DeregisterTargets",
        )
    },
    "ec2:AuthorizeSecurityGroupIngress": {"security-group"},
    "ec2:RevokeSecurityGroupIngress": {"security-group"},
    "ec2:DeleteSecurityGroup": {"security-group"},
    "ec2:CreateSecurityGroup": {"security-group", "vpc"},
    "ec2:CreateTags": EC2_LAUNCH - {"image", "snapshot", "subnet", "capacity-reservation", "placement-group"},
    "ec2:DeleteTags": {"security-group"},
    "ec2:RunInstances": EC2_LAUNCH,
    "ec2:CreateFleet": EC2_LAUNCH,
    "ec2:CreateLaunchTemplate": {"launch-template"},
    "ec2:TerminateInstances": {"instance"},
    "ec2:DeleteLaunchTemplate": {"launch-template"},
    "iam:CreateServiceLinkedRole": {"role"},
    "iam:PassRole": {"role"},
    "iam:GetInstanceProfile": {"instance-profile"},
    "sqs:DeleteMessage": {"queue"},
    "sqs:GetQueueUrl": {"queue"},
    "sqs:ReceiveMessage": {"queue"},
    "ssm:GetParameter": {"parameter"},
    "eks:DescribeCluster": {"cluster"},
    # Reads of what the user names in Ingress annotations, scoped to this account's ARNs.
    "acm:DescribeCertificate": {"certificate"},
    "iam:GetServerCertificate": {"server-certificate"},
    "cognito-idp:DescribeUserPoolClient": {"userpool"},
    "ec2:GetCoipPoolUsage": {"coip-pool"},
    "ec2:GetSecurityGroupsForVpc": {"vpc", "security-group"},
    # WAF and Shield (only with wafIntegration): the web ACL and the ALB it is associated with.
    **{
        f"wafv2:{a}": {"regional", "loadbalancer/app"}
        for a in ("GetWebACL", "GetWebACLForResource", "AssociateWebACL", "DisassociateWebACL")
    },
    **{
        f"waf-regional:{a}": {"webacl", "loadbalancer/app"}
        for a in ("GetWebACL", "GetWebACLForResource", "AssociateWebACL", "DisassociateWebACL")
    },
    **{
        f"shield:{a}": {"protection", "loadbalancer/app"}
        for a in ("DescribeProtection", "CreateProtection", "DeleteProtection")
    },
}
# Actions allowed on "*" although they take a resource ARN: none (every read the controller makes on
# a resource the user names is scoped to this account's ARNs of that kind).
USER_NAMED: set[str] = set()


def actions_of(policy: dict[str, Any]) -> set[str]:
    return {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def grants(policy: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for s in policy["Statement"]:
        assert s["Effect"] == "Allow"
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        out += [(a, r) for a in actions for r in resources]
    return out


def resource_kinds(arn: str) -> set[str]:
    """The resource types an ARN pattern can match (`loadbalancer/*` matches app and net ones)."""
    if arn == "*":
        return {"*"}
    service, resource = arn.split(":")[2], arn.split(":", 5)[5]
    if service == "sqs":
        return {"queue"}
    head = resource.split("/")
    if service == "elasticloadbalancing" and head[0] in ("loadbalancer", "listener", "listener-rule"):
        variants = ("app", "net") if len(head) < 2 or head[1] == "*" else (head[1],)
        return {f"{head[0]}/{v}" for v in variants}
    return {head[0]}


def wrong_kind_grants(policy: dict[str, Any]) -> list[str]:
    """Per statement: each action has a resource of a kind it acts on; "*" only for actions that take
    no resource ARN; no resource of a kind none of the statement's actions acts on."""
    problems = []
    for s in policy["Statement"]:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        used: set[str] = set()
        for action in actions:
            kinds = RESOURCE_KINDS.get(action)
            if kinds is None:  # no resource-level permissions: "*" is the only resource that matches
                if resources != ["*"] and action not in USER_NAMED:
                    problems.append(f"{s.get('Sid')}: {action} takes no resource ARN, got {resources}")
                used |= set(resources)
                continue
            matching = [r for r in resources if r != "*" and resource_kinds(r) & kinds]
            if "*" in resources:
                problems.append(f"{s.get('Sid')}: {action} on '*' (it acts on {', '.join(sorted(kinds))})")
            if not matching:
                problems.append(f"{s.get('Sid')}: {action} on {resources}: none of kind {', '.join(sorted(kinds))}")
            used |= set(matching)
        problems += [f"{s.get('Sid')}: {r} is of no kind its actions act on" for r in resources if r not in used]
    return problems


def karpenter_reference() -> set[str]:
    doc = json.loads(upstream_file("iam-policy-karpenter-controller-v1.14.json").read_text())
    return set().union(*(actions_of(p) for p in doc["policies"].values()))


def lbc_reference() -> dict[str, Any]:
    return json.loads(upstream_file("iam-policy-aws-load-balancer-controller-v3.4.2.json").read_text())


def karpenter_policy(kind: str) -> dict[str, Any]:
    return karpenter_iam.controller_policy(
        cluster_name=CLUSTER,
        kind=kind,
        region=REGION,
        account_id=ACCOUNT,
        node_role_arn=f"arn:aws:iam::{ACCOUNT}:role/{CLUSTER}-karpenter-node",
        instance_profile_arn=f"arn:aws:iam::{ACCOUNT}:instance-profile/{CLUSTER}-karpenter-node",
        queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{CLUSTER}-karpenter-interruption",
        ami_parameter_arns=karpenter_iam.ami_parameter_arns(kind, ["/golden/k3s-amd64"], REGION, ACCOUNT),
    )


LBC_POLICY = addon_policies.load_balancer_controller_policy(CLUSTER, "vpc-0123456789abcdef0", REGION, ACCOUNT)
LBC_WAF_POLICY = addon_policies.load_balancer_controller_policy(
    CLUSTER, "vpc-0123456789abcdef0", REGION, ACCOUNT, waf_integration=True
)


# ------------------------------------------------------------------------------------ Karpenter
@pytest.mark.parametrize("kind", ["eks", "k3s"])
def test_karpenter_grants_every_upstream_action_except_documented_removals(kind):
    removals = {**KARPENTER_REMOVALS, **(KARPENTER_K3S_REMOVALS if kind == "k3s" else {})}
    ours, upstream = actions_of(karpenter_policy(kind)), karpenter_reference()
    assert set(removals) <= upstream, "a documented removal upstream does not grant: drop it from the list"
    assert sorted(upstream - set(removals) - ours) == []
    assert sorted(ours - upstream) == []
    assert not ours & set(removals)


@pytest.mark.parametrize("kind", ["eks", "k3s"])
def test_karpenter_actions_are_granted_on_resources_of_their_kind(kind):
    assert wrong_kind_grants(karpenter_policy(kind)) == []


# ---------------------------------------------------------------------- Load Balancer Controller
def test_lbc_grants_exactly_the_upstream_actions():
    upstream = actions_of(lbc_reference())
    ours = actions_of(LBC_POLICY)
    assert set(LBC_REMOVALS) <= upstream, "a documented removal upstream does not grant: drop it from the list"
    assert sorted(upstream - set(LBC_REMOVALS) - ours) == []
    assert sorted(ours - upstream) == []
    assert not ours & set(LBC_REMOVALS)


def test_lbc_with_waf_integration_grants_every_upstream_action():
    upstream = actions_of(lbc_reference())
    ours = actions_of(LBC_WAF_POLICY)
    assert sorted(upstream - ours) == [] and sorted(ours - upstream) == []


@pytest.mark.parametrize("policy", [LBC_POLICY, LBC_WAF_POLICY], ids=["default", "waf-integration"])
def test_lbc_actions_are_granted_on_resources_of_their_kind(policy):
    assert wrong_kind_grants(policy) == []


def test_lbc_listener_attributes_are_granted_on_listener_arns():
    resources = [r for a, r in grants(LBC_POLICY) if a == "elasticloadbalancing:ModifyListenerAttributes"]
    elb = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}"
    assert sorted(resources) == [f"{elb}:listener/app/*/*/*", f"{elb}:listener/net/*/*/*"]


def test_dev_plan_lbc_policy_covers_listener_arns(dev_run):
    from programs.offline import reveal

    (policy,) = [
        json.loads(reveal(r.inputs)["policy"])
        for r in dev_run.of_type("aws:iam/rolePolicy:RolePolicy")
        if "ModifyListenerAttributes" in str(reveal(r.inputs).get("policy"))
    ]
    resources = [r for a, r in grants(policy) if a == "elasticloadbalancing:ModifyListenerAttributes"]
    assert resources and all(re.search(r":listener/(app|net)/\*/\*/\*$", r) for r in resources)


# ------------------------------------------------------------------------- the checks can fail
def test_the_checks_catch_an_extra_action_and_a_wrong_arn_kind():
    elb = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}"
    wrong = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "elasticloadbalancing:ModifyListenerAttributes",
                "Resource": [f"{elb}:loadbalancer/app/*/*", f"{elb}:targetgroup/*/*"],
            }
        ]
    }
    assert len(wrong_kind_grants(wrong)) == 3  # no listener ARN, and two ARNs of no matching kind
    extra = {
        "Statement": [
            *LBC_POLICY["Statement"],
            {"Effect": "Allow", "Action": "elasticloadbalancing:SetSubnetz", "Resource": "*"},
        ]
    }
    assert actions_of(extra) - actions_of(lbc_reference()) == {"elasticloadbalancing:SetSubnetz"}
    unscoped = {"Statement": [{"Effect": "Allow", "Action": "ec2:TerminateInstances", "Resource": "*"}]}
    assert wrong_kind_grants(unscoped)
