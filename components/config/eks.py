"""`k8s-platform:cluster.eks`: the EKS control plane (components/eks_*.py)."""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import Field, field_validator, model_validator

from components.config.auto_mode import ComputeMode, EksAutoModeConfig
from components.config.base import (
    LogRetentionDays,
    Model,
    _KeyedError,
    check_instance_type,
    dns_label,
    iam_role_arn,
    ipv4_network,
    is_graviton,
    raise_problems,
)
from components.config.checks import allowlist_problem
from components.config.data_plane import FargateProfileConfig, SecurityGroupPolicyConfig
from components.config.eks_resilience import ControlPlaneScalingConfig, NodeRepairConfig, ZonalShiftConfig
from components.core.eks_support_calendar import support_problem
from components.core.max_pods import INSTANCE_LIMITS, max_pods_for
from components.core.pins import ADDON_NAMES, SUPPORTED_KUBERNETES_VERSIONS

EksLogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]
# EKS access modes: CONFIG_MAP (aws-auth only) is refused; see EksConfig._authentication_mode.
AUTHENTICATION_MODES = ("API", "API_AND_CONFIG_MAP")
EKS_PUBLIC_ACCESS_CIDRS_MAX = 40  # EKS UpdateClusterConfig/CreateCluster limit on publicAccessCidrs


class EksEndpointConfig(Model):
    """API server endpoint exposure: private by default; public only for listed CIDRs."""

    private_access: bool = Field(
        True,
        description=(
            "Private API endpoint in the VPC; must stay `true` (nodes and in-VPC tooling reach the API server "
            "through it)."
        ),
    )
    public_access: bool = Field(False, description="Also expose a public API endpoint, limited to `publicAccessCidrs`.")
    public_access_cidrs: list[str] = Field(
        default_factory=list,
        description=(
            "Distinct IPv4 CIDRs allowed to reach the public endpoint: required when `publicAccess` is `true`, "
            "refused when it is `false`; `0.0.0.0/0` is refused in prod."
        ),
    )

    @field_validator("private_access")
    @classmethod
    def _private(cls, v: bool) -> bool:
        if not v:
            raise ValueError("must be true: nodes and in-VPC tooling reach the API server through the private endpoint")
        return v

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        nets = [ipv4_network(cidr) for cidr in v]
        if len(set(nets)) != len(nets):
            raise ValueError("CIDRs must be distinct")
        if len(v) > EKS_PUBLIC_ACCESS_CIDRS_MAX:
            raise ValueError(f"{len(v)} CIDRs; EKS accepts at most {EKS_PUBLIC_ACCESS_CIDRS_MAX} public access CIDRs")
        if nets and not any(n.prefixlen == 0 for n in nets):
            # 0.0.0.0/0 itself gets its own rule (refused in prod); a union as wide is refused everywhere.
            problem = allowlist_problem(nets)
            if problem:
                raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _public_needs_cidrs(self) -> "EksEndpointConfig":
        if self.public_access and not self.public_access_cidrs:
            raise _KeyedError(
                "cluster.eks.endpoint.publicAccessCidrs",
                "publicAccess: true needs explicit CIDRs (AWS would default to 0.0.0.0/0)",
            )
        if not self.public_access and self.public_access_cidrs:
            raise _KeyedError(
                "cluster.eks.endpoint.publicAccessCidrs",
                "CIDRs given but publicAccess is false; set publicAccess: true or remove them",
            )
        return self


class NamespaceGrant(Model):
    """A role limited to some namespaces: `view` (read, no Secrets) or `edit` (read/write workloads)."""

    role_arn: str = Field(description="IAM role ARN granted access to the namespaces (one access level per role).")
    namespaces: list[str] = Field(description="Distinct namespaces (DNS labels) the grant is limited to; at least one.")
    policy: Literal["view", "edit"] = Field(
        description=(
            "Access level: `view` (read, no Secrets) or `edit` (read/write workloads), scoped to `namespaces`."
        )
    )

    @field_validator("role_arn")
    @classmethod
    def _role(cls, v: str) -> str:
        return iam_role_arn(v)

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one namespace (a cluster-wide grant belongs in readOnlyRoleArns/adminRoleArns)")
        for ns in v:
            dns_label(ns)
        if len(set(v)) != len(v):
            raise ValueError("namespaces must be distinct")
        return v


class EksAccessConfig(Model):
    """Who may use the cluster, as EKS access entries (no implicit creator admin, no aws-auth)."""

    admin_role_arns: list[str] = Field(
        default_factory=list,
        description=(
            "IAM role ARNs with cluster admin (an access entry at cluster scope). Required on EKS: at least one, "
            "and `pulumi up` runs as one of them (the creator gets no implicit access)."
        ),
    )
    break_glass_role_arn: str | None = Field(
        None, description=("Emergency cluster-admin role, with its own tagged access entry.")
    )
    read_only_role_arns: list[str] = Field(
        default_factory=list, description=("IAM role ARNs with cluster-wide view access (no Secrets).")
    )
    namespace_grants: list[NamespaceGrant] = Field(
        default_factory=list,
        description=("Roles limited to some namespaces. A role may appear once across all access lists."),
    )

    @field_validator("admin_role_arns", "read_only_role_arns")
    @classmethod
    def _arns(cls, v: list[str]) -> list[str]:
        for arn in v:
            iam_role_arn(arn)
        return v

    @field_validator("break_glass_role_arn")
    @classmethod
    def _break_glass(cls, v: str | None) -> str | None:
        return None if v is None else iam_role_arn(v)

    @model_validator(mode="after")
    def _one_entry_per_principal(self) -> "EksAccessConfig":
        # EKS allows one access entry per principal: a role listed twice would be two entries.
        seen: dict[str, str] = {}
        problems: list[tuple[str, str]] = []
        listed = [(a, "adminRoleArns") for a in self.admin_role_arns]
        listed += [(self.break_glass_role_arn, "breakGlassRoleArn")] if self.break_glass_role_arn else []
        listed += [(a, "readOnlyRoleArns") for a in self.read_only_role_arns]
        listed += [(g.role_arn, "namespaceGrants") for g in self.namespace_grants]
        for arn, where in listed:
            if arn in seen:
                problems.append(
                    (
                        f"cluster.eks.access.{where}",
                        f"{arn} is already listed in {seen[arn]}; each role gets exactly one access level",
                    )
                )
            seen[arn] = where
        raise_problems("EksAccessConfig", problems)
        return self


class EksUpgradePolicyConfig(Model):
    # EXTENDED support costs several times STANDARD per cluster-hour: an explicit choice.
    support_type: Literal["STANDARD", "EXTENDED"] = Field(
        "STANDARD",
        description=(
            "EKS version support: `EXTENDED` keeps an old minor running past standard support, at several times "
            "the per-cluster-hour price."
        ),
    )


def managed_node_group_overcommits(instance_types: list[str]) -> list[str]:
    """Types whose custom-networking pod capacity is below the maxPods EKS gives managed nodes.

    For AL2023 managed node groups without a custom AMI, EKS appends its own NodeConfig (with
    maxPods from the vpc-cni's prefix-delegation setting, not knowing about custom networking) to
    the user-data; nodeadm lets the last document win, so our launch template's maxPods cannot
    lower it. Pods beyond what the secondary ENIs can address would sit in ContainerCreating.
    """

    return [
        t
        for t in instance_types
        if max_pods_for(t, prefix_delegation=True, custom_networking=True) < max_pods_for(t, prefix_delegation=True)
    ]


class EksSystemNodeGroupConfig(Model):
    """The small on-demand managed node group for Karpenter and cluster-critical controllers."""

    instance_types: list[str] = Field(
        default_factory=lambda: ["m7i.large", "m6i.large"],
        description=(
            "On-demand instance types of the system node group: one architecture, each with ENI data for maxPods "
            "(`components/data/instance_network_limits.json`) and room for its managed-node maxPods under custom "
            "networking (at least 3 ENIs of 10+ addresses)."
        ),
    )
    desired_size: int = Field(default=3, ge=1, le=20, description="Nodes to run; `minSize <= desiredSize <= maxSize`.")
    min_size: int = Field(default=2, ge=1, le=20, description="Fewest nodes of the system node group.")
    max_size: int = Field(default=4, ge=1, le=20, description="Most nodes of the system node group.")
    disk_size_gib: int = Field(
        default=50, ge=20, le=1000, alias="diskSizeGiB", description=("Encrypted root volume size of each node, GiB.")
    )
    node_repair_config: NodeRepairConfig = Field(
        NodeRepairConfig(),
        description=("Node auto repair of the system node group (`nodeRepairConfig`): on by default."),
    )
    # Set by `platformctl upgrade` between its steps (nodes follow the control plane one update later).
    version: str | None = Field(
        None,
        description=(
            'Kubernetes minor of the system nodes (quoted, like `"1.35"`); default: `cluster.eks.version`. '
            "Never newer than the control plane and at most 3 minors older (the Kubernetes version-skew policy); "
            "`platformctl upgrade` holds the nodes here while it upgrades the control plane."
        ),
    )

    @field_validator("instance_types")
    @classmethod
    def _instance_types(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one instance type")
        unknown = [t for t in v if t not in INSTANCE_LIMITS]
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)}: no ENI data for maxPods in components/data/instance_network_limits.json; "
                "use a listed type (e.g. m7i.large, m7g.large) or regenerate the table from newer published data"
            )
        if len({is_graviton(t) for t in v}) > 1:
            raise ValueError("mixes arm64 (Graviton) and x86_64 types; one node group runs one AMI architecture")
        short = managed_node_group_overcommits(v)
        if short:
            raise ValueError(
                f"{', '.join(short)}: EKS managed node groups set the kubelet's maxPods themselves (their "
                "nodeadm config is appended after the launch template's and wins) from prefix delegation alone, "
                "but with custom networking these types have addresses for fewer pods; use types with at least "
                "3 ENIs of 10+ addresses (e.g. m7i.large, m7g.large, t3.medium)"
            )
        return v

    @model_validator(mode="after")
    def _sizes(self) -> "EksSystemNodeGroupConfig":
        if not self.min_size <= self.desired_size <= self.max_size:
            raise _KeyedError(
                "cluster.eks.systemNodeGroup.desiredSize",
                f"need minSize <= desiredSize <= maxSize, got {self.min_size} <= {self.desired_size} <= "
                f"{self.max_size}",
            )
        return self


class EksAccessInstanceConfig(Model):
    """The SSM-only instance `platformctl connect` forwards the private API endpoint through
    (components/eks/access_instance.py): no inbound rule, no public IP, no SSH."""

    enabled: bool = Field(
        False,
        description=(
            "Create the access instance (EKS only; K3s forwards through a server). Needed when the API endpoint "
            "is private only and no other host in the VPC is at hand."
        ),
    )
    instance_type: str = Field(
        "t4g.nano",
        description=(
            "Instance type of the access instance; it only relays one TCP port, so the smallest Graviton fits."
        ),
    )

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, v: str) -> str:

        return check_instance_type(v)


class EksConfig(Model):
    """EKS control-plane settings."""

    # components/core/pins.DEFAULT_KUBERNETES_VERSION (the newest minor with backed pins).
    version: str = Field(
        "1.35",
        description=(
            "EKS Kubernetes minor, quoted in YAML: one with pinned add-on versions "
            "(`components/core/pins.py`); a minor past its standard support "
            "(`components/core/eks_support_calendar.py`) is refused under `upgradePolicy.supportType: STANDARD`, "
            "with the dates and the choice (upgrade, or `EXTENDED`)."
        ),
    )
    authentication_mode: str = Field(
        "API",
        description=(
            "How IAM principals authenticate: `API` (access entries), or `API_AND_CONFIG_MAP` only while migrating "
            "off aws-auth; `CONFIG_MAP` is refused."
        ),
    )
    endpoint: EksEndpointConfig = Field(EksEndpointConfig(), description="API server endpoint exposure.")
    # All five by default (CIS EKS 2.1.1, checkov CKV_AWS_37): scheduler and controllerManager logs
    # explain evictions and failed scheduling; a stack may drop those two to save CloudWatch cost.
    log_types: list[EksLogType] = Field(
        default_factory=lambda: list(get_args(EksLogType)),
        description=(
            "Control-plane log types, distinct: all five by default; `api`, `audit` and `authenticator` must stay, "
            "`controllerManager` and `scheduler` may be dropped to save CloudWatch cost."
        ),
    )
    log_retention_days: LogRetentionDays = Field(
        90, description=("Days `/aws/eks/<cluster>/cluster` (KMS-encrypted) keeps control-plane logs.")
    )
    access: EksAccessConfig = Field(
        EksAccessConfig(),
        description=("Who may use the cluster, as EKS access entries (no implicit creator admin, no aws-auth)."),
    )
    upgrade_policy: EksUpgradePolicyConfig = Field(EksUpgradePolicyConfig(), description="EKS upgrade policy.")
    compute_mode: ComputeMode = Field(
        "karpenter",
        description=(
            "Who runs the data plane: `karpenter` (self-managed Karpenter, the system node group and the managed "
            "networking and storage add-ons) or `auto-mode` (EKS Auto Mode: AWS runs node provisioning, VPC CNI, "
            "kube-proxy, CoreDNS, EBS CSI, load balancing and the Pod Identity agent; the stack's "
            "`karpenter.nodePools` become NodePools of `eks.amazonaws.com/v1` NodeClasses). EKS only; under "
            "`auto-mode` the keys of the self-managed pieces are refused, and the `pinnedAmis` safeguard cannot "
            "hold: AWS rolls out its node AMIs (about weekly) as drift, paced by the pools' disruption budgets "
            "(a `Drifted` budget with a schedule confines it to a window)."
        ),
    )
    auto_mode: EksAutoModeConfig = Field(
        EksAutoModeConfig(), description="EKS Auto Mode settings (`computeMode: auto-mode` only)."
    )
    system_node_group: EksSystemNodeGroupConfig = Field(
        EksSystemNodeGroupConfig(),
        description=("The small on-demand managed node group for Karpenter and cluster-critical controllers."),
    )
    access_instance: EksAccessInstanceConfig = Field(
        EksAccessInstanceConfig(),
        description=(
            "An SSM-only instance in a private subnet through which `platformctl connect` reaches a private API "
            "endpoint (no inbound rule, no public IP, no SSH)."
        ),
    )
    # Per-stack add-on version overrides (e.g. a hotfix build); pins live in components/core/pins.py.
    addon_versions: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Per-stack override of add-on pins (e.g. a hotfix build), like `{coredns: v1.13.2-eksbuild.9}`: keys are "
            "add-ons the platform installs (`components/core/pins.py`), values exact `vX.Y.Z-eksbuild.N`."
        ),
    )
    deletion_protection: bool | None = Field(
        None,
        description=(
            "EKS deletion protection (EKS refuses DeleteCluster while on); unset: the environment's "
            "(`safeguards.clusterDeletionProtection`: on in staging and prod, where `false` also needs "
            "`allowDeletionUnprotected: true`)."
        ),
    )
    allow_deletion_unprotected: bool = Field(
        False,
        description=(
            "The explicit override for `deletionProtection: false` where the environment requires protection "
            "(a deliberate teardown); refused without `deletionProtection: false`."
        ),
    )
    control_plane_scaling_config: ControlPlaneScalingConfig | None = Field(
        None,
        description=(
            "EKS Provisioned Control Plane (`controlPlaneScalingConfig.tier`); unset: not sent, EKS runs `standard`."
        ),
    )
    zonal_shift_config: ZonalShiftConfig | None = Field(
        None, description=("ARC zonal shift for the cluster (`zonalShiftConfig.enabled`); unset: not sent (off).")
    )
    security_group_policies: list[SecurityGroupPolicyConfig] = Field(
        default_factory=list,
        description=(
            "Security groups for pods: one `SecurityGroupPolicy` per entry (pods get a branch ENI with its groups); "
            "any entry turns on `ENABLE_POD_ENI` on the VPC CNI and the VPC resource controller policy on the "
            "cluster role. Pods need trunk-ENI instance types: see `karpenter.nodePools[].securityGroupsForPods`."
        ),
    )
    pod_security_group_enforcing_mode: Literal["strict", "standard"] = Field(
        "strict",
        description=(
            "VPC CNI `POD_SECURITY_GROUP_ENFORCING_MODE` when `securityGroupPolicies` are set: `strict` (only the "
            "policy's groups apply to a selected pod's traffic) or `standard` (traffic to other pods and to the node "
            "also passes the node's groups; needed for selected pods that use Pod Identity)."
        ),
    )
    fargate_profiles: list[FargateProfileConfig] = Field(
        default_factory=list,
        description=(
            "Fargate profiles (private subnets, the stack's pod execution role), distinct names, at most 10; a "
            "profile selecting the namespace of a `pod-identity` workload (or kube-system) is refused: Fargate "
            "has no Pod Identity agent (use `method: irsa`)."
        ),
    )
    # Set by `platformctl upgrade` and by `platformctl preview --offline --previous-plan`; see version_rules.py.
    deployed_version: str | None = Field(
        None,
        description=(
            "The control plane's minor as deployed (quoted), set by `platformctl upgrade` and by "
            "`platformctl preview --offline --previous-plan PLAN.json`: when set, `version` must be this minor or "
            "the next one (EKS upgrades one minor at a time and never downgrades)."
        ),
    )
    resolve_conflicts_on_update: Literal["PRESERVE", "OVERWRITE", "NONE"] = Field(
        "PRESERVE",
        description=(
            "How an add-on update treats values changed outside Pulumi: `PRESERVE` keeps them, `OVERWRITE` resets "
            "them, `NONE` leaves them and the update may fail."
        ),
    )

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        if v not in SUPPORTED_KUBERNETES_VERSIONS:
            raise ValueError(
                f"'{v}' has no pinned add-on versions; allowed: {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}"
            )
        return v

    @model_validator(mode="after")
    def _supported(self) -> "EksConfig":
        problem = support_problem(self.version, self.upgrade_policy.support_type)
        # A cluster known to run this minor already must still be able to upgrade away from it: then
        # the program warns instead (programs/stack.py), and `platformctl upgrade` plans from here.
        if problem and self.deployed_version != self.version:
            raise _KeyedError("cluster.eks.version", problem)
        return self

    @field_validator("authentication_mode")
    @classmethod
    def _authentication_mode(cls, v: str) -> str:
        if v == "CONFIG_MAP":
            raise ValueError(
                "CONFIG_MAP is refused: the aws-auth ConfigMap is deprecated and unaudited; use API "
                "(access entries), or API_AND_CONFIG_MAP only while migrating off aws-auth"
            )
        if v not in AUTHENTICATION_MODES:
            raise ValueError(f"got '{v}'; allowed: {', '.join(AUTHENTICATION_MODES)}")
        return v

    @field_validator("log_types")
    @classmethod
    def _log_types(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("log types must be distinct")
        missing = [t for t in ("api", "audit", "authenticator") if t not in v]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} must stay enabled (who did what to the cluster); "
                "controllerManager and scheduler may be added"
            )
        return v

    @field_validator("addon_versions")
    @classmethod
    def _addon_overrides(cls, v: dict[str, str]) -> dict[str, str]:
        for name, version in v.items():
            if name not in ADDON_NAMES:
                raise ValueError(f"'{name}' is not an installed add-on; allowed: {', '.join(ADDON_NAMES)}")
            if not re.fullmatch(r"v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+", version, re.ASCII):
                raise ValueError(f"{name}: '{version}' is not an exact add-on version like v1.21.1-eksbuild.3")
        return v
