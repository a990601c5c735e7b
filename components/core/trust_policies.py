"""Pure renderers for the trust policies of workload identities.

Each returns a policy document dict; `iam_documents.to_json` serialises it. Conditions are
exact (`StringEquals`), never wildcards: a trust policy admits one ServiceAccount (IRSA, Pod
Identity), one certificate subject (Roles Anywhere) or one source role (cross-account).
"""

from __future__ import annotations

from typing import Any

from components.core.iam_documents import document, statement

STS_AUDIENCE = "sts.amazonaws.com"
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
ROLES_ANYWHERE_PRINCIPAL = "rolesanywhere.amazonaws.com"


def service_account_subject(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


def issuer_host(issuer_url: str) -> str:
    """`https://oidc.eks.../id/X` -> `oidc.eks.../id/X`: the prefix IAM uses for condition keys."""
    return issuer_url.removeprefix("https://").rstrip("/")


def irsa_statement(oidc_provider_arn: str, issuer_url: str, namespace: str, service_account: str) -> dict[str, Any]:
    """One issuer's grant: only tokens of this ServiceAccount, minted for STS, from this issuer."""
    host = issuer_host(issuer_url)
    return statement(
        "sts:AssumeRoleWithWebIdentity",
        principal={"Federated": oidc_provider_arn},
        conditions={
            "StringEquals": {
                f"{host}:sub": service_account_subject(namespace, service_account),
                f"{host}:aud": STS_AUDIENCE,
            }
        },
    )


def irsa_trust(
    oidc_provider_arn: str, issuer_url: str, namespace: str, service_account: str, *extra_issuers: tuple[str, str]
) -> dict[str, Any]:
    """IRSA: only tokens of this ServiceAccount, minted for STS, from this issuer.

    `extra_issuers` are `(provider_arn, issuer_url)` pairs of standby issuers (K3s): one statement
    each, so promoting a standby issuer to active breaks no role.
    """
    issuers = [(oidc_provider_arn, issuer_url), *extra_issuers]
    return document(*(irsa_statement(arn, url, namespace, service_account) for arn, url in issuers))


def pod_identity_trust(
    account_id: str | None = None,
    cluster_name: str | None = None,
    namespace: str | None = None,
    service_account: str | None = None,
) -> dict[str, Any]:
    """EKS Pod Identity: the agent assumes the role and tags the session with the pod's identity.

    With an account id, only associations of clusters in that account may use the role. With the
    cluster/namespace/ServiceAccount, the session tags EKS sets (`eks-cluster-name`,
    `kubernetes-namespace`, `kubernetes-service-account`) must match: an association of another
    ServiceAccount pointed at this role by mistake gets nothing.
    """
    equals: dict[str, str] = {}
    if account_id:
        equals["aws:SourceAccount"] = account_id
    if cluster_name:
        equals["aws:RequestTag/eks-cluster-name"] = cluster_name
    if namespace:
        equals["aws:RequestTag/kubernetes-namespace"] = namespace
    if service_account:
        equals["aws:RequestTag/kubernetes-service-account"] = service_account
    return document(
        statement(
            ["sts:AssumeRole", "sts:TagSession"],
            principal={"Service": POD_IDENTITY_PRINCIPAL},
            conditions={"StringEquals": equals} if equals else None,
        )
    )


def roles_anywhere_trust(trust_anchor_arn: str, certificate_cn: str, issuer_cn: str | None = None) -> dict[str, Any]:
    """IAM Roles Anywhere: only sessions from this trust anchor, for a certificate with this subject CN.

    Roles Anywhere maps the certificate's subject/issuer to principal tags (`x509Subject/CN`...);
    `aws:SourceArn` is the trust anchor the certificate chained to.
    """
    equals = {
        "aws:PrincipalTag/x509Subject/CN": certificate_cn,
        "aws:SourceArn": trust_anchor_arn,
    }
    if issuer_cn:
        equals["aws:PrincipalTag/x509Issuer/CN"] = issuer_cn
    return document(
        statement(
            ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
            principal={"Service": ROLES_ANYWHERE_PRINCIPAL},
            conditions={"StringEquals": equals},
        )
    )


def assume_target_roles_policy(target_role_arns: list[str]) -> dict[str, Any]:
    """Identity policy of a workload role: it may assume exactly these (cross-account) roles.

    `sts:TagSession` too, so the transitive session tags of a Pod Identity session survive the hop.
    """
    return document(statement(["sts:AssumeRole", "sts:TagSession"], sorted(target_role_arns), sid="AssumeTargetRoles"))


def cross_account_target_trust(source_role_arn: str, carries_session_tags: bool = False) -> dict[str, Any]:
    """The trust policy the *target* account's role must hold: only this workload role may assume it.

    Rendered for the target account's owners (exported, never applied here: it is their account).
    Pod Identity sessions carry transitive session tags, so the hop needs `sts:TagSession` as well.
    """
    actions = ["sts:AssumeRole", "sts:TagSession"] if carries_session_tags else ["sts:AssumeRole"]
    return document(statement(actions, principal={"AWS": source_role_arn}))


def pod_identity_target_trust(source_role_arn: str, external_id: str, session_tags: bool = True) -> dict[str, Any]:
    """The trust policy a Pod Identity *target* role must hold (the association's `targetRoleArn`).

    EKS assumes the target role with the workload role's session and sets `sts:ExternalId` to the
    association's `externalId` (`<region>/<account>/<cluster>/<namespace>/<service-account>`), so
    only that association, through exactly that source role, gets in (no confused deputy). The
    session tags EKS adds are passed on the hop: `sts:TagSession`, unless the association disables them.
    """
    statements = [
        statement(
            "sts:AssumeRole",
            principal={"AWS": source_role_arn},
            conditions={"StringEquals": {"sts:ExternalId": external_id}},
            sid="PodIdentityAssociation",
        )
    ]
    if session_tags:
        statements.append(statement("sts:TagSession", principal={"AWS": source_role_arn}, sid="PodIdentitySessionTags"))
    return document(*statements)
