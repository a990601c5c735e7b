"""Typed stack configuration: the one place raw `k8s-platform:*` config becomes models.

Every key lives under the `k8s-platform:` namespace of a Pulumi stack file (plus `aws:region`).
Keys are camelCase in YAML, snake_case in Python. `parse_stack_config` returns a `StackConfig`
or raises `ConfigError` listing every problem, each naming its key path
(`k8s-platform:network.podCidr`) and what is allowed. Components receive these models, never
`pulumi.Config`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

NAMESPACE = "k8s-platform"

# RFC 1123 label: what Kubernetes, AWS names and DNS all accept.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

# Pod CIDRs must come from ranges VPCs accept as secondary blocks and that do not collide with
# corporate RFC 1918 space: the carrier-grade NAT range is what AWS documents for custom networking.
ALLOWED_POD_RANGES = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("198.19.0.0/16"))


class ConfigError(Exception):
    """All problems of one stack config, each `key: what is wrong and what is allowed`."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class Model(BaseModel):
    """Base: camelCase keys, unknown keys refused (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


def dns_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError(
            f"'{value}' is not DNS-safe: use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def ipv4_network(value: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a valid IPv4 CIDR ({exc}); e.g. 10.0.0.0/16") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise ValueError(f"'{value}' is not an IPv4 CIDR")
    return net


# --------------------------------------------------------------------------------------- network
InterfaceEndpoint = Literal[
    "sts", "ec2", "ecr.api", "ecr.dkr", "ssm", "ssmmessages", "ec2messages", "sqs", "logs",
    "kms", "elasticloadbalancing", "autoscaling", "eks", "eks-auth", "secretsmanager",
]


class FlowLogsConfig(Model):
    enabled: bool = True
    retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653] = 90
    traffic_type: Literal["ALL", "ACCEPT", "REJECT"] = "ALL"


class NetworkConfig(Model):
    vpc_cidr: str = "10.0.0.0/16"
    pod_cidr: str = "100.64.0.0/16"
    availability_zones: list[str]
    nat_gateways: Literal["one-per-az", "single"] = "one-per-az"
    interface_endpoints: list[InterfaceEndpoint] = Field(
        default_factory=lambda: ["sts", "ec2", "ecr.api", "ecr.dkr", "ssm", "ssmmessages", "ec2messages", "sqs"]
    )
    flow_logs: FlowLogsConfig = FlowLogsConfig()

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, v: str) -> str:
        net = ipv4_network(v)
        if not 16 <= net.prefixlen <= 20:
            raise ValueError(f"'{v}' must be a /16 to /20 (AWS allows /16-/28; smaller leaves no room for node subnets)")
        if not net.is_private:
            raise ValueError(f"'{v}' must be a private (RFC 1918) range")
        return v

    @field_validator("pod_cidr")
    @classmethod
    def _pod_cidr(cls, v: str) -> str:
        net = ipv4_network(v)
        if not any(net.subnet_of(r) for r in ALLOWED_POD_RANGES):
            allowed = ", ".join(str(r) for r in ALLOWED_POD_RANGES)
            raise ValueError(f"'{v}' must lie within {allowed} (secondary pod ranges for custom networking)")
        if not 16 <= net.prefixlen <= 20:
            raise ValueError(f"'{v}' must be a /16 to /20 (a VPC secondary block; pods need the room)")
        return v

    @field_validator("availability_zones")
    @classmethod
    def _azs(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("availability zones must be distinct")
        for az in v:
            if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$", az):
                raise ValueError(f"'{az}' is not an availability zone name like us-east-1a")
        if not 2 <= len(v) <= 6:
            raise ValueError(f"{len(v)} zones given; 2 to 6 are allowed")
        return v

    @model_validator(mode="after")
    def _no_overlap(self) -> "NetworkConfig":
        if ipaddress.ip_network(self.vpc_cidr).overlaps(ipaddress.ip_network(self.pod_cidr)):
            raise _KeyedError("network.podCidr", f"{self.pod_cidr} overlaps vpcCidr {self.vpc_cidr}; they must be disjoint")
        return self


# --------------------------------------------------------------------------------------- cluster
LogRetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653]
EksLogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]
IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# EKS access modes: CONFIG_MAP (aws-auth only) is refused; see EksConfig._authentication_mode.
AUTHENTICATION_MODES = ("API", "API_AND_CONFIG_MAP")


def iam_role_arn(value: str) -> str:
    if not IAM_ROLE_ARN.match(value):
        raise ValueError(f"'{value}' is not an IAM role ARN like arn:aws:iam::123456789012:role/name")
    return value


class EksEndpointConfig(Model):
    """API server endpoint exposure: private by default; public only for listed CIDRs."""

    private_access: bool = True
    public_access: bool = False
    public_access_cidrs: list[str] = Field(default_factory=list)

    @field_validator("private_access")
    @classmethod
    def _private(cls, v: bool) -> bool:
        if not v:
            raise ValueError("must be true: nodes and in-VPC tooling reach the API server through the private endpoint")
        return v

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for cidr in v:
            ipv4_network(cidr)
        if len(set(v)) != len(v):
            raise ValueError("CIDRs must be distinct")
        return v

    @model_validator(mode="after")
    def _public_needs_cidrs(self) -> "EksEndpointConfig":
        if self.public_access and not self.public_access_cidrs:
            raise _KeyedError("cluster.eks.endpoint.publicAccessCidrs",
                              "publicAccess: true needs explicit CIDRs (AWS would default to 0.0.0.0/0)")
        if not self.public_access and self.public_access_cidrs:
            raise _KeyedError("cluster.eks.endpoint.publicAccessCidrs",
                              "CIDRs given but publicAccess is false; set publicAccess: true or remove them")
        return self


class NamespaceGrant(Model):
    """A role limited to some namespaces: `view` (read, no Secrets) or `edit` (read/write workloads)."""

    role_arn: str
    namespaces: list[str]
    policy: Literal["view", "edit"]

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

    admin_role_arns: list[str] = Field(default_factory=list)
    break_glass_role_arn: str | None = None
    read_only_role_arns: list[str] = Field(default_factory=list)
    namespace_grants: list[NamespaceGrant] = Field(default_factory=list)

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
        listed = [(a, "adminRoleArns") for a in self.admin_role_arns]
        listed += [(self.break_glass_role_arn, "breakGlassRoleArn")] if self.break_glass_role_arn else []
        listed += [(a, "readOnlyRoleArns") for a in self.read_only_role_arns]
        listed += [(g.role_arn, "namespaceGrants") for g in self.namespace_grants]
        for arn, where in listed:
            if arn in seen:
                raise _KeyedError(f"cluster.eks.access.{where}",
                                  f"{arn} is already listed in {seen[arn]}; each role gets exactly one access level")
            seen[arn] = where
        return self


class EksUpgradePolicyConfig(Model):
    # EXTENDED support costs several times STANDARD per cluster-hour: an explicit choice.
    support_type: Literal["STANDARD", "EXTENDED"] = "STANDARD"


class EksSystemNodeGroupConfig(Model):
    """The small on-demand managed node group for Karpenter and cluster-critical controllers."""

    instance_types: list[str] = Field(default_factory=lambda: ["m7i.large", "m6i.large"])
    desired_size: int = Field(default=3, ge=1, le=20)
    min_size: int = Field(default=2, ge=1, le=20)
    max_size: int = Field(default=4, ge=1, le=20)
    disk_size_gib: int = Field(default=50, ge=20, le=1000, alias="diskSizeGiB")

    @field_validator("instance_types")
    @classmethod
    def _instance_types(cls, v: list[str]) -> list[str]:
        from components.max_pods import INSTANCE_LIMITS  # pure data; maxPods needs each type's ENI limits

        if not v:
            raise ValueError("at least one instance type")
        unknown = [t for t in v if t not in INSTANCE_LIMITS]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: no ENI data for maxPods in components/data/instance_network_limits.json; "
                             "use a listed type (e.g. m7i.large, m7g.large) or add its row")
        if len({is_graviton(t) for t in v}) > 1:
            raise ValueError("mixes arm64 (Graviton) and x86_64 types; one node group runs one AMI architecture")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> "EksSystemNodeGroupConfig":
        if not self.min_size <= self.desired_size <= self.max_size:
            raise _KeyedError("cluster.eks.systemNodeGroup.desiredSize",
                              f"need minSize <= desiredSize <= maxSize, got {self.min_size} <= {self.desired_size} <= {self.max_size}")
        return self


def is_graviton(instance_type: str) -> bool:
    """m7g.large, c6gd.xlarge -> True: the family's processor letter after the generation is 'g'."""
    family = instance_type.split(".", 1)[0]
    return bool(re.match(r"^[a-z]+\d+[a-z]*g[a-z]*$", family)) and not family.startswith("g")


class EksConfig(Model):
    """EKS control-plane settings."""

    version: str = "1.35"
    authentication_mode: str = "API"
    endpoint: EksEndpointConfig = EksEndpointConfig()
    log_types: list[EksLogType] = Field(default_factory=lambda: ["api", "audit", "authenticator"])
    log_retention_days: LogRetentionDays = 90
    access: EksAccessConfig = EksAccessConfig()
    upgrade_policy: EksUpgradePolicyConfig = EksUpgradePolicyConfig()
    system_node_group: EksSystemNodeGroupConfig = EksSystemNodeGroupConfig()
    # Per-stack add-on version overrides (e.g. a hotfix build); pins live in eks_addon_versions.py.
    addon_versions: dict[str, str] = Field(default_factory=dict)
    resolve_conflicts_on_update: Literal["PRESERVE", "OVERWRITE", "NONE"] = "PRESERVE"

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        from components.eks_addon_versions import SUPPORTED_KUBERNETES_VERSIONS

        if v not in SUPPORTED_KUBERNETES_VERSIONS:
            raise ValueError(f"'{v}' has no pinned add-on versions; allowed: {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}")
        return v

    @field_validator("authentication_mode")
    @classmethod
    def _authentication_mode(cls, v: str) -> str:
        if v == "CONFIG_MAP":
            raise ValueError("CONFIG_MAP is refused: the aws-auth ConfigMap is deprecated and unaudited; use API "
                             "(access entries), or API_AND_CONFIG_MAP only while migrating off aws-auth")
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
            raise ValueError(f"{', '.join(missing)} must stay enabled (who did what to the cluster); "
                             "controllerManager and scheduler may be added")
        return v

    @field_validator("addon_versions")
    @classmethod
    def _addon_overrides(cls, v: dict[str, str]) -> dict[str, str]:
        from components.eks_addon_versions import ADDON_NAMES

        for name, version in v.items():
            if name not in ADDON_NAMES:
                raise ValueError(f"'{name}' is not an installed add-on; allowed: {', '.join(ADDON_NAMES)}")
            if not re.match(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$", version):
                raise ValueError(f"{name}: '{version}' is not an exact add-on version like v1.21.1-eksbuild.3")
        return v


# K3s's default cluster (flannel pod) and service CIDRs: the VPC must not overlap them.
K3S_INTERNAL_RANGES = ("10.42.0.0/16", "10.43.0.0/16")
K3S_VERSION = re.compile(r"^v1\.\d+\.\d+\+k3s\d+$")
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")


def instance_architecture(instance_type: str) -> Literal["arm64", "x86_64"]:
    """Graviton families carry a `g` after the generation digit (t4g, m7g, c7gn, r8g)."""
    family = instance_type.split(".", 1)[0]
    return "arm64" if re.match(r"^[a-z]+\d+g", family) else "x86_64"


def _instance_type(v: str) -> str:
    if not INSTANCE_TYPE.match(v):
        raise ValueError(f"'{v}' is not an EC2 instance type like m7i.large")
    return v


class K3sServersConfig(Model):
    # Embedded etcd needs a quorum: 1 (dev, no HA), 3 or 5 servers. Even counts add no tolerance.
    count: int = 1
    instance_type: str = "t3.medium"

    @field_validator("count")
    @classmethod
    def _count(cls, v: int) -> int:
        if v not in (1, 3, 5):
            hint = " (even counts add no etcd fault tolerance and risk split votes)" if v % 2 == 0 else ""
            raise ValueError(f"{v} servers is not allowed{hint}; use 1 (dev), 3 or 5 (HA embedded etcd)")
        return v

    _type = field_validator("instance_type")(classmethod(lambda cls, v: _instance_type(v)))


class K3sAgentsConfig(Model):
    """The agent ASG: Spot across these types (capacity-optimized) above an on-demand base."""

    instance_types: list[str] = Field(default_factory=lambda: ["t3.large", "t3a.large", "m5.large", "m5a.large", "m6i.large"])
    on_demand_base: int = Field(default=0, ge=0)
    min_size: int = Field(default=1, ge=0)
    desired_size: int = Field(default=2, ge=0)
    max_size: int = Field(default=5, ge=1)

    @field_validator("instance_types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one instance type is required (several spread Spot risk)")
        for t in v:
            _instance_type(t)
        if len(set(v)) != len(v):
            raise ValueError("instance types must be distinct")
        archs = {instance_architecture(t) for t in v}
        if len(archs) > 1:
            raise ValueError(f"mixes architectures {sorted(archs)}; one launch template (one AMI) serves one architecture")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> "K3sAgentsConfig":
        if not self.min_size <= self.desired_size <= self.max_size:
            raise _KeyedError("cluster.k3s.agents.desiredSize",
                              f"need minSize <= desiredSize <= maxSize, got {self.min_size} <= {self.desired_size} <= {self.max_size}")
        if self.on_demand_base > self.max_size:
            raise _KeyedError("cluster.k3s.agents.onDemandBase", f"{self.on_demand_base} exceeds maxSize {self.max_size}")
        return self


class K3sApiAccessConfig(Model):
    """Who reaches the API through the NLB. Internal by default; internet-facing needs an allowlist."""

    internet_facing: bool = False
    allowed_cidrs: list[str] = Field(default_factory=list)

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for c in v:
            net = ipv4_network(c)
            if net.prefixlen == 0:
                raise ValueError(f"'{c}' opens the API to everyone; list the networks deploys and admins come from")
        return v

    @model_validator(mode="after")
    def _allowlist(self) -> "K3sApiAccessConfig":
        if self.internet_facing and not self.allowed_cidrs:
            raise _KeyedError("cluster.k3s.apiAccess.allowedCidrs",
                              "internetFacing: true needs a non-empty CIDR allowlist (an open API endpoint is refused)")
        return self


class K3sSnapshotsConfig(Model):
    schedule_cron: str = "0 */6 * * *"
    retention: int = Field(default=28, ge=1, le=500)

    @field_validator("schedule_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if len(v.split()) != 5 or not re.match(r"^[0-9*/,\- ]+$", v):
            raise ValueError(f"'{v}' is not a 5-field cron expression like '0 */6 * * *'")
        return v


class K3sConfig(Model):
    """K3s-on-EC2 settings (components/k3s_*.py)."""

    version: str = "v1.35.1+k3s1"
    servers: K3sServersConfig = K3sServersConfig()
    agents: K3sAgentsConfig = K3sAgentsConfig()
    api_access: K3sApiAccessConfig = K3sApiAccessConfig()
    ssh_key_name: str | None = None
    ssh_source_security_group_id: str | None = None
    snapshots: K3sSnapshotsConfig = K3sSnapshotsConfig()
    # How long the interruption Lambda drains a node (PDB-blocked evictions retried) before it
    # gives up and lets SQS redeliver; below the Lambda's 900 s ceiling.
    drain_timeout_seconds: int = Field(default=240, ge=30, le=840)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not K3S_VERSION.match(v):
            raise ValueError(f"'{v}' is not an exact K3s release like v1.35.1+k3s1 (channels and ranges are refused)")
        return v

    @field_validator("ssh_source_security_group_id")
    @classmethod
    def _sg(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^sg-[0-9a-f]{8,17}$", v):
            raise ValueError(f"'{v}' is not a security group id like sg-0123456789abcdef0")
        return v

    @model_validator(mode="after")
    def _ssh_pair(self) -> "K3sConfig":
        if bool(self.ssh_key_name) != bool(self.ssh_source_security_group_id):
            missing = "sshSourceSecurityGroupId" if self.ssh_key_name else "sshKeyName"
            raise _KeyedError(f"cluster.k3s.{missing}",
                              "SSH needs both sshKeyName and sshSourceSecurityGroupId (or neither: use SSM Session Manager)")
        return self


class ClusterConfig(Model):
    kind: Literal["eks", "k3s"]
    name: str
    eks: EksConfig = EksConfig()
    k3s: K3sConfig = K3sConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        dns_label(v)
        # EKS cluster names allow 100 characters, but names are embedded in IAM role names (64).
        if len(v) > 32:
            raise ValueError(f"'{v}' is {len(v)} characters; at most 32 (it prefixes IAM role names)")
        return v


# ---------------------------------------------------------------------------------------- addons
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")


class LoadBalancerControllerConfig(Model):
    """AWS Load Balancer Controller (components/cluster_addons.py): Ingress -> ALB, Service -> NLB."""

    enabled: bool = True
    # One IngressGroup shared by every Ingress of the default class: one ALB, not one per Ingress
    # (ALB sprawl exhausts ENI and LB quotas).
    ingress_group: str = "shared"
    scheme: Literal["internal", "internet-facing"] = "internal"
    # None = by cluster: `ip` on EKS (pods hold VPC addresses: no NodePort hop, no 502s from draining
    # instance targets), `instance` on K3s (flannel's overlay pod IPs are unreachable from an ALB).
    target_type: Literal["ip", "instance"] | None = None

    def effective_target_type(self, kind: str) -> str:
        return self.target_type or ("ip" if kind == "eks" else "instance")

    _group = field_validator("ingress_group")(classmethod(lambda cls, v: dns_label(v)))


class EbsCsiConfig(Model):
    """EBS CSI: the managed add-on on EKS, the chart on K3s; plus the default gp3 StorageClass."""

    enabled: bool = True
    # Customer-managed key for volume encryption; None = the account's aws/ebs key (still encrypted).
    kms_key_arn: str | None = None

    @field_validator("kms_key_arn")
    @classmethod
    def _kms(cls, v: str | None) -> str | None:
        if v is not None and not KMS_KEY_ARN.match(v):
            raise ValueError(f"'{v}' is not a KMS key ARN like arn:aws:kms:us-east-1:123456789012:key/<uuid>")
        return v


def kubernetes_minor(version: str) -> str:
    """`v1.35.1+k3s1` or `1.35` -> `1.35`."""
    return ".".join(version.lstrip("v").split("+", 1)[0].split(".")[:2])


class AddonToggle(Model):
    enabled: bool = True


class CloudControllerManagerConfig(Model):
    # None = on for k3s (its nodes wait for an external cloud controller); refused on EKS.
    enabled: bool | None = None


class AddonsConfig(Model):
    """Cluster add-ons; each can be switched off (its IAM goes with it)."""

    aws_load_balancer_controller: LoadBalancerControllerConfig = LoadBalancerControllerConfig()
    ebs_csi: EbsCsiConfig = EbsCsiConfig()
    metrics_server: AddonToggle = AddonToggle()
    cloud_controller_manager: CloudControllerManagerConfig = CloudControllerManagerConfig()

    def cloud_controller_manager_enabled(self, kind: str) -> bool:
        return kind == "k3s" and self.cloud_controller_manager.enabled is not False

    def k3s_disabled_components(self) -> list[str]:
        """K3s packaged components replaced by an enabled add-on (two of each would fight)."""
        disabled: list[str] = []
        if self.aws_load_balancer_controller.enabled:
            disabled += ["servicelb", "traefik"]  # Services/Ingresses go to NLBs/ALBs instead
        if self.ebs_csi.enabled:
            disabled.append("local-storage")  # its local-path class would be a second default
        if self.metrics_server.enabled:
            disabled.append("metrics-server")  # the same APIService v1beta1.metrics.k8s.io
        return disabled


# -------------------------------------------------------------------------------------- identity
# Workload identity (components/workload_identity.py, oidc_issuer.py); cross-field rules live in
# components/identity_rules.py.
WorkloadMethod = Literal["pod-identity", "irsa", "roles-anywhere", "instance-profile"]
IAM_POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\w+=,.@/-]{1,512}$")
IAM_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9*]+$")
ACM_CLOUDFRONT_CERT = re.compile(r"^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[0-9a-f-]{36}$")


class IssuerConfig(Model):
    """One published OIDC issuer of a K3s cluster: `s3-public` bucket or `cloudfront` + custom domain."""

    name: str = "primary"
    hosting: Literal["s3-public", "cloudfront"] = "s3-public"
    bucket_name: str | None = None  # default <cluster>-oidc[-<name>]-<accountId>
    domain_name: str | None = None  # cloudfront: the issuer host (stable when the distribution is replaced)
    certificate_arn: str | None = None  # cloudfront: ACM certificate for domainName, in us-east-1
    hosted_zone_id: str | None = None  # cloudfront: Route 53 zone for the alias record (else create it yourself)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        dns_label(v)
        if len(v) > 12:
            raise ValueError(f"'{v}' is {len(v)} characters; at most 12 (it is part of the bucket name)")
        return v

    @field_validator("bucket_name")
    @classmethod
    def _bucket(cls, v: str | None) -> str | None:
        from components.oidc_hosting import BUCKET_NAME

        if v is not None and not BUCKET_NAME.match(v):
            raise ValueError(f"'{v}' is not an S3 bucket name usable over HTTPS: 3-63 lowercase letters, digits, '-' (no dots)")
        return v

    @field_validator("domain_name")
    @classmethod
    def _domain(cls, v: str | None) -> str | None:
        from components.oidc_hosting import HOSTNAME

        if v is not None and not HOSTNAME.match(v):
            raise ValueError(f"'{v}' is not a lowercase DNS name like oidc.dev.example.com")
        return v

    @field_validator("certificate_arn")
    @classmethod
    def _certificate(cls, v: str | None) -> str | None:
        if v is not None and not ACM_CLOUDFRONT_CERT.match(v):
            raise ValueError(f"'{v}' is not an ACM certificate ARN in us-east-1 (CloudFront only uses certificates from us-east-1)")
        return v

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^Z[A-Z0-9]{1,32}$", v):
            raise ValueError(f"'{v}' is not a Route 53 hosted zone id like Z0123456789ABCDEFGHIJ")
        return v

    @model_validator(mode="after")
    def _hosting_fields(self) -> "IssuerConfig":
        if self.hosting == "cloudfront" and not (self.domain_name and self.certificate_arn):
            raise ValueError("cloudfront hosting needs domainName and certificateArn: the issuer URL must be a "
                             "custom domain, a dXXXX.cloudfront.net name changes when the distribution is replaced")
        if self.hosting == "s3-public" and (self.domain_name or self.certificate_arn or self.hosted_zone_id):
            raise ValueError("domainName/certificateArn/hostedZoneId apply to cloudfront hosting only")
        return self

    def bucket(self, cluster_name: str, account_id: str) -> str:
        from components.oidc_hosting import default_bucket_name

        return self.bucket_name or default_bucket_name(cluster_name, account_id, self.name)

    def url(self, cluster_name: str, account_id: str, region: str) -> str:
        """The issuer URL this config derives (never from servers or distribution ids)."""
        from components.oidc_hosting import cloudfront_issuer_url, s3_issuer_url

        if self.hosting == "cloudfront":
            return cloudfront_issuer_url(str(self.domain_name))
        return s3_issuer_url(self.bucket(cluster_name, account_id), region)


class IdentityConfig(Model):
    """K3s service-account issuers. The first issuer is active (signs tokens); the others are standby."""

    issuers: list[IssuerConfig] = Field(default_factory=list)
    issuer_url: str | None = None  # the pinned URL of the active issuer
    allow_issuer_change: bool = False


class WorkloadStatement(Model):
    sid: str | None = None
    effect: Literal["Allow", "Deny"] = "Allow"
    actions: list[str]
    resources: list[str]
    conditions: dict[str, dict[str, str | list[str]]] | None = None

    @field_validator("actions")
    @classmethod
    def _actions(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one action like s3:GetObject")
        for action in v:
            if action == "*" or not IAM_ACTION.match(action):
                raise ValueError(f"'{action}' is not a service action like s3:GetObject ('*' is refused)")
        return v

    @model_validator(mode="after")
    def _scoped(self) -> "WorkloadStatement":
        if not self.resources:
            raise ValueError("resources: at least one ARN")
        if self.effect == "Allow" and "*" in self.resources and any(a.endswith(":*") for a in self.actions):
            raise ValueError("a whole service ('svc:*') on every resource ('*') is not least privilege; name actions or resources")
        return self


class WorkloadPolicies(Model):
    managed_arns: list[str] = Field(default_factory=list)
    statements: list[WorkloadStatement] = Field(default_factory=list)

    @field_validator("managed_arns")
    @classmethod
    def _managed(cls, v: list[str]) -> list[str]:
        for arn in v:
            if not IAM_POLICY_ARN.match(arn):
                raise ValueError(f"'{arn}' is not an IAM policy ARN like arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
            if arn.rsplit("/", 1)[1] in ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess"):
                raise ValueError(f"'{arn}' is refused for a workload role (least privilege)")
        return v


class WorkloadConfig(Model):
    """One workload's AWS identity: its own role, its ServiceAccount and the binding `method`."""

    name: str
    namespace: str
    service_account: str
    method: WorkloadMethod
    policies: WorkloadPolicies = WorkloadPolicies()
    cross_account_role_arns: list[str] = Field(default_factory=list)
    issuers: list[str] | None = None  # irsa on k3s: identity.issuers names the role trusts (default: all)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        dns_label(v)
        if len(v) > 24:
            raise ValueError(f"'{v}' is {len(v)} characters; at most 24 (it is part of the IAM role name)")
        return v

    _k8s_names = field_validator("namespace", "service_account")(classmethod(lambda cls, v: dns_label(v)))

    @field_validator("cross_account_role_arns")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        for arn in v:
            iam_role_arn(arn)
        if len(set(v)) != len(v):
            raise ValueError("role ARNs must be distinct")
        return v


# ------------------------------------------------------------------------------------- karpenter
# Karpenter (components/karpenter*.py); cross-field rules (kind, prod pinning, pod capacity) live
# in components/karpenter_rules.py.
K8S_QUANTITY = re.compile(r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
KARPENTER_DURATION = re.compile(r"^(([0-9]+(s|m|h))+|Never)$")
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def _duration(v: str) -> str:
    if not KARPENTER_DURATION.match(v):
        raise ValueError(f"'{v}' is not a duration like 30s, 10m, 720h or 1h30m (or Never)")
    return v


class KarpenterNodeClassConfig(Model):
    """One EC2NodeClass: the AMI, root volume and kubelet density of the nodes Karpenter launches."""

    name: str = "default"
    # EKS: an AL2023 alias, pinned (`al2023@v20260903`) in prod; `al2023@latest` only outside prod.
    ami_alias: str | None = None
    # K3s: SSM parameters naming the AMI, one per architecture the pools allow.
    ami_ssm_parameters: dict[Literal["amd64", "arm64"], str] | None = None
    volume_size_gib: int = Field(default=50, ge=20, le=16384, alias="volumeSizeGiB")
    # kubelet maxPods; every instance type a pool using this class allows must hold it (see karpenter_rules).
    max_pods: int = Field(default=110, ge=10, le=250)

    _name = field_validator("name")(classmethod(lambda cls, v: dns_label(v)))

    @field_validator("ami_alias")
    @classmethod
    def _alias(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^al2023@(latest|v\d{8})$", v):
            raise ValueError(f"'{v}' is not an AL2023 alias like al2023@v20260903 (or al2023@latest outside prod)")
        return v

    @field_validator("ami_ssm_parameters")
    @classmethod
    def _parameters(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for arch, name in (v or {}).items():
            if not re.match(r"^/[A-Za-z0-9_.\-/]+$", name):
                raise ValueError(f"{arch}: '{name}' is not an SSM parameter name like /aws/service/ami-amazon-linux-latest/...")
        if v is not None and not v:
            raise ValueError("at least one architecture's AMI parameter")
        return v


class KarpenterLimits(Model):
    """The pool's circuit breaker: Karpenter launches nothing once the pool's nodes reach these totals."""

    cpu: str | int
    memory: str

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, v: str | int) -> str | int:
        if not K8S_QUANTITY.match(str(v)):
            raise ValueError(f"'{v}' is not a Kubernetes quantity like 1000 or 4000Gi")
        return v


class KarpenterBudget(Model):
    nodes: str = "10%"
    reasons: list[Literal["Underutilized", "Empty", "Drifted"]] | None = None
    schedule: str | None = None
    duration: str | None = None

    @field_validator("nodes")
    @classmethod
    def _nodes(cls, v: str) -> str:
        if not re.match(r"^((100|[0-9]{1,2})%|[0-9]+)$", v):
            raise ValueError(f"'{v}' is not a node count or percentage like 1 or 10%")
        return v

    @field_validator("duration")
    @classmethod
    def _budget_duration(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$", v):
            raise ValueError(f"'{v}' is not a window length like 8h or 1h30m")
        return v

    @model_validator(mode="after")
    def _window(self) -> "KarpenterBudget":
        if (self.schedule is None) != (self.duration is None):
            raise ValueError("schedule and duration go together (a cron schedule opens a window of that length)")
        return self


class KarpenterTaint(Model):
    key: str
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not LABEL_KEY.match(v):
            raise ValueError(f"'{v}' is not a taint key like workload-class or example.com/dedicated")
        return v


class KarpenterNodePoolConfig(Model):
    """One NodePool. Defaults are wide on purpose: more instance types mean better Spot availability and prices."""

    name: str
    node_class: str = "default"
    capacity_types: list[Literal["spot", "on-demand"]] = Field(default_factory=lambda: ["spot", "on-demand"])
    architectures: list[Literal["amd64", "arm64"]] = Field(default_factory=lambda: ["amd64", "arm64"])
    instance_categories: list[str] = Field(default_factory=lambda: ["c", "m", "r"])
    instance_generation_greater_than: int = Field(default=5, ge=0)
    # None: every size except nano/micro/small/medium (components/karpenter_capacity.SMALL_SIZES).
    instance_sizes: list[str] | None = None
    limits: KarpenterLimits
    consolidate_after: str = "1m"
    expire_after: str = "720h"
    budgets: list[KarpenterBudget] = Field(default_factory=lambda: [KarpenterBudget()])
    weight: int | None = Field(default=None, ge=1, le=100)
    taints: list[KarpenterTaint] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)

    _names = field_validator("name", "node_class")(classmethod(lambda cls, v: dns_label(v)))
    _durations = field_validator("consolidate_after", "expire_after")(classmethod(lambda cls, v: _duration(v)))

    @field_validator("capacity_types", "architectures", "instance_categories")
    @classmethod
    def _non_empty_distinct(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one value (an empty list would match no instance type)")
        if len(set(v)) != len(v):
            raise ValueError("values must be distinct")
        return v

    @field_validator("instance_categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        for c in v:
            if not re.match(r"^[a-z]+$", c):
                raise ValueError(f"'{c}' is not an instance category like c, m or r")
        return v

    @field_validator("instance_sizes")
    @classmethod
    def _sizes(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("at least one size, or remove the key for every size from large up")
        for size in v:
            if not re.match(r"^(nano|micro|small|medium|large|\d*xlarge|metal(-\d+xl)?)$", size):
                raise ValueError(f"'{size}' is not an instance size like large, 2xlarge or metal")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not LABEL_KEY.match(key) or not LABEL_VALUE.match(value):
                raise ValueError(f"'{key}: {value}' is not a valid Kubernetes label")
            domain = key.split("/", 1)[0] if "/" in key else ""
            if domain.endswith(("karpenter.sh", "karpenter.k8s.aws", "kubernetes.io", "k8s.io")):
                raise ValueError(f"'{key}': the {domain} label domain is reserved (Karpenter and the kubelet set it)")
        return v


def _default_node_pools() -> list[KarpenterNodePoolConfig]:
    return [KarpenterNodePoolConfig(name="general", limits=KarpenterLimits(cpu="100", memory="400Gi"))]


class KarpenterConfig(Model):
    enabled: bool = True
    # None: 2 in prod (with the chart's PodDisruptionBudget), 1 elsewhere.
    replicas: int | None = Field(default=None, ge=1, le=5)
    node_classes: list[KarpenterNodeClassConfig] = Field(default_factory=lambda: [KarpenterNodeClassConfig()])
    node_pools: list[KarpenterNodePoolConfig] = Field(default_factory=_default_node_pools)

    def replica_count(self, is_prod: bool) -> int:
        return self.replicas if self.replicas is not None else (2 if is_prod else 1)


# ----------------------------------------------------------------------------------------- stack
class StackConfig(Model):
    environment: Literal["dev", "staging", "prod"]
    region: str
    account_id: str
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkConfig
    cluster: ClusterConfig
    addons: AddonsConfig = AddonsConfig()
    identity: IdentityConfig = IdentityConfig()
    workloads: list[WorkloadConfig] = Field(default_factory=list)
    karpenter: KarpenterConfig = KarpenterConfig()

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", v):
            raise ValueError(f"'{v}' is not an AWS region like us-east-1")
        return v

    @field_validator("account_id")
    @classmethod
    def _account(cls, v: str) -> str:
        if not re.match(r"^\d{12}$", v):
            raise ValueError(f"'{v}' must be a 12-digit AWS account id")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        missing = [k for k in REQUIRED_TAGS if not v.get(k)]
        if missing:
            raise ValueError(f"required tags missing: {', '.join(missing)} (ownership and cost attribution)")
        return v

    @model_validator(mode="after")
    def _cross_field(self) -> "StackConfig":
        azs = self.network.availability_zones
        if self.environment == "prod" and len(azs) < 3:
            raise _KeyedError("network.availabilityZones", f"prod needs at least 3 zones, {len(azs)} given")
        wrong = [az for az in azs if not az.startswith(self.region)]
        if wrong:
            raise _KeyedError("network.availabilityZones", f"{', '.join(wrong)} not in region {self.region}")
        if self.environment == "prod" and self.network.nat_gateways == "single":
            raise _KeyedError("network.natGateways", "prod needs 'one-per-az' (a single NAT is a zonal SPOF)")
        if self.cluster.kind == "k3s":
            vpc = ipaddress.ip_network(self.network.vpc_cidr)
            for k3s_range in K3S_INTERNAL_RANGES:
                if vpc.overlaps(ipaddress.ip_network(k3s_range)):
                    raise _KeyedError("network.vpcCidr", f"{vpc} overlaps K3s's pod/service range {k3s_range}; "
                                      "pick a VPC block outside 10.42.0.0/16 and 10.43.0.0/16")
        eks = self.cluster.eks
        if self.cluster.kind == "eks":
            if self.environment == "prod" and any(
                ipaddress.ip_network(c).prefixlen == 0 for c in eks.endpoint.public_access_cidrs
            ):
                raise _KeyedError("cluster.eks.endpoint.publicAccessCidrs",
                                  "0.0.0.0/0 opens the prod API server to the internet; list specific CIDRs "
                                  "or keep publicAccess: false (private endpoint only)")
            if not eks.access.admin_role_arns:
                raise _KeyedError("cluster.eks.access.adminRoleArns",
                                  "at least one admin role is required: the cluster creator gets no implicit access, "
                                  "and the deployment itself (ENIConfigs) runs as one of these roles")
        return self

    @model_validator(mode="after")
    def _addons_fit_cluster(self) -> "StackConfig":
        if self.cluster.kind == "eks" and self.addons.cloud_controller_manager.enabled:
            raise _KeyedError("addons.cloudControllerManager.enabled",
                              "only k3s runs the AWS cloud controller as an add-on; EKS runs it inside its "
                              "managed control plane (set false or remove the key)")
        if self.cluster.kind == "k3s" and self.addons.aws_load_balancer_controller.target_type == "ip":
            raise _KeyedError("addons.awsLoadBalancerController.targetType",
                              "'ip' needs pods on VPC addresses; K3s pods live on flannel's overlay, which a load "
                              "balancer cannot reach: use 'instance' (or remove the key)")
        if self.addons.cloud_controller_manager_enabled(self.cluster.kind):
            from components.chart_versions import CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS

            minor = kubernetes_minor(self.cluster.k3s.version)
            if minor not in CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS:
                raise _KeyedError("cluster.k3s.version",
                                  f"no AWS cloud controller image pinned for Kubernetes {minor}; pinned: "
                                  f"{', '.join(sorted(CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS))} (components/chart_versions.py)")
        return self

    @model_validator(mode="after")
    def _karpenter_fits_cluster(self) -> "StackConfig":
        from components.karpenter_rules import karpenter_problems

        for key, message in karpenter_problems(self):
            raise _KeyedError(key, message)
        return self

    @model_validator(mode="after")
    def _identity_fits_cluster(self) -> "StackConfig":
        from components.identity_rules import identity_problems

        for key, message in identity_problems(self):
            raise _KeyedError(key, message)
        return self

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def cluster_name(self) -> str:
        return self.cluster.name

    def resource_tags(self, **extra: str) -> dict[str, str]:
        """The tags every taggable resource carries: config tags plus provenance."""
        return {**self.tags, "environment": self.environment, "managed-by": "pulumi", "k8s-platform/cluster": self.cluster.name, **extra}


REQUIRED_TAGS = ("owner", "cost-center")


class _KeyedError(ValueError):
    """A cross-field error that knows which key it belongs to."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)


# Top-level keys read from the stack file: `k8s-platform:<key>` unless namespaced explicitly.
TOP_LEVEL_KEYS = {"environment", "accountId", "tags", "network", "cluster", "addons", "identity", "workloads",
                  "karpenter"}
EXTERNAL_KEYS = {"aws:region": "region"}


def _key_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    if not parts:
        return f"{NAMESPACE}:(root)"
    head, rest = parts[0], parts[1:]
    if head == "region":
        head_key = "aws:region"
    else:
        head_key = f"{NAMESPACE}:{head}"
    path = head_key
    for p in rest:
        path += f"[{p}]" if p.isdigit() else f".{p}"
    return path


def _message(err: dict[str, Any]) -> str:
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err["type"] == "literal_error":
        msg = f"got {err.get('input')!r}; {msg[0].lower()}{msg[1:]}"
    elif err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "extra_forbidden":
        msg = "is not a known key (check the spelling; keys are camelCase)"
    return msg


def parse_stack_config(raw: dict[str, Any]) -> StackConfig:
    """Validate fully-qualified config (`{"k8s-platform:network": {...}, "aws:region": ...}`).

    Raises ConfigError with one line per problem, each `key.path: message`.
    """
    data: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        if key in EXTERNAL_KEYS:
            data[EXTERNAL_KEYS[key]] = value
        elif key.startswith(f"{NAMESPACE}:"):
            short = key.split(":", 1)[1]
            if short not in TOP_LEVEL_KEYS:
                allowed = ", ".join(f"{NAMESPACE}:{k}" for k in sorted(TOP_LEVEL_KEYS))
                problems.append(f"{key}: is not a known key; allowed: {allowed}")
                continue
            data[short] = value
    try:
        cfg = StackConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = err["loc"]
            ctx_err = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_err, _KeyedError):
                loc = tuple(ctx_err.key.split("."))
                problems.append(f"{_key_path(loc)}: {ctx_err}")
                continue
            problems.append(f"{_key_path(loc)}: {_message(err)}")
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return cfg


def decode_config_values(values: dict[str, Any]) -> dict[str, Any]:
    """Pulumi hands structured config values to programs as JSON text; decode them."""
    import json

    decoded: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        decoded[key] = value
    return decoded


def read_pulumi_config() -> dict[str, Any]:
    """The raw, fully-qualified config of the running Pulumi program (real engine or mocks)."""
    from pulumi.runtime import config as runtime_config

    values = {**runtime_config.get_config_env(), **(runtime_config.CONFIG.get() or {})}
    return decode_config_values(values)
