"""EKS control plane: endpoint exposure, secrets encryption, logs, version, authentication and
the access entries that decide who can administer the cluster."""

from __future__ import annotations

import ipaddress

from pulumi_policy import Severity

from .common import (
    as_list,
    checkov,
    cis_eks,
    eks_best_practices,
    get,
    is_false,
    is_set,
    resource_rule,
    resources_of,
    stack_rule,
    str_list,
    transitive_dependencies,
    truthy,
)

CLUSTER = "aws:eks/cluster:Cluster"
ACCESS_POLICY_ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ADDON = "aws:eks/addon:Addon"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
WORLD = ("0.0.0.0/0", "::/0")


def _cidr_allowed(cidr: str, allowed: list[str]) -> bool:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    for a in allowed:
        try:
            if net.version == ipaddress.ip_network(a, strict=False).version and net.subnet_of(
                ipaddress.ip_network(a, strict=False)
            ):
                return True
        except ValueError:
            continue
    return False


def _endpoint(props, cfg, report, args) -> None:
    vpc = get(props, "vpcConfig", default={})
    if not truthy(get(vpc, "endpointPrivateAccess", default=False)):
        report("vpcConfig.endpointPrivateAccess must be true so nodes and controllers reach the API inside the VPC")
    # The provider's default for endpointPublicAccess is true: absent means public.
    public = get(vpc, "endpointPublicAccess")
    if public is None or truthy(public):
        cidrs = str_list(get(vpc, "publicAccessCidrs"))
        if not cidrs:
            report(
                "the public endpoint is open to 0.0.0.0/0 (endpointPublicAccess on with no publicAccessCidrs); "
                "turn it off or list the CIDRs allowed"
            )
            return
        for cidr in cidrs:
            if cidr in WORLD:
                report(f"publicAccessCidrs contains {cidr}: the API server is reachable from the whole internet")
            elif not _cidr_allowed(cidr, cfg["allowedPublicCidrs"]):
                report(
                    f"publicAccessCidrs contains {cidr}, which is not within the allowed public CIDRs "
                    f"{cfg['allowedPublicCidrs']} (policy config allowedPublicCidrs)"
                )


def _secrets_kms(props, cfg, report, args) -> None:
    configs = as_list(get(props, "encryptionConfig"))
    for ec in configs:
        # The key ARN is usually unknown at preview (the key is created in the same stack): set is enough.
        if "secrets" in str_list(get(ec, "resources")) and is_set(ec, "provider", "keyArn"):
            return
    report("encryptionConfig must envelope-encrypt 'secrets' with a KMS key (provider.keyArn)")


def _logging(props, cfg, report, args) -> None:
    enabled = set(str_list(get(props, "enabledClusterLogTypes")))
    missing = [t for t in cfg["requiredLogTypes"] if t not in enabled]
    if missing:
        report(f"control-plane log types {missing} are not enabled (enabledClusterLogTypes: {sorted(enabled)})")


def _version(props, cfg, report, args) -> None:
    version = get(props, "version")
    if version is None:
        report(f"version is not set: EKS would pick its default; pin one of {cfg['allowedVersions']}")
    elif str(version) not in cfg["allowedVersions"]:
        report(f"Kubernetes {version} is not in the allowed versions {cfg['allowedVersions']}")


def _auth_mode(props, cfg, report, args) -> None:
    mode = get(props, "accessConfig", "authenticationMode")
    if mode is None:
        report("accessConfig.authenticationMode is not set (the provider default is CONFIG_MAP); set API")
    elif mode == "CONFIG_MAP":
        report("authenticationMode CONFIG_MAP keeps access in the aws-auth ConfigMap; use API (access entries)")
    elif mode == "API_AND_CONFIG_MAP" and not cfg["allowApiAndConfigMap"]:
        report("authenticationMode API_AND_CONFIG_MAP is only for migrations (policy config allowApiAndConfigMap)")


def _no_creator_admin(props, cfg, report, args) -> None:
    # Absent means true: EKS grants the creating principal a hidden cluster-admin access entry.
    if not is_false(get(props, "accessConfig", "bootstrapClusterCreatorAdminPermissions")):
        report(
            "accessConfig.bootstrapClusterCreatorAdminPermissions must be false: the creator must not get an "
            "implicit, invisible cluster-admin grant"
        )


def _cluster_of(resource, clusters) -> list:
    """Clusters an access/association resource belongs to, via its dependencies."""
    deps = {d.urn for d in transitive_dependencies(resource)}
    return [c for c in clusters if c.urn in deps]


def _admin_associations(resources) -> list:
    return [
        a
        for a in resources_of(resources, ACCESS_POLICY_ASSOCIATION)
        if get(a.props, "policyArn") == CLUSTER_ADMIN_POLICY
        and get(a.props, "accessScope", "type", default="cluster") == "cluster"
    ]


def _admin_present(resources, cfg, report, args) -> None:
    clusters = resources_of(resources, CLUSTER)
    admins = _admin_associations(resources)
    for cluster in clusters:
        if not is_false(get(cluster.props, "accessConfig", "bootstrapClusterCreatorAdminPermissions")):
            continue  # the creator keeps an implicit admin grant
        if get(cluster.props, "accessConfig", "authenticationMode") == "CONFIG_MAP":
            continue  # access comes from aws-auth, not access entries
        mine = [a for a in admins if cluster in _cluster_of(a, clusters) or len(clusters) == 1]
        if not mine:
            report(
                f"cluster '{cluster.name}' has no cluster-scoped AmazonEKSClusterAdminPolicy association and no "
                "creator bootstrap: nobody could administer it (RBAC lockout)",
                cluster.urn,
            )


def _admin_limited(resources, cfg, report, args) -> None:
    admins = _admin_associations(resources)
    if len(admins) > cfg["maxClusterAdmins"]:
        principals = sorted(str(get(a.props, "principalArn", default=a.name)) for a in admins)
        report(
            f"{len(admins)} principals hold cluster-scoped AmazonEKSClusterAdminPolicy ({principals}); at most "
            f"{cfg['maxClusterAdmins']} are allowed (policy config maxClusterAdmins)"
        )


def _addon_pinned(props, cfg, report, args) -> None:
    if not get(props, "addonVersion"):
        report(
            f"add-on '{get(props, 'addonName')}' has no addonVersion: EKS would install its default and "
            "upgrades would be implicit"
        )


# EKS Auto Mode: the three capabilities are enabled together or not at all (CreateCluster refuses a mix),
# and Auto Mode clusters bootstrap no self-managed add-ons (they would run beside Auto Mode's own).
AUTO_MODE_CAPABILITIES = {
    "computeConfig.enabled": ("computeConfig", "enabled"),
    "storageConfig.blockStorage.enabled": ("storageConfig", "blockStorage", "enabled"),
    "kubernetesNetworkConfig.elasticLoadBalancing.enabled": (
        "kubernetesNetworkConfig",
        "elasticLoadBalancing",
        "enabled",
    ),
}


def _auto_mode_together(props, cfg, report, args) -> None:
    enabled = {name: truthy(get(props, *path, default=False)) for name, path in AUTO_MODE_CAPABILITIES.items()}
    if not any(enabled.values()):
        return
    off = [name for name, on in enabled.items() if not on]
    if off:
        report(f"EKS Auto Mode needs its three capabilities together; {', '.join(off)} not enabled")
    if not is_false(get(props, "bootstrapSelfManagedAddons")):
        report("bootstrapSelfManagedAddons must be false on an Auto Mode cluster (Auto Mode runs its own CNI and DNS)")


def _nodegroup_ssh(props, cfg, report, args) -> None:
    remote = get(props, "remoteAccess")
    if remote is not None and get(remote, "ec2SshKey") and not as_list(get(remote, "sourceSecurityGroupIds")):
        report("remoteAccess names an SSH key without sourceSecurityGroupIds: EKS opens port 22 to 0.0.0.0/0")


RULES = [
    resource_rule(
        "eks-endpoint-private",
        "The EKS API endpoint is private, or public only to allowed CIDRs.",
        Severity.CRITICAL,
        [cis_eks("5.4.2"), checkov("CKV_AWS_39"), checkov("CKV_AWS_38")],
        [CLUSTER],
        _endpoint,
        {
            "allowedPublicCidrs": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "CIDRs the public endpoint may be opened to",
            }
        },
        "Set vpcConfig.endpointPublicAccess false, or list only allowed CIDRs in publicAccessCidrs.",
    ),
    resource_rule(
        "eks-secrets-encryption-kms",
        "Kubernetes Secrets are envelope-encrypted with a KMS key.",
        Severity.HIGH,
        [cis_eks("5.3.1"), checkov("CKV_AWS_58")],
        [CLUSTER],
        _secrets_kms,
    ),
    resource_rule(
        "eks-control-plane-logging",
        "Control-plane logs (api, audit, authenticator) go to CloudWatch.",
        Severity.MEDIUM,
        [cis_eks("2.1.1"), checkov("CKV_AWS_37")],
        [CLUSTER],
        _logging,
        {
            "requiredLogTypes": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["api", "audit", "authenticator"],
            }
        },
    ),
    resource_rule(
        "eks-version-allowed",
        "The EKS Kubernetes version is pinned to an allowed, supported release.",
        Severity.MEDIUM,
        [checkov("CKV_AWS_339")],
        [CLUSTER],
        _version,
        {"allowedVersions": {"type": "array", "items": {"type": "string"}, "default": ["1.35", "1.36"]}},
    ),
    resource_rule(
        "eks-authentication-mode-api",
        "Cluster access is managed with access entries (authenticationMode API).",
        Severity.HIGH,
        [cis_eks("5.5.1")],
        [CLUSTER],
        _auth_mode,
        {
            "allowApiAndConfigMap": {
                "type": "boolean",
                "default": False,
                "description": "allow API_AND_CONFIG_MAP during a migration off aws-auth",
            }
        },
    ),
    resource_rule(
        "eks-no-creator-admin-bootstrap",
        "The cluster creator gets no implicit cluster-admin access entry.",
        Severity.HIGH,
        [cis_eks("4.1.1")],
        [CLUSTER],
        _no_creator_admin,
    ),
    stack_rule(
        "eks-admin-access-entry-present",
        "Every cluster has an explicit cluster-admin access entry (no RBAC lockout).",
        Severity.CRITICAL,
        [cis_eks("5.5.1"), eks_best_practices("security/iam#access-entries")],
        [CLUSTER, ACCESS_POLICY_ASSOCIATION],
        _admin_present,
    ),
    stack_rule(
        "eks-cluster-admin-limited",
        "Few principals hold cluster-scoped AmazonEKSClusterAdminPolicy.",
        Severity.MEDIUM,
        [cis_eks("4.1.1")],
        [ACCESS_POLICY_ASSOCIATION],
        _admin_limited,
        {"maxClusterAdmins": {"type": "integer", "minimum": 1, "default": 3}},
    ),
    resource_rule(
        "eks-addon-version-pinned",
        "Managed add-ons pin their version.",
        Severity.LOW,
        [eks_best_practices("cluster-upgrades#add-ons")],
        [ADDON],
        _addon_pinned,
    ),
    resource_rule(
        "eks-auto-mode-capabilities-together",
        "EKS Auto Mode enables compute, block storage and load balancing together, with no self-managed add-ons.",
        Severity.HIGH,
        [eks_best_practices("automode")],
        [CLUSTER],
        _auto_mode_together,
    ),
    resource_rule(
        "eks-nodegroup-no-open-ssh",
        "Managed node groups do not open SSH to the world.",
        Severity.HIGH,
        [checkov("CKV_AWS_100")],
        [NODE_GROUP],
        _nodegroup_ssh,
    ),
]
