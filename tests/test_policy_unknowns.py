"""Unknown values, as a real `pulumi preview` hands them to the pack.

A policy that reads a value the engine does not know yet is reported as an ADVISORY "can't run
policy during preview", even when mandatory: it then guards nothing at preview. The rules that
only need to know a value is *set* (a KMS key ARN, subnet ids) or can decide without it (an
attachment's unknown ARN is a policy of this stack, never AWS-managed) must still run, and still
fail on the real defect. Unknowns are injected as the engine's sentinels, read through
pulumi_policy's unknown-checking proxy by the offline runner.
"""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import (
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
)

from policy.offline_runner import CONFIG_DIR, evaluate, load_pack_config, reconcile
from tests.policy_fixtures import compliant_resources, first_preview_resources, named
from tests.test_policy_rules import DELETE, set_input

PROD = reconcile(load_pack_config(CONFIG_DIR / "prod.json"))
UNKNOWN = UNKNOWN_STRING_VALUE

# (policy, mutation making the checked value unknown the way a first preview does, case id)
STILL_RUNS = [
    ("eks-secrets-encryption-kms", set_input("cluster", "encryptionConfig.provider.keyArn", UNKNOWN), "key-arn"),
    ("log-group-kms", set_input("cluster-logs", "kmsKeyId", UNKNOWN), "log-key"),
    ("secretsmanager-secret-kms", set_input("drain-credentials", "kmsKeyId", UNKNOWN), "secret-key"),
    (
        "sqs-queue-encrypted",
        lambda rs: (
            set_input("interruptions", "sqsManagedSseEnabled", DELETE)(rs),
            set_input("interruptions", "kmsMasterKeyId", UNKNOWN)(rs),
        ),
        "queue-key",
    ),
    ("lambda-in-vpc", set_input("drainer", "vpcConfig.subnetIds", [UNKNOWN, UNKNOWN]), "subnet-ids"),
    ("lambda-in-vpc", set_input("drainer", "vpcConfig.subnetIds", UNKNOWN_ARRAY_VALUE), "subnet-list"),
    ("iam-no-admin-policy-attachment", set_input("node-worker", "policyArn", UNKNOWN), "stack-policy-arn"),
    ("iam-no-admin-policy-attachment", set_input("node-role", "managedPolicyArns", [UNKNOWN]), "managed-arns"),
    ("oidc-provider-sts-audience", set_input("oidc", "url", UNKNOWN), "eks-issuer-url"),
    ("required-tags", set_input("vpc", "tags.Name", UNKNOWN), "computed-tag-value"),
    # An IRSA ServiceAccount whose annotations are computed from its role's ARN: the Pod Identity
    # rule only reads the annotations of ServiceAccounts an association binds.
    ("pod-identity-no-irsa-annotation", set_input("irsa-sa", "metadata.annotations", UNKNOWN_OBJECT_VALUE), "irsa-sa"),
    (
        "irsa-subject-matches-service-account",
        set_input("irsa-sa", "metadata.annotations", {"eks.amazonaws.com/role-arn": UNKNOWN}),
        "role-arn",
    ),
    # EFS: the stack's key ARN and the nodes' group id are computed at first preview.
    ("efs-encrypted-kms", set_input("efs", "kmsKeyId", UNKNOWN), "efs-key"),
    ("efs-nfs-not-world-open", set_input("nfs-rule", "referencedSecurityGroupId", UNKNOWN), "node-group-id"),
    ("eks-fargate-private-subnets", set_input("fargate", "subnetIds", [UNKNOWN]), "subnet-ids"),
    ("eks-fargate-private-subnets", set_input("private", "mapPublicIpOnLaunch", UNKNOWN), "subnet-flag"),
]


def _of(violations, policy_id):
    return [v for v in violations if v.policy == policy_id]


@pytest.mark.parametrize("policy_id,mutation", [pytest.param(p, m, id=f"{p}:{c}") for p, m, c in STILL_RUNS])
def test_policy_runs_when_the_value_it_does_not_need_is_unknown(policy_id, mutation):
    resources = compliant_resources()
    mutation(resources)
    hits = _of(evaluate(resources, PROD), policy_id)
    assert hits == [], hits  # neither a violation nor a "can't run"


# The same rules still catch the defect while other values of the resource are unknown.
STILL_FAILS = [
    (
        "eks-secrets-encryption-kms",
        "cluster",
        lambda rs: (
            set_input("cluster", "encryptionConfig.provider.keyArn", UNKNOWN)(rs),
            set_input("cluster", "encryptionConfig.resources", ["configmaps"])(rs),
        ),
    ),
    (
        "log-group-kms",
        "cluster-logs",
        lambda rs: (set_input("cluster-logs", "kmsKeyId", DELETE)(rs), set_input("cluster-logs", "name", UNKNOWN)(rs)),
    ),
    (
        "lambda-in-vpc",
        "drainer",
        lambda rs: (set_input("drainer", "vpcConfig.subnetIds", [])(rs), set_input("drainer", "role", UNKNOWN)(rs)),
    ),
    (
        "iam-no-admin-policy-attachment",
        "node-role",
        set_input("node-role", "managedPolicyArns", [UNKNOWN, "arn:aws:iam::aws:policy/AdministratorAccess"]),
    ),
    (
        "oidc-provider-sts-audience",
        "oidc",
        lambda rs: (set_input("oidc", "url", UNKNOWN)(rs), set_input("oidc", "clientIdLists", ["kubernetes"])(rs)),
    ),
    (
        "pod-identity-no-irsa-annotation",
        "karpenter-sa",
        set_input("karpenter-sa", "metadata.annotations", {"eks.amazonaws.com/role-arn": UNKNOWN}),
    ),
    ("required-tags", "vpc", set_input("vpc", "tags", {"owner": UNKNOWN})),
    (
        "efs-encrypted-kms",
        "efs",
        lambda rs: (set_input("efs", "encrypted", False)(rs), set_input("efs", "kmsKeyId", UNKNOWN)(rs)),
    ),
    (
        "efs-nfs-not-world-open",
        "nfs-rule",
        lambda rs: (
            set_input("nfs-rule", "referencedSecurityGroupId", DELETE)(rs),
            set_input("nfs-rule", "cidrIpv4", "0.0.0.0/0")(rs),
            set_input("nfs-rule", "securityGroupId", UNKNOWN)(rs),
        ),
    ),
]


@pytest.mark.parametrize("policy_id,target,mutation", [pytest.param(p, t, m, id=p) for p, t, m in STILL_FAILS])
def test_policy_still_fails_on_the_defect_beside_unknown_values(policy_id, target, mutation):
    resources = compliant_resources()
    mutation(resources)
    hits = _of(evaluate(resources, PROD), policy_id)
    assert hits and all(v.level == "mandatory" and not v.message.startswith("can't run") for v in hits), hits
    assert named(resources, target).urn in {v.urn for v in hits}


def test_a_value_the_policy_needs_stays_a_cant_run_advisory():
    resources = compliant_resources()
    set_input("api-sg", "ingress.0.cidrBlocks", UNKNOWN_ARRAY_VALUE)(resources)
    hits = _of(evaluate(resources, PROD), "no-world-open-admin-ports")
    assert [v.level for v in hits] == ["advisory"]
    assert (
        "can't run policy 'no-world-open-admin-ports'" in hits[0].message and ".ingress.0.cidrBlocks" in hits[0].message
    )


# Mandatory guardrails that must decide during a first preview of the shipped prod stack: they read
# only values the program knows before anything exists (literals and config), not computed ARNs/ids.
MUST_RUN_AT_FIRST_PREVIEW = {
    "eks-endpoint-private",
    "eks-secrets-encryption-kms",
    "eks-control-plane-logging",
    "eks-version-allowed",
    "eks-authentication-mode-api",
    "eks-no-creator-admin-bootstrap",
    "eks-admin-access-entry-present",
    "eks-cluster-deletion-protection",
    "eks-nodegroup-auto-repair",
    "pod-identity-target-association",
    "cross-account-target-trust-shape",
    "imdsv2-required",
    "imds-hop-limit",
    "node-volumes-encrypted",
    "node-no-public-ip",
    "no-world-open-admin-ports",
    "no-world-open-all-traffic",
    "subnet-no-auto-public-ip",
    "vpc-flow-logs-enabled",
    "kms-key-rotation",
    "log-group-kms",
    "log-group-retention",
    "sqs-queue-encrypted",
    "s3-public-access-blocked",
    "s3-bucket-kms-encryption",
    "iam-no-admin-policy-attachment",
    "oidc-provider-sts-audience",
    "pod-identity-association-unique",
    "pod-identity-no-irsa-annotation",
    "karpenter-nodepool-limits",
    "karpenter-nodepool-disruption-budgets",
    "karpenter-ami-pinned",
    "helm-chart-version-pinned",
    "helm-chart-source-trusted",
    "required-tags",
    "stateful-resources-protected",
}


@pytest.fixture(scope="module")
def prod_first_preview():
    return first_preview_resources("prod")


def test_first_preview_of_prod_has_unknowns_and_no_mandatory_violation(prod_first_preview):
    assert any(UNKNOWN in str(r.inputs) for r in prod_first_preview), "the preview run produced no unknowns"
    violations = evaluate(prod_first_preview, PROD)
    assert [v for v in violations if v.level == "mandatory"] == []


def test_key_guardrails_run_during_a_first_preview_of_prod(prod_first_preview):
    cant_run = {v.policy for v in evaluate(prod_first_preview, PROD) if v.message.startswith("can't run")}
    assert not cant_run & MUST_RUN_AT_FIRST_PREVIEW, sorted(cant_run & MUST_RUN_AT_FIRST_PREVIEW)


def test_first_preview_still_blocks_a_world_open_api_port(prod_first_preview):
    resources = list(prod_first_preview)
    sg_rule = next(
        r
        for r in resources
        if r.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
        or r.type == "aws:ec2/securityGroupRule:SecurityGroupRule"
    )
    opened = type(sg_rule)(
        urn=sg_rule.urn + "-world",
        type="aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        name=sg_rule.name + "-world",
        inputs={
            "securityGroupId": UNKNOWN,
            "ipProtocol": "tcp",
            "fromPort": 6443,
            "toPort": 6443,
            "cidrIpv4": "0.0.0.0/0",
        },
    )
    resources.append(opened)
    hits = _of(evaluate(resources, PROD), "no-world-open-admin-ports")
    assert [(v.level, v.urn) for v in hits] == [("mandatory", opened.urn)]


def test_node_class_guardrails_run_during_a_first_preview_of_dev():
    """K3s node classes: only instanceProfile and userData depend on other resources, so the IMDS,
    volume, public-IP and AMI rules decide at the first preview instead of reporting "can't run"."""
    dev = first_preview_resources("dev")
    node_classes = {r.urn: r for r in dev if r.type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"}
    assert node_classes and all(UNKNOWN in str(r.inputs["spec"]["userData"]) for r in node_classes.values())
    violations = evaluate(dev, PROD)
    on_node_classes = [v for v in violations if v.urn in node_classes]
    decided_elsewhere = {
        v.policy for v in violations if v.urn in node_classes and not v.message.startswith("can't run")
    }
    cant_run = sorted(
        {v.policy for v in on_node_classes if v.message.startswith("can't run")}
        & {"imdsv2-required", "imds-hop-limit", "node-volumes-encrypted", "node-no-public-ip", "karpenter-ami-pinned"}
    )
    assert cant_run == [], (cant_run, decided_elsewhere)
