"""Cross-account workload identity: the trust policy a target account's role must hold, and the
Pod Identity associations that chain to such a role.

The program exports each target role's trust policy as the inputs of a
`k8s-platform:identity:CrossAccountTarget` (the role itself lives in another account): the
document, the source role it must admit, whether session tags arrive, and for a `native` target
(the association's `targetRoleArn`) the association's external id. A trust that admits more than
that one source role (an account root, `*`, another principal), allows more than AssumeRole and
TagSession, or lets a native target be assumed without the association's `sts:ExternalId` opens
the target account to a confused deputy; one that lacks TagSession where session tags arrive
fails every hop.
"""

from __future__ import annotations

import re

from pulumi_policy import Severity

from .common import (
    checkov,
    conditions,
    eks_best_practices,
    get,
    peek,
    policy_document,
    principals,
    resource_rule,
    statements,
    str_list,
    truthy,
)

CROSS_ACCOUNT_TARGET = "k8s-platform:identity:CrossAccountTarget"
POD_IDENTITY_ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ASSUME = "sts:AssumeRole"
TAG = "sts:TagSession"
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")


def _target_trust(props, cfg, report, args) -> None:
    doc = policy_document(get(props, "targetTrustPolicy"))
    if doc is None:
        report("targetTrustPolicy is not a JSON policy document: the target account has nothing to apply")
        return
    source = str(get(props, "sourceRoleArn", default=""))
    native = get(props, "mode") == "native"
    session_tags = truthy(get(props, "sessionTags", default=False))
    external_id = get(props, "externalId") if native else None
    allowed: set[str] = set()
    for stmt in statements(doc):
        if stmt.get("Effect") != "Allow":
            continue
        if "NotPrincipal" in stmt or "NotAction" in stmt:
            report("the target trust uses NotPrincipal/NotAction: it admits everything it does not name")
            continue
        ps = principals(stmt)
        if ps != {"AWS": [source]}:
            report(
                f"the target trust admits {ps}; it must admit exactly the workload role {source} (an account "
                "root, '*' or another principal lets others in the source account assume the target role)"
            )
        actions = set(str_list(stmt.get("Action")))
        allowed |= actions
        if native and ASSUME in actions:
            pinned = conditions(stmt).get("StringEquals", {}).get("sts:ExternalId", [])
            if pinned != [external_id]:
                report(
                    f"the AssumeRole statement pins sts:ExternalId to {pinned}; a native target must require "
                    f"exactly the association's externalId '{external_id}' with StringEquals (no confused deputy)"
                )
    if ASSUME not in allowed:
        report(f"the target trust does not allow {ASSUME} for the workload role: the hop would be refused")
    extra = sorted(allowed - {ASSUME, TAG})
    if extra:
        report(f"the target trust allows {extra}; a cross-account hop needs only {ASSUME} and {TAG}")
    if session_tags and TAG not in allowed:
        report(
            f"session tags arrive with the hop (Pod Identity's are transitive) but the trust lacks {TAG}: "
            "STS refuses every AssumeRole"
        )
    if not session_tags and TAG in allowed:
        report(f"the trust allows {TAG} although no session tags arrive: drop it (least privilege)")


def _association(props, cfg, report, args) -> None:
    if get(props, "policy") and not truthy(get(props, "disableSessionTags", default=False)):
        report("a session policy needs disableSessionTags: true (EKS refuses the association otherwise)")
    target = get(props, "targetRoleArn")
    if target is None:
        return
    if not ROLE_ARN.match(str(target)):
        report(f"targetRoleArn '{target}' is not an IAM role ARN")
    elif str(target) == str(peek(props, "roleArn", default="")):  # the role's ARN is unknown at a first preview
        report("targetRoleArn is the association's own roleArn: EKS would chain the role to itself")


RULES = [
    resource_rule(
        "cross-account-target-trust-shape",
        "A cross-account target role's exported trust admits exactly the workload role, for AssumeRole (and "
        "TagSession when tags arrive), with the association's sts:ExternalId for Pod Identity targets.",
        Severity.HIGH,
        [checkov("CKV_AWS_60"), eks_best_practices("security/iam#pod-identity-cross-account")],
        [CROSS_ACCOUNT_TARGET],
        _target_trust,
        remediation="Apply the exported targetTrustPolicy unchanged in the target account.",
    ),
    resource_rule(
        "pod-identity-target-association",
        "Pod Identity associations chain to a real target role, and carry a session policy only with session "
        "tags disabled.",
        Severity.HIGH,
        [eks_best_practices("security/iam#pod-identity-cross-account")],
        [POD_IDENTITY_ASSOCIATION],
        _association,
    ),
]
