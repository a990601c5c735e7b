"""Pure rendering of EKS access entries and their access-policy associations from config.

The cluster is created with `bootstrapClusterCreatorAdminPermissions: false`: nobody, not even the
identity that ran `pulumi up`, has access unless listed here. Each principal gets exactly one
access entry; its access level is one or more AWS-managed access policies with a scope:

| config key                  | entry type | policy                       | scope     |
| --------------------------- | ---------- | ---------------------------- | --------- |
| `access.adminRoleArns`      | STANDARD   | AmazonEKSClusterAdminPolicy  | cluster   |
| `access.breakGlassRoleArn`  | STANDARD   | AmazonEKSClusterAdminPolicy  | cluster   |
| `access.readOnlyRoleArns`   | STANDARD   | AmazonEKSViewPolicy          | cluster   |
| `access.namespaceGrants`    | STANDARD   | AmazonEKSViewPolicy / Edit   | namespace |
| node roles                  | EC2_LINUX  | (none: EKS grants node perms) | -        |

The break-glass role is an entry of its own (tagged `k8s-platform/access=break-glass`) so its
use stands out in CloudTrail/audit and it can be alarmed on separately from daily admins.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

from components.config import EksAccessConfig

ACCESS_POLICY_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"
CLUSTER_ADMIN_POLICY = ACCESS_POLICY_PREFIX + "AmazonEKSClusterAdminPolicy"
VIEW_POLICY = ACCESS_POLICY_PREFIX + "AmazonEKSViewPolicy"
EDIT_POLICY = ACCESS_POLICY_PREFIX + "AmazonEKSEditPolicy"
NAMESPACE_POLICIES = {"view": VIEW_POLICY, "edit": EDIT_POLICY}
# EKS Auto Mode nodes of a custom NodeClass join with an EC2 entry carrying this policy (cluster scope).
AUTO_NODE_POLICY = ACCESS_POLICY_PREFIX + "AmazonEKSAutoNodePolicy"
# Node roles (managed node groups, Karpenter) join as EC2_LINUX entries, with no access policy.
NODE_ENTRY_TYPE = "EC2_LINUX"

AccessLevel = Literal["admin", "break-glass", "read-only", "namespace", "node"]


@dataclass(frozen=True)
class PolicyGrant:
    policy_arn: str
    scope: Literal["cluster", "namespace"]
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessEntrySpec:
    key: str  # stable, unique resource-name suffix
    principal_arn: str
    level: AccessLevel
    entry_type: Literal["STANDARD", "EC2_LINUX"] = "STANDARD"
    grants: tuple[PolicyGrant, ...] = field(default_factory=tuple)

    @property
    def is_admin(self) -> bool:
        return any(g.policy_arn == CLUSTER_ADMIN_POLICY for g in self.grants)


def _role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def render_access_entries(access: EksAccessConfig) -> list[AccessEntrySpec]:
    """One spec per configured principal, admins first (the deployment needs them earliest)."""
    cluster_admin = (PolicyGrant(CLUSTER_ADMIN_POLICY, "cluster"),)
    specs: list[AccessEntrySpec] = []
    for arn in access.admin_role_arns:
        specs.append(AccessEntrySpec(f"admin-{_slug(_role_name(arn))}", arn, "admin", grants=cluster_admin))
    if access.break_glass_role_arn:
        arn = access.break_glass_role_arn
        specs.append(AccessEntrySpec(f"break-glass-{_slug(_role_name(arn))}", arn, "break-glass", grants=cluster_admin))
    for arn in access.read_only_role_arns:
        specs.append(
            AccessEntrySpec(
                f"read-only-{_slug(_role_name(arn))}", arn, "read-only", grants=(PolicyGrant(VIEW_POLICY, "cluster"),)
            )
        )
    for grant in access.namespace_grants:
        specs.append(
            AccessEntrySpec(
                f"ns-{_slug(_role_name(grant.role_arn))}",
                grant.role_arn,
                "namespace",
                grants=(PolicyGrant(NAMESPACE_POLICIES[grant.policy], "namespace", tuple(grant.namespaces)),),
            )
        )
    return _unique_keys(specs)


def node_access_entry(key: str, node_role_arn: str) -> AccessEntrySpec:
    """Nodes join with their instance role: EC2_LINUX entries carry no access policy."""
    return AccessEntrySpec(key, node_role_arn, "node", entry_type=NODE_ENTRY_TYPE)


def _unique_keys(specs: list[AccessEntrySpec]) -> list[AccessEntrySpec]:
    """Roles with one name in different paths/accounts would collide: suffix those with an ARN hash."""
    counts: dict[str, int] = {}
    for s in specs:
        counts[s.key] = counts.get(s.key, 0) + 1
    out = []
    for s in specs:
        if counts[s.key] > 1:
            digest = hashlib.sha256(s.principal_arn.encode()).hexdigest()[:6]
            s = AccessEntrySpec(f"{s.key}-{digest}", s.principal_arn, s.level, s.entry_type, s.grants)
        out.append(s)
    return out
