"""Typed, pure builders for Karpenter v1 objects: `NodePool` (karpenter.sh/v1) and `EC2NodeClass`
(karpenter.k8s.aws/v1).

Each spec is a frozen dataclass; `manifest()` returns the whole object as a plain dict (apiVersion,
kind, metadata, spec) exactly as the API server receives it, so the same dict is validated against
the published CRD schemas in the tests and handed to `pulumi_kubernetes.apiextensions.CustomResource`.
Fields left at None are omitted (the CRD defaults apply), never sent as null.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from components.config.data_plane_rules import trunk_eni_instance_types
from components.config.karpenter_rules import (
    effective_ami_alias,
    effective_ami_parameters,
    pool_shape,
    uses_custom_networking,
)
from components.core.instance_types import AL2023_ROOT_DEVICE
from components.core.pool_capacity import SMALL_SIZES, node_class_max_pods

if TYPE_CHECKING:
    from components.config import KarpenterConfig, KarpenterNodeClassConfig, KarpenterNodePoolConfig

NODEPOOL_API_VERSION = "karpenter.sh/v1"
NODECLASS_API_VERSION = "karpenter.k8s.aws/v1"
NODECLASS_GROUP = "karpenter.k8s.aws"
NODECLASS_KIND = "EC2NodeClass"
DISCOVERY_TAG = "karpenter.sh/discovery"
# Karpenter launches nodes with this taint and removes it once the node has registered and
# received the NodeClaim's labels and taints; a node that registers without it can run pods
# before Karpenter has finished configuring it.
UNREGISTERED_TAINT = "karpenter.sh/unregistered:NoExecute"

# Well-known requirement keys.
ARCH = "kubernetes.io/arch"
OS = "kubernetes.io/os"
CAPACITY_TYPE = "karpenter.sh/capacity-type"
# The provider's well-known instance labels: `karpenter.k8s.aws/instance-*` (EKS Auto Mode has the same
# set under `eks.amazonaws.com`, components/karpenter/auto_mode_specs.py).
KARPENTER_LABELS = "karpenter.k8s.aws"
INSTANCE_CATEGORY = f"{KARPENTER_LABELS}/instance-category"
INSTANCE_GENERATION = f"{KARPENTER_LABELS}/instance-generation"
INSTANCE_SIZE = f"{KARPENTER_LABELS}/instance-size"
INSTANCE_FAMILY = f"{KARPENTER_LABELS}/instance-family"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"

Operator = Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Gte", "Lte"]
Effect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


def _prune(value: Any) -> Any:
    """Drop None values (and empty optional lists/dicts) so the CRD's defaults apply."""
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


# ------------------------------------------------------------------------------------- NodePool
@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "operator": self.operator}
        if self.operator not in ("Exists", "DoesNotExist"):
            out["values"] = list(self.values)
        return out


@dataclass(frozen=True)
class Taint:
    key: str
    effect: Effect
    value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _prune({"key": self.key, "value": self.value, "effect": self.effect})


@dataclass(frozen=True)
class Budget:
    """How many nodes disruption may take at once, optionally only for some reasons or in a window."""

    nodes: str
    reasons: tuple[Literal["Underutilized", "Empty", "Drifted"], ...] = ()
    schedule: str | None = None
    duration: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _prune(
            {
                "nodes": self.nodes,
                "reasons": list(self.reasons) or None,
                "schedule": self.schedule,
                "duration": self.duration,
            }
        )


@dataclass(frozen=True)
class NodePoolSpec:
    name: str
    node_class: str
    requirements: tuple[Requirement, ...]
    limits: dict[str, str]
    consolidate_after: str
    expire_after: str
    budgets: tuple[Budget, ...]
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = "WhenEmptyOrUnderutilized"
    weight: int | None = None
    taints: tuple[Taint, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    termination_grace_period: str | None = None
    # Self-managed Karpenter's EC2NodeClass; EKS Auto Mode pools name its NodeClass (auto_mode_specs).
    node_class_group: str = NODECLASS_GROUP
    node_class_kind: str = NODECLASS_KIND

    def manifest(self) -> dict[str, Any]:
        template_spec = {
            "nodeClassRef": {"group": self.node_class_group, "kind": self.node_class_kind, "name": self.node_class},
            "requirements": [r.to_dict() for r in self.requirements],
            "taints": [t.to_dict() for t in self.taints] or None,
            "expireAfter": self.expire_after,
            "terminationGracePeriod": self.termination_grace_period,
        }
        return _prune(
            {
                "apiVersion": NODEPOOL_API_VERSION,
                "kind": "NodePool",
                "metadata": {"name": self.name},
                "spec": {
                    "template": {
                        "metadata": {"labels": dict(self.labels)} if self.labels else None,
                        "spec": template_spec,
                    },
                    "disruption": {
                        "consolidationPolicy": self.consolidation_policy,
                        "consolidateAfter": self.consolidate_after,
                        "budgets": [b.to_dict() for b in self.budgets],
                    },
                    "limits": dict(self.limits),
                    "weight": self.weight,
                },
            }
        )


def pool_requirements(
    *,
    architectures: tuple[str, ...],
    capacity_types: tuple[str, ...],
    categories: tuple[str, ...],
    generation_greater_than: int,
    sizes: tuple[str, ...] | None,
    excluded_sizes: tuple[str, ...],
    families: tuple[str, ...] | None = None,
    label_prefix: str = KARPENTER_LABELS,
    linux_only: bool = True,
) -> tuple[Requirement, ...]:
    """The scheduling requirements of a wide pool: Linux, the given archs, capacity types, families and sizes.
    `label_prefix` names the provider's instance labels; `linux_only=False` leaves out `kubernetes.io/os`
    (EKS Auto Mode refuses a requirement on it)."""
    size_label = f"{label_prefix}/instance-size"
    size_requirement = (
        Requirement(size_label, "In", tuple(sizes)) if sizes else Requirement(size_label, "NotIn", excluded_sizes)
    )
    return (
        *((Requirement(OS, "In", ("linux",)),) if linux_only else ()),
        Requirement(ARCH, "In", tuple(architectures)),
        Requirement(CAPACITY_TYPE, "In", tuple(capacity_types)),
        Requirement(f"{label_prefix}/instance-category", "In", tuple(categories)),
        Requirement(f"{label_prefix}/instance-generation", "Gt", (str(generation_greater_than),)),
        *((Requirement(f"{label_prefix}/instance-family", "In", tuple(families)),) if families else ()),
        size_requirement,
    )


# ---------------------------------------------------------------------------------- EC2NodeClass
@dataclass(frozen=True)
class RootVolume:
    size_gib: int
    device_name: str = AL2023_ROOT_DEVICE
    volume_type: Literal["gp3"] = "gp3"
    kms_key_id: str | None = None  # None: the account's default EBS key (still encrypted)

    def to_dict(self) -> dict[str, Any]:
        return _prune(
            {
                "deviceName": self.device_name,
                "rootVolume": True,
                "ebs": {
                    "volumeSize": f"{self.size_gib}Gi",
                    "volumeType": self.volume_type,
                    "encrypted": True,
                    "deleteOnTermination": True,
                    "kmsKeyID": self.kms_key_id,
                },
            }
        )


@dataclass(frozen=True)
class AmiSelection:
    """EKS: an AL2023 alias (Karpenter resolves the EKS-optimized AMI and writes nodeadm user-data).
    Custom (K3s): SSM parameters naming the AMI per architecture, with our own user-data."""

    alias: str | None = None
    ssm_parameters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if bool(self.alias) == bool(self.ssm_parameters):
            raise ValueError("AmiSelection: give either an alias or SSM parameters, not both or neither")

    @property
    def family(self) -> str:
        return "AL2023" if self.alias else "Custom"

    def terms(self) -> list[dict[str, str]]:
        if self.alias:
            return [{"alias": self.alias}]
        return [{"ssmParameter": p} for p in self.ssm_parameters]


@dataclass(frozen=True)
class EC2NodeClassSpec:
    name: str
    cluster_name: str
    instance_profile: str
    ami: AmiSelection
    root_volume: RootVolume
    max_pods: int
    tags: dict[str, str] = field(default_factory=dict)
    user_data: str | None = None
    detailed_monitoring: bool = False

    def __post_init__(self) -> None:
        if self.ami.family == "Custom" and not self.user_data:
            raise ValueError(
                f"EC2NodeClass {self.name}: a Custom AMI needs user-data that joins the node to the cluster"
            )
        if not 1 <= self.max_pods <= 250:
            raise ValueError(f"EC2NodeClass {self.name}: maxPods {self.max_pods} outside 1..250")

    def manifest(self) -> dict[str, Any]:
        discovery = [{"tags": {DISCOVERY_TAG: self.cluster_name}}]
        return _prune(
            {
                "apiVersion": NODECLASS_API_VERSION,
                "kind": NODECLASS_KIND,
                "metadata": {"name": self.name},
                "spec": {
                    "amiFamily": self.ami.family,
                    "amiSelectorTerms": self.ami.terms(),
                    # A pre-made instance profile: the controller then needs no IAM write permission.
                    "instanceProfile": self.instance_profile,
                    "subnetSelectorTerms": discovery,
                    "securityGroupSelectorTerms": discovery,
                    # IMDSv2 only, and a hop limit of 1 so pods (one hop further) cannot reach the node's credentials.
                    "metadataOptions": {
                        "httpEndpoint": "enabled",
                        "httpProtocolIPv6": "disabled",
                        "httpPutResponseHopLimit": 1,
                        "httpTokens": "required",
                    },
                    # Nodes stay private even in a subnet that maps public IPs on launch.
                    "associatePublicIPAddress": False,
                    "blockDeviceMappings": [self.root_volume.to_dict()],
                    "kubelet": {"maxPods": self.max_pods},
                    "userData": self.user_data,
                    "detailedMonitoring": self.detailed_monitoring or None,
                    "tags": dict(self.tags) or None,
                },
            }
        )


# Tag keys Karpenter sets itself; the CRD refuses them in spec.tags.
RESERVED_TAG_PREFIXES = (
    "kubernetes.io/cluster",
    "karpenter.sh/nodepool",
    "karpenter.sh/nodeclaim",
    "karpenter.k8s.aws/ec2nodeclass",
    "eks:eks-cluster-name",
)


def node_class_tags(resource_tags: dict[str, str]) -> dict[str, str]:
    """Resource tags for the instances, volumes and ENIs Karpenter launches, minus the keys it owns."""
    return {k: v for k, v in resource_tags.items() if v and not k.startswith(RESERVED_TAG_PREFIXES)}


# ------------------------------------------------------------------------------ from the config
def config_pool_requirements(
    pool: "KarpenterNodePoolConfig", *, label_prefix: str = KARPENTER_LABELS, linux_only: bool = True
) -> tuple[Requirement, ...]:
    """`pool_requirements` of a configured pool (sizes below `large` left out unless it lists sizes)."""
    return pool_requirements(
        architectures=tuple(pool.architectures),
        capacity_types=tuple(pool.capacity_types),
        categories=tuple(pool.instance_categories),
        generation_greater_than=pool.instance_generation_greater_than,
        sizes=tuple(pool.instance_sizes) if pool.instance_sizes else None,
        excluded_sizes=SMALL_SIZES,
        families=tuple(pool.instance_families) if pool.instance_families else None,
        label_prefix=label_prefix,
        linux_only=linux_only,
    )


def config_pool_spec(
    pool: "KarpenterNodePoolConfig", requirements: tuple[Requirement, ...], expire_after: str, **node_class_ref: str
) -> NodePoolSpec:
    """A configured pool as a NodePoolSpec with these requirements (`node_class_ref`: the group and kind of
    its node class, when it is not Karpenter's EC2NodeClass)."""
    return NodePoolSpec(
        name=pool.name,
        node_class=pool.node_class,
        requirements=requirements,
        limits={"cpu": str(pool.limits.cpu), "memory": pool.limits.memory},
        consolidate_after=pool.consolidate_after,
        expire_after=expire_after,
        budgets=tuple(Budget(b.nodes, tuple(b.reasons or ()), b.schedule, b.duration) for b in pool.budgets),
        weight=pool.weight,
        taints=tuple(Taint(t.key, t.effect, t.value) for t in pool.taints),
        labels=dict(pool.labels),
        **node_class_ref,
    )


def node_pool_from_config(pool: "KarpenterNodePoolConfig") -> NodePoolSpec:
    requirements = config_pool_requirements(pool)
    if pool.security_groups_for_pods:
        # Security groups for pods: only types the VPC resource controller attaches a trunk ENI to, listed
        # by name (fail closed: a type newer than the data stays out until the table is regenerated).
        requirements += (Requirement(INSTANCE_TYPE, "In", tuple(trunk_eni_instance_types(pool))),)
    return config_pool_spec(pool, requirements, pool.expire_after)


def node_class_max_pods_from_config(
    karpenter: "KarpenterConfig", node_class: "KarpenterNodeClassConfig", kind: str
) -> int:
    """kubelet.maxPods of a node class, from the maxPods function over the pools that use it."""
    shapes = [pool_shape(p) for p in karpenter.node_pools if p.node_class == node_class.name]
    return node_class_max_pods(node_class.max_pods, shapes, custom_networking=uses_custom_networking(kind))


def node_class_from_config(
    node_class: "KarpenterNodeClassConfig",
    *,
    kind: str,
    cluster_name: str,
    instance_profile: str,
    max_pods: int,
    tags: dict[str, str],
    user_data: str | None = None,
) -> EC2NodeClassSpec:
    if kind == "eks":
        ami = AmiSelection(alias=effective_ami_alias(node_class))
    else:
        ami = AmiSelection(ssm_parameters=tuple(effective_ami_parameters(node_class).values()))
    return EC2NodeClassSpec(
        name=node_class.name,
        cluster_name=cluster_name,
        instance_profile=instance_profile,
        ami=ami,
        root_volume=RootVolume(size_gib=node_class.volume_size_gib),
        max_pods=max_pods,
        tags=node_class_tags(tags),
        user_data=user_data,
    )
