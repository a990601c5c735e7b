"""`k8s-platform:cluster.k3s`: the K3s-on-EC2 control plane (components/k3s_*.py)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from components.config.base import (
    Model,
    _KeyedError,
    check_instance_type,
    instance_architecture,
    ipv4_network,
    raise_problems,
)
from components.config.checks import allowlist_problem, cron_problem, shown
from components.config.k3s_datastore import K3sDatastoreConfig
from components.core.pins import K3S_VERSION as PINNED_K3S_VERSION

K3S_VERSION = re.compile(r"v1\.[0-9]+\.[0-9]+\+k3s[0-9]+", re.ASCII)  # used with fullmatch


def exact_k3s_release(v: str) -> str:
    if not K3S_VERSION.fullmatch(v):
        raise ValueError(
            f"'{shown(v)}' is not an exact K3s release like v1.35.1+k3s1 (channels and ranges are refused)"
        )
    return v


# K3s's default cluster (flannel pod) and service CIDRs: the VPC must not overlap them.
K3S_INTERNAL_RANGES = ("10.42.0.0/16", "10.43.0.0/16")


class K3sServersConfig(Model):
    # Embedded etcd needs a quorum: 1 (dev, no HA), 3 or 5 servers; an external datastore takes any
    # count (components/config/k3s_datastore.datastore_problems, which knows the datastore and environment).
    count: int = Field(
        1,
        ge=1,
        description=(
            "K3s servers: with embedded etcd `1` (no HA), `3` or `5` (even counts are refused: no fault-tolerance "
            "gain; 3 or 5 need at least 3 zones, one server per zone, so that a zone outage leaves a quorum); with "
            "an external datastore 1-7, at least 2 in prod."
        ),
    )
    instance_type: str = Field("t3.medium", description="Instance type of the servers (on-demand only).")

    _type = field_validator("instance_type")(classmethod(lambda cls, v: check_instance_type(v)))


class K3sAgentsConfig(Model):
    """The agent ASG: Spot across these types (capacity-optimized) above an on-demand base."""

    instance_types: list[str] = Field(
        default_factory=lambda: ["t3.large", "t3a.large", "m5.large", "m5a.large", "m6i.large"],
        description="Distinct agent instance types, one architecture (one launch template); several spread Spot risk.",
    )
    on_demand_base: int = Field(
        default=0,
        ge=0,
        description=("On-demand agents before Spot (capacity-optimized) fills the rest; at most `maxSize`."),
    )
    version: str | None = Field(
        None,
        description=(
            "K3s release of the agents (the ASG and Karpenter nodes) while the servers are upgraded first: an exact "
            "`vX.Y.Z+k3sN`, not newer than `cluster.k3s.version`. Default: `cluster.k3s.version`."
        ),
    )
    min_size: int = Field(default=1, ge=0, description="Fewest agents of the ASG.")
    desired_size: int = Field(default=2, ge=0, description="Agents to run; `minSize <= desiredSize <= maxSize`.")
    max_size: int = Field(default=5, ge=1, description="Most agents of the ASG.")

    @field_validator("version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        return v if v is None else exact_k3s_release(v)

    @field_validator("instance_types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one instance type is required (several spread Spot risk)")
        for t in v:
            check_instance_type(t)
        if len(set(v)) != len(v):
            raise ValueError("instance types must be distinct")
        archs = {instance_architecture(t) for t in v}
        if len(archs) > 1:
            raise ValueError(
                f"mixes architectures {sorted(archs)}; one launch template (one AMI) serves one architecture"
            )
        return v

    @model_validator(mode="after")
    def _sizes(self) -> "K3sAgentsConfig":
        problems = []
        if not self.min_size <= self.desired_size <= self.max_size:
            problems.append(
                (
                    "cluster.k3s.agents.desiredSize",
                    f"need minSize <= desiredSize <= maxSize, got {self.min_size} <= {self.desired_size} <= "
                    f"{self.max_size}",
                )
            )
        if self.on_demand_base > self.max_size:
            problems.append(
                ("cluster.k3s.agents.onDemandBase", f"{self.on_demand_base} exceeds maxSize {self.max_size}")
            )
        raise_problems("K3sAgentsConfig", problems)
        return self


class K3sApiAccessConfig(Model):
    """Who reaches the API through the NLB. Internal by default; internet-facing needs an allowlist."""

    internet_facing: bool = Field(
        False,
        description=("Put the API's Network Load Balancer on the internet (needs `allowedCidrs`); internal otherwise."),
    )
    allowed_cidrs: list[str] = Field(
        default_factory=list,
        description=(
            "IPv4 CIDRs allowed to reach the API through the NLB besides the VPC itself; `0.0.0.0/0` is refused."
        ),
    )

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        nets = []
        for c in v:
            net = ipv4_network(c)
            if net.prefixlen == 0:
                raise ValueError(f"'{c}' opens the API to everyone; list the networks deploys and admins come from")
            nets.append(net)
        if len(set(nets)) != len(nets):
            raise ValueError("CIDRs must be distinct")
        # Judged as a set: [0.0.0.0/1, 128.0.0.0/1] is the whole internet too.
        problem = allowlist_problem(nets)
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _allowlist(self) -> "K3sApiAccessConfig":
        if self.internet_facing and not self.allowed_cidrs:
            raise _KeyedError(
                "cluster.k3s.apiAccess.allowedCidrs",
                "internetFacing: true needs a non-empty CIDR allowlist (an open API endpoint is refused)",
            )
        if not self.internet_facing and self.allowed_cidrs:
            raise _KeyedError(
                "cluster.k3s.apiAccess.allowedCidrs",
                "an allowlist on the internal API load balancer restricts nothing it says (the VPC "
                "reaches it): set internetFacing: true or remove allowedCidrs",
            )
        return self


class K3sSnapshotsConfig(Model):
    schedule_cron: str = Field("0 */6 * * *", description="5-field cron schedule of etcd snapshots to S3.")
    retention: int = Field(
        default=28,
        ge=1,
        le=500,
        description="Snapshots K3s keeps (its `etcd-snapshot-retention`); in `ci` at most 5, 2 when unset.",
    )

    @field_validator("schedule_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        problem = cron_problem(v)
        if problem:
            raise ValueError(problem)
        return v


# Registries whose images the embedded mirror shares by default: where cluster add-ons and most
# workloads pull from (an image of a registry not listed is never shared between nodes).
DEFAULT_MIRRORED_REGISTRIES = ("docker.io", "registry.k8s.io", "ghcr.io", "quay.io", "public.ecr.aws")
# A registry host (a DNS name with a dot, localhost or an IPv4 address) with an optional port, or K3s's
# `*` (every registry).
REGISTRY_HOST = re.compile(
    r"\*|(localhost|([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}|([0-9]{1,3}\.){3}[0-9]{1,3})(:[0-9]{1,5})?",
    re.ASCII,
)


class K3sEmbeddedRegistryConfig(Model):
    """K3s's embedded registry mirror (Spegel): nodes pull images other nodes already hold."""

    enabled: bool = Field(
        False,
        description=(
            "Run K3s's embedded registry mirror (Spegel, `embedded-registry`): nodes share pulled images peer to "
            "peer on 5001/tcp and 6443/tcp, opened only between the cluster's nodes."
        ),
    )
    mirrors: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MIRRORED_REGISTRIES),
        description=(
            "Registries whose images nodes share (the `mirrors` of every node's `registries.yaml`): distinct hosts "
            "like `docker.io` or `registry.example.com:5000`, or `*` for every registry."
        ),
    )

    @field_validator("mirrors")
    @classmethod
    def _mirrors(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one registry (an empty list mirrors nothing: set enabled: false instead)")
        bad = [m for m in v if not REGISTRY_HOST.fullmatch(m)]
        if bad:
            raise ValueError(
                f"{', '.join(repr(shown(m)) for m in bad)}: not a registry host like docker.io or "
                "registry.example.com:5000 (lowercase, no scheme or path), or `*`"
            )
        if len(set(v)) != len(v):
            raise ValueError("registries must be distinct")
        if "*" in v and len(v) > 1:
            raise ValueError("`*` already mirrors every registry: list it alone")
        return v


class K3sConfig(Model):
    """K3s-on-EC2 settings (components/k3s_*.py)."""

    # components/core/pins.K3S_VERSION (why that patch: there).
    version: str = Field(
        PINNED_K3S_VERSION,
        description=("K3s release on every node: an exact `vX.Y.Z+k3sN` (channels and ranges are refused)."),
    )
    servers: K3sServersConfig = Field(K3sServersConfig(), description="The K3s servers (control plane and etcd).")
    agents: K3sAgentsConfig = Field(
        K3sAgentsConfig(),
        description=("The agent Auto Scaling group: Spot across `instanceTypes` above an on-demand base."),
    )
    api_access: K3sApiAccessConfig = Field(
        K3sApiAccessConfig(), description=("Who reaches the Kubernetes API through its Network Load Balancer.")
    )
    ssh_key_name: str | None = Field(
        None,
        description=(
            "EC2 key pair for SSH to the nodes; set together with `sshSourceSecurityGroupId` or not at all "
            "(SSM Session Manager otherwise)."
        ),
    )
    ssh_source_security_group_id: str | None = Field(
        None,
        description=("The only security group (`sg-...`) allowed to reach port 22; set together with `sshKeyName`."),
    )
    snapshots: K3sSnapshotsConfig = Field(
        K3sSnapshotsConfig(), description="etcd snapshots to S3 (`embedded-etcd` datastore only)."
    )
    deployed_version: str | None = Field(
        None,
        description=(
            "The K3s release the servers run now (the stack output `k3sVersion` of the last update): with it a "
            "minor downgrade, a skipped minor and agents upgraded with the servers in one run are refused."
        ),
    )
    embedded_registry: K3sEmbeddedRegistryConfig = Field(
        K3sEmbeddedRegistryConfig(), description="K3s's embedded registry mirror (Spegel); off by default."
    )
    datastore: K3sDatastoreConfig = Field(
        K3sDatastoreConfig(), description="Where K3s keeps cluster state: embedded etcd, RDS PostgreSQL or Aurora."
    )
    # How long the interruption Lambda drains a node (PDB-blocked evictions retried) before it
    # gives up and lets SQS redeliver; below the Lambda's 900 s ceiling.
    drain_timeout_seconds: int = Field(
        default=240,
        ge=30,
        le=840,
        description=(
            "Seconds the interruption Lambda drains a node (retrying PDB-blocked evictions) before SQS redelivers."
        ),
    )

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        return exact_k3s_release(v)

    @field_validator("deployed_version")
    @classmethod
    def _deployed_version(cls, v: str | None) -> str | None:
        return v if v is None else exact_k3s_release(v)

    @field_validator("ssh_key_name")
    @classmethod
    def _key_name(cls, v: str | None) -> str | None:
        # EC2 key pair names: up to 255 printable ASCII characters.
        if v is not None and not re.fullmatch(r"[\x20-\x7e]{1,255}", v) or v is not None and v != v.strip():
            raise ValueError(f"'{shown(v)}' is not an EC2 key pair name: 1-255 printable ASCII characters")
        return v

    @field_validator("ssh_source_security_group_id")
    @classmethod
    def _sg(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"sg-([0-9a-f]{8}|[0-9a-f]{17})", v):
            raise ValueError(f"'{shown(v)}' is not a security group id like sg-0123456789abcdef0")
        return v

    @model_validator(mode="after")
    def _snapshots_need_etcd(self) -> "K3sConfig":
        if self.datastore.external and "snapshots" in self.model_fields_set:
            raise _KeyedError(
                "cluster.k3s.snapshots",
                f"etcd snapshots apply to the embedded-etcd datastore; {self.datastore.kind} is backed up by RDS "
                "(retention: safeguards.datastoreBackupRetentionDays): remove the block",
            )
        return self

    @model_validator(mode="after")
    def _ssh_pair(self) -> "K3sConfig":
        if bool(self.ssh_key_name) != bool(self.ssh_source_security_group_id):
            missing = "sshSourceSecurityGroupId" if self.ssh_key_name else "sshKeyName"
            raise _KeyedError(
                f"cluster.k3s.{missing}",
                "SSH needs both sshKeyName and sshSourceSecurityGroupId (or neither: use SSM Session Manager)",
            )
        return self
