"""Workload identity: how a pod (or a node, or a process outside AWS) gets AWS credentials.

Design notes:
- One controller-identity builder, `ServiceAccountIdentity`: a role bound to one (namespace,
  ServiceAccount) by EKS Pod Identity or by IRSA, with the trust policy rendered by the pure
  renderers in `components.core.trust_policies`; every platform controller and every workload uses it.
- `workloads.WorkloadIdentity` realises the `workloads` stack section: Pod Identity, IRSA (EKS's
  issuer or the self-hosted K3s issuer of `oidc_issuer`), IAM Roles Anywhere (`roles_anywhere`),
  the instance profile, and cross-account access; `caller_identity` renders the ARN each workload
  should see from `sts get-caller-identity`.
- Cross-account (`cross_account.CrossAccountTarget`, one per target role): `native` (the Pod
  Identity association's `targetRoleArn`: the pod gets the target role's session) or `manual`
  (the pod gets the workload role and assumes the target itself). The target role lives in
  another account: its trust policy is exported, and registered as the component's inputs so
  the policy pack checks it in the same preview.
- `oidc_documents` renders discovery and JWKS documents purely; `oidc_issuer` hosts them.
- Public surface: the components above, `NamedIssuer` and `default_method`.
"""

from components.identity.oidc_issuer import OidcIssuer, OidcIssuerArgs
from components.identity.service_account import (
    ServiceAccountIdentity,
    ServiceAccountIdentityArgs,
    default_method,
)
from components.identity.workloads import NamedIssuer, WorkloadIdentity, WorkloadIdentityArgs

__all__ = [
    "NamedIssuer",
    "OidcIssuer",
    "OidcIssuerArgs",
    "ServiceAccountIdentity",
    "ServiceAccountIdentityArgs",
    "WorkloadIdentity",
    "WorkloadIdentityArgs",
    "default_method",
]
