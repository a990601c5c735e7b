"""`k8s-platform:karpenter`: node classes and pools (components/karpenter*.py).

Cross-field rules (kind, prod pinning, pod capacity) live in components/config/karpenter_rules.py."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import Model, dns_label

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

    name: str = Field("default", description="EC2NodeClass name (a DNS label), referenced by `nodePools[].nodeClass`.")
    # EKS: an AL2023 alias, pinned (`al2023@v20260903`) in prod; `al2023@latest` only outside prod.
    ami_alias: str | None = Field(None, description=(
        "EKS only: the AL2023 EKS-optimized AMI release, `al2023@vYYYYMMDD`; unset means `al2023@latest`, "
        "allowed only outside prod; refused on k3s."))
    # K3s: SSM parameters naming the AMI, one per architecture the pools allow.
    ami_ssm_parameters: dict[Literal["amd64", "arm64"], str] | None = Field(None, description=(
        "K3s only: the AMI per architecture as SSM parameter names; unset means AWS's public Amazon Linux 2023 "
        "parameters (`DEFAULT_K3S_AMI_PARAMETERS` in `components/config/karpenter_rules.py`); each architecture "
        "a pool of the class allows needs one; refused on EKS."))
    volume_size_gib: int = Field(default=50, ge=20, le=16384, alias="volumeSizeGiB", description=(
        "Encrypted gp3 root volume size of the class's nodes, GiB."))
    # kubelet maxPods; every instance type a pool using this class allows must hold it (see karpenter_rules).
    max_pods: int = Field(default=110, ge=10, le=250, description=(
        "kubelet `maxPods` of the class's nodes: every instance type a pool of the class allows must hold it "
        "under prefix delegation (on EKS with custom networking)."))

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

    cpu: str | int = Field(description="Most CPU the pool's nodes may add up to, a Kubernetes quantity like `1000`.")
    memory: str = Field(description="Most memory the pool's nodes may add up to, a Kubernetes quantity like `4000Gi`.")

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, v: str | int) -> str | int:
        if not K8S_QUANTITY.match(str(v)):
            raise ValueError(f"'{v}' is not a Kubernetes quantity like 1000 or 4000Gi")
        return v


class KarpenterBudget(Model):
    nodes: str = Field("10%", description=(
        "Most nodes disrupted at once, a count or percentage (`0` blocks disruption in the window)."))
    reasons: list[Literal["Underutilized", "Empty", "Drifted"]] | None = Field(None, description=(
        "Disruption reasons the budget limits; unset means all of them."))
    schedule: str | None = Field(None, description=(
        "Cron schedule opening the budget's window (UTC); set together with `duration`."))
    duration: str | None = Field(None, description=(
        "Length of the window `schedule` opens, like `8h` or `1h30m`; set together with `schedule`."))

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
    key: str = Field(description="Taint key, like `workload-class` or `example.com/dedicated`.")
    value: str | None = Field(None, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(description=(
        "What the taint does to pods that do not tolerate it."))

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not LABEL_KEY.match(v):
            raise ValueError(f"'{v}' is not a taint key like workload-class or example.com/dedicated")
        return v


class KarpenterNodePoolConfig(Model):
    """One NodePool. Defaults are wide on purpose: more instance types mean better Spot availability and prices."""

    name: str = Field(description="NodePool name, a DNS label; distinct.")
    node_class: str = Field("default", description="Name of the `nodeClasses` entry the pool's nodes use.")
    capacity_types: list[Literal["spot", "on-demand"]] = Field(
        default_factory=lambda: ["spot", "on-demand"],
        description="Capacity types the pool may launch, distinct; with both, Karpenter prefers Spot when offered.")
    architectures: list[Literal["amd64", "arm64"]] = Field(default_factory=lambda: ["amd64", "arm64"], description=(
        "CPU architectures the pool may launch, distinct."))
    instance_categories: list[str] = Field(default_factory=lambda: ["c", "m", "r"], description=(
        "Instance categories (family letters like `c`, `m`, `r`), distinct."))
    instance_generation_greater_than: int = Field(default=5, ge=0, description=(
        "Only instance generations above this one (5: `m6i` yes, `m5` no)."))
    # None: every size except nano/micro/small/medium (components/karpenter_capacity.SMALL_SIZES).
    instance_sizes: list[str] | None = Field(None, description=(
        "Allowed sizes (`large`, `2xlarge`, `metal`...); unset means every size but `nano`, `micro`, `small`, "
        "`medium`. Refused when an instance type it matches cannot hold the class's `maxPods`."))
    instance_families: list[str] | None = Field(None, description=(
        "Only these instance families (`karpenter.k8s.aws/instance-family`), e.g. `[g5, g6]` or `[c7g, m7g]`; "
        "unset means every family the categories and generation admit. A family the pool's categories, "
        "generation or architectures exclude is refused."))
    limits: KarpenterLimits = Field(description=(
        "Circuit breaker: Karpenter launches nothing more once the pool's nodes reach these totals."))
    consolidate_after: str = Field("1m", description=(
        "How long a node stays empty or underutilized before consolidation (`WhenEmptyOrUnderutilized`), "
        "a duration like `30s` or `10m`."))
    expire_after: str = Field("720h", description=(
        "Node lifetime before replacement (picking up patched AMIs), a duration like `720h`; the policy pack "
        "refuses `Never` and more than 720h, mandatory in prod."))
    budgets: list[KarpenterBudget] = Field(default_factory=lambda: [KarpenterBudget()], description=(
        "Disruption budgets; the default is one budget of 10% of the nodes at any time."))
    weight: int | None = Field(default=None, ge=1, le=100, description=(
        "Priority against other pools (higher first); unset is lowest."))
    taints: list[KarpenterTaint] = Field(default_factory=list, description="Taints on the pool's nodes.")
    labels: dict[str, str] = Field(default_factory=dict, description=(
        "Labels on the pool's nodes; the `karpenter.sh`, `karpenter.k8s.aws`, `kubernetes.io` and `k8s.io` "
        "domains are reserved."))

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

    @field_validator("instance_families")
    @classmethod
    def _families(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("at least one family, or remove the key for every family of the categories")
        for family in v:
            if not re.match(r"^[a-z]+\d+[a-z0-9-]*$", family):
                raise ValueError(f"'{family}' is not an instance family like g5, c7g or m7i")
        if len(set(v)) != len(v):
            raise ValueError("values must be distinct")
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
    enabled: bool = Field(True, description=(
        "Install Karpenter, its IAM, interruption queue, NodeClasses and NodePools."))
    # None: the environment's controller replicas (components/config/environments.py: 2 in staging and
    # prod, with the chart's PodDisruptionBudget; 1 in dev).
    replicas: int | None = Field(default=None, ge=1, le=5, description=(
        "Controller replicas; unset means the environment's `controllerReplicas` (2 in staging and prod, 1 in "
        "dev); fewer than the environment's is refused (the chart's PodDisruptionBudget allows one eviction "
        "at a time)."))
    node_classes: list[KarpenterNodeClassConfig] = Field(
        default_factory=lambda: [KarpenterNodeClassConfig()],
        description="EC2NodeClasses, distinct names; the default is one class `default`, each field at its default.")
    node_pools: list[KarpenterNodePoolConfig] = Field(default_factory=_default_node_pools, description=(
        "NodePools, distinct names, at least one."))

    def replica_count(self, default: int) -> int:
        return self.replicas if self.replicas is not None else default
