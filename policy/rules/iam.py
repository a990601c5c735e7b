"""IAM: no full-admin statements or attachments, no wildcard principals, and iam:PassRole scoped."""

from __future__ import annotations

from pulumi_policy import Severity

from .common import (
    as_list,
    checkov,
    get,
    is_wildcard_principal,
    known_items,
    peek,
    policy_document,
    resource_rule,
    statements,
    str_list,
)

ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
ROLE_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
USER_ATTACHMENT = "aws:iam/userPolicyAttachment:UserPolicyAttachment"
GROUP_ATTACHMENT = "aws:iam/groupPolicyAttachment:GroupPolicyAttachment"
POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"
KMS_KEY = "aws:kms/key:Key"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"

IDENTITY_POLICY_TYPES = [ROLE, POLICY, ROLE_POLICY, USER_POLICY, GROUP_POLICY]


def identity_documents(props, resource_type):
    """(label, document) of every identity (permissions) policy a resource carries."""
    if resource_type == ROLE:
        for i, inline in enumerate(as_list(get(props, "inlinePolicies"))):
            yield f"inlinePolicies[{i}]", policy_document(get(inline, "policy"))
    else:
        yield "policy", policy_document(get(props, "policy"))


def _allows(stmt) -> bool:
    return stmt.get("Effect") == "Allow"


def _no_full_admin(props, cfg, report, args) -> None:
    for label, doc in identity_documents(props, args.resource_type):
        for stmt in statements(doc):
            if not _allows(stmt):
                continue
            actions = str_list(stmt.get("Action"))
            if any(a in ("*", "*:*") for a in actions) and "*" in str_list(stmt.get("Resource")):
                report(f"{label} allows Action '*' on Resource '*' (full administrator access)")


def _no_admin_attachment(props, cfg, report, args) -> None:
    # An ARN unknown at preview belongs to a policy created in this stack, never to an AWS-managed
    # one (those are literal strings), so only the known ARNs can be forbidden.
    key = "managedPolicyArns" if args.resource_type == ROLE else "policyArn"
    for arn in known_items(peek(props, key)):
        if str(arn) in cfg["forbiddenPolicyArns"]:
            report(f"attaches {arn}: grant least-privilege policies instead")


def _resource_policy_docs(props, resource_type):
    if resource_type == ROLE:
        yield "assumeRolePolicy", policy_document(get(props, "assumeRolePolicy")), True
    else:
        yield "policy", policy_document(get(props, "policy")), False


def _no_wildcard_principal(props, cfg, report, args) -> None:
    for label, doc, is_trust in _resource_policy_docs(props, args.resource_type):
        for stmt in statements(doc):
            if not _allows(stmt) or not is_wildcard_principal(stmt):
                continue
            if is_trust:
                report(f"{label} lets any AWS principal ('*') assume the role")
            elif not stmt.get("Condition"):
                report(f"{label} allows {str_list(stmt.get('Action'))} to any principal ('*') with no condition")


def _passrole_scoped(props, cfg, report, args) -> None:
    for label, doc in identity_documents(props, args.resource_type):
        for stmt in statements(doc):
            if not _allows(stmt):
                continue
            actions = [a.lower() for a in str_list(stmt.get("Action"))]
            passes = any(a in ("iam:passrole", "iam:*", "iam:pass*") for a in actions)
            if passes and "*" in str_list(stmt.get("Resource")) and not stmt.get("Condition"):
                report(
                    f"{label} allows iam:PassRole on Resource '*': any role, including admin roles, could be "
                    "handed to a service (privilege escalation); name the roles"
                )


ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"

RULES = [
    resource_rule(
        "iam-no-full-admin-statement",
        "No IAM policy allows Action '*' on Resource '*'.",
        Severity.CRITICAL,
        [checkov("CKV_AWS_62"), checkov("CKV_AWS_1")],
        IDENTITY_POLICY_TYPES,
        _no_full_admin,
    ),
    resource_rule(
        "iam-no-admin-policy-attachment",
        "No role, user or group gets AdministratorAccess (or another forbidden managed policy).",
        Severity.CRITICAL,
        [checkov("CKV_AWS_274")],
        [ROLE, ROLE_ATTACHMENT, USER_ATTACHMENT, GROUP_ATTACHMENT, POLICY_ATTACHMENT],
        _no_admin_attachment,
        {
            "forbiddenPolicyArns": {
                "type": "array",
                "items": {"type": "string"},
                "default": [
                    ADMIN_ARN,
                    "arn:aws:iam::aws:policy/IAMFullAccess",
                    "arn:aws:iam::aws:policy/PowerUserAccess",
                ],
            }
        },
    ),
    resource_rule(
        "iam-no-wildcard-principal",
        "Trust and resource policies name their principals (no Principal '*').",
        Severity.CRITICAL,
        [checkov("CKV_AWS_60"), checkov("CKV_AWS_33")],
        [ROLE, KMS_KEY, QUEUE, QUEUE_POLICY, TOPIC_POLICY],
        _no_wildcard_principal,
    ),
    resource_rule(
        "iam-passrole-scoped",
        "iam:PassRole is granted on named roles only.",
        Severity.HIGH,
        [checkov("CKV_AWS_286")],
        IDENTITY_POLICY_TYPES,
        _passrole_scoped,
    ),
]
