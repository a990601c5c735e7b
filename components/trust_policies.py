"""Pure renderers for the trust policies of workload identities.

Each returns a policy document dict; `iam_documents.to_json` serialises it. Conditions are
exact (`StringEquals`), never wildcards: a trust policy admits one ServiceAccount.
"""

from __future__ import annotations

from typing import Any

from components.iam_documents import document, statement

STS_AUDIENCE = "sts.amazonaws.com"
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def service_account_subject(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


def issuer_host(issuer_url: str) -> str:
    """`https://oidc.eks.../id/X` -> `oidc.eks.../id/X`: the prefix IAM uses for condition keys."""
    return issuer_url.removeprefix("https://").rstrip("/")


def irsa_trust(oidc_provider_arn: str, issuer_url: str, namespace: str, service_account: str) -> dict[str, Any]:
    """IRSA: only tokens of this ServiceAccount, minted for STS, from this issuer."""
    host = issuer_host(issuer_url)
    return document(statement(
        "sts:AssumeRoleWithWebIdentity",
        principal={"Federated": oidc_provider_arn},
        conditions={"StringEquals": {
            f"{host}:sub": service_account_subject(namespace, service_account),
            f"{host}:aud": STS_AUDIENCE,
        }},
    ))


def pod_identity_trust(account_id: str | None = None) -> dict[str, Any]:
    """EKS Pod Identity: the agent assumes the role and tags the session with the pod's identity.

    With an account id, only associations of clusters in that account may use the role.
    """
    conditions = {"StringEquals": {"aws:SourceAccount": account_id}} if account_id else None
    return document(statement(
        ["sts:AssumeRole", "sts:TagSession"],
        principal={"Service": POD_IDENTITY_PRINCIPAL},
        conditions=conditions,
    ))
