"""`k8s-platform:karpenter`: node classes and pools (components/karpenter*.py).

Cross-field rules (kind, prod pinning, pod capacity) live in components/config/karpenter_rules.py."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import Model, dns_label
from components.config.checks import (
    GO_DURATION_MAX_SECONDS,
    cron_problem,
    duration_seconds,
    quantity_value,
    shown,
)

K8S_QUANTITY = re.compile(
    r"(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?"
)  # fullmatch
KARPENTER_DURATION = re.compile(r"([0-9]+(s|m|h))+|Never")  # fullmatch
LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")  # fullmatch
# An AL2023 release is a date: al2023@vYYYYMMDD.
AMI_ALIAS = re.compile(r"al2023@(latest|v(?P<date>20[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])))", re.ASCII)
# Karpenter's own bound on consolidateAfter/expireAfter would be Go's; a year is far beyond any sane value.
DURATION_MAX_SECONDS = 10 * 365 * 24 * 3600


def _duration(v: str) -> str:
    if not KARPENTER_DURATION.fullmatch(v):
        raise ValueError(f"'{shown(v)}' is not a duration like 30s, 10m, 720h or 1h30m (or Never)")
    seconds = duration_seconds(v)
    if seconds is not None and seconds > min(DURATION_MAX_SECONDS, GO_DURATION_MAX_SECONDS):
        raise ValueError(f"'{shown(v)}' is longer than 10 years (87600h); use Never for no limit")
    return v


class KarpenterNodeClassConfig(Model):
    """One EC2NodeClass: the AMI, root volume and kubelet density of the nodes Karpenter launches."""

    name: str = Field(
        "default",
        description=(
            "EC2NodeClass name (a DNS label), referenced by `nodePools[].nodeClass`; under `auto-mode` the name of "
            "an `eks.amazonaws.com/v1` NodeClass, never `default` (Auto Mode's built-in class, which pools use "
            "when `nodeClasses` is not set)."
        ),
    )
    # EKS: an AL2023 alias, pinned (`al2023@v20260903`) in prod; `al2023@latest` only outside prod.
    ami_alias: str | None = Field(
        None,
        description=(
            "EKS only: the AL2023 EKS-optimized AMI release, `al2023@vYYYYMMDD`; unset means `al2023@latest`, "
            "allowed only outside prod; refused on k3s."
        ),
    )
    # K3s: SSM parameters naming the AMI, one per architecture the pools allow.
    ami_ssm_parameters: dict[Literal["amd64", "arm64"], str] | None = Field(
        None,
        description=(
            "K3s only: the AMI per architecture as SSM parameter names; unset means AWS's public Amazon Linux 2023 "
            "parameters (`DEFAULT_K3S_AMI_PARAMETERS` in `components/config/karpenter_rules.py`); each architecture "
            "a pool of the class allows needs one; refused on EKS."
        ),
    )
    volume_size_gib: int = Field(
        default=50,
        ge=20,
        le=16384,
        alias="volumeSizeGiB",
        description=("Encrypted gp3 root volume size of the class's nodes, GiB."),
    )
    # kubelet maxPods; every instance type a pool using this class allows must hold it (see karpenter_rules).
    max_pods: int = Field(
        default=110,
        ge=10,
        le=250,
        description=(
            "kubelet `maxPods` of the class's nodes: every instance type a pool of the class allows must hold it "
            "under prefix delegation (on EKS with custom networking)."
        ),
    )

    _name = field_validator("name")(classmethod(lambda cls, v: dns_label(v)))

    @field_validator("ami_alias")
    @classmethod
    def _alias(cls, v: str | None) -> str | None:
        if v is not None and not AMI_ALIAS.fullmatch(v):
            raise ValueError(
                f"'{shown(v)}' is not an AL2023 alias like al2023@v20260903 (or al2023@latest outside prod)"
            )
        return v

    @field_validator("ami_ssm_parameters")
    @classmethod
    def _parameters(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for arch, name in (v or {}).items():
            if not re.fullmatch(r"/[A-Za-z0-9_.\-/]{1,2047}", name):
                raise ValueError(
                    f"{arch}: '{shown(name)}' is not an SSM parameter name like "
                    "/aws/service/ami-amazon-linux-latest/..."
                )
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
        number = quantity_value(str(v)) if K8S_QUANTITY.fullmatch(str(v)) else None
        if number is None:
            raise ValueError(f"'{shown(v)}' is not a Kubernetes quantity like 1000 or 4000Gi")
        if number < 0:
            raise ValueError(f"'{shown(v)}' is negative; a limit is the most the pool may launch")
        return v


class KarpenterBudget(Model):
    nodes: str = Field(
        "10%",
        description=("Most nodes disrupted at once, a count or percentage (`0` blocks disruption in the window)."),
    )
    reasons: list[Literal["Underutilized", "Empty", "Drifted"]] | None = Field(
        None, description=("Disruption reasons the budget limits; unset means all of them.")
    )
    schedule: str | None = Field(
        None, description=("Cron schedule opening the budget's window (UTC); set together with `duration`.")
    )
    duration: str | None = Field(
        None, description=("Length of the window `schedule` opens, like `8h` or `1h30m`; set together with `schedule`.")
    )

    @field_validator("nodes")
    @classmethod
    def _nodes(cls, v: str) -> str:
        if not re.fullmatch(r"(100|[0-9]{1,2})%|[0-9]{1,6}", v):
            raise ValueError(f"'{shown(v)}' is not a node count or percentage like 1 or 10%")
        return v

    @field_validator("duration")
    @classmethod
    def _budget_duration(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"(([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?", v):
            raise ValueError(f"'{shown(v)}' is not a window length like 8h or 1h30m")
        if v is not None and not 0 < (duration_seconds(v) or 0) <= 7 * 24 * 3600:
            raise ValueError(f"'{shown(v)}': a budget window is longer than 0 and at most a week (168h)")
        return v

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str | None) -> str | None:
        # Karpenter parses it as a standard cron expression (macros like @daily allowed), in UTC.
        problem = cron_problem(v, macros=True) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _window(self) -> "KarpenterBudget":
        if (self.schedule is None) != (self.duration is None):
            raise ValueError("schedule and duration go together (a cron schedule opens a window of that length)")
        return self


class KarpenterTaint(Model):
    key: str = Field(description="Taint key, like `workload-class` or `example.com/dedicated`.")
    value: str | None = Field(None, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        description=("What the taint does to pods that do not tolerate it.")
    )

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not LABEL_KEY.fullmatch(v):
            raise ValueError(f"'{shown(v)}' is not a taint key like workload-class or example.com/dedicated")
        return v

    @field_validator("value")
    @classmethod
    def _value(cls, v: str | None) -> str | None:
        if v is not None and not LABEL_VALUE.fullmatch(v):
            raise ValueError(
                f"'{shown(v)}' is not a taint value: up to 63 letters, digits, '-', '_', '.', "
                "starting and ending with a letter or digit"
            )
        return v


class KarpenterNodePoolConfig(Model):
    """One NodePool. Defaults are wide on purpose: more instance types mean better Spot availability and prices."""

    name: str = Field(description="NodePool name, a DNS label; distinct.")
    node_class: str = Field("default", description="Name of the `nodeClasses` entry the pool's nodes use.")
    capacity_types: list[Literal["spot", "on-demand"]] = Field(
        default_factory=lambda: ["spot", "on-demand"],
        description="Capacity types the pool may launch, distinct; with both, Karpenter prefers Spot when offered.",
    )
    architectures: list[Literal["amd64", "arm64"]] = Field(
        default_factory=lambda: ["amd64", "arm64"], description=("CPU architectures the pool may launch, distinct.")
    )
    instance_categories: list[str] = Field(
        default_factory=lambda: ["c", "m", "r"],
        description=("Instance categories (family letters like `c`, `m`, `r`), distinct."),
    )
    instance_generation_greater_than: int = Field(
        default=5, ge=0, description=("Only instance generations above this one (5: `m6i` yes, `m5` no).")
    )
    # None: every size except nano/micro/small/medium (components/karpenter_capacity.SMALL_SIZES).
    instance_sizes: list[str] | None = Field(
        None,
        description=(
            "Allowed sizes (`large`, `2xlarge`, `metal`...); unset means every size but `nano`, `micro`, `small`, "
            "`medium`. Refused when an instance type it matches cannot hold the class's `maxPods`."
        ),
    )
    instance_families: list[str] | None = Field(
        None,
        description=(
            "Only these instance families (`karpenter.k8s.aws/instance-family`), e.g. `[g5, g6]` or `[c7g, m7g]`; "
            "unset means every family the categories and generation admit. A family the pool's categories, "
            "generation or architectures exclude is refused."
        ),
    )
    limits: KarpenterLimits = Field(
        description=("Circuit breaker: Karpenter launches nothing more once the pool's nodes reach these totals.")
    )
    consolidate_after: str = Field(
        "1m",
        description=(
            "How long a node stays empty or underutilized before consolidation (`WhenEmptyOrUnderutilized`), "
            "a duration like `30s` or `10m`."
        ),
    )
    expire_after: str = Field(
        "720h",
        description=(
            "Node lifetime before replacement (picking up patched AMIs), a duration like `720h`; the policy pack "
            "refuses `Never` and more than 720h, mandatory in prod. Under `cluster.eks.computeMode: auto-mode` "
            "unset means 336h (AWS's default) and more than 504h is refused (Auto Mode replaces nodes after 21 days)."
        ),
    )
    budgets: list[KarpenterBudget] = Field(
        default_factory=lambda: [KarpenterBudget()],
        description=("Disruption budgets; the default is one budget of 10% of the nodes at any time."),
    )
    weight: int | None = Field(
        default=None, ge=1, le=100, description=("Priority against other pools (higher first); unset is lowest.")
    )
    taints: list[KarpenterTaint] = Field(default_factory=list, description="Taints on the pool's nodes.")
    labels: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Labels on the pool's nodes; the `karpenter.sh`, `karpenter.k8s.aws`, `kubernetes.io` and `k8s.io` "
            "domains are reserved."
        ),
    )
    security_groups_for_pods: bool = Field(
        False,
        description=(
            "EKS: the pool runs pods a `cluster.eks.securityGroupPolicies` entry selects, so it launches only "
            "instance types that support trunk ENIs (`components/data/trunk_eni_instance_types.json`); needs at "
            "least one policy."
        ),
    )

    @field_validator("taints")
    @classmethod
    def _distinct_taints(cls, v: list[KarpenterTaint]) -> list[KarpenterTaint]:
        # Kubernetes keeps one taint per (key, effect); a second one is refused by the API server.
        seen = [(t.key, t.effect) for t in v]
        dupes = sorted({f"{k}:{e}" for k, e in seen if seen.count((k, e)) > 1})
        if dupes:
            raise ValueError(f"{', '.join(dupes)} listed twice; one taint per (key, effect)")
        return v

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
            if not re.fullmatch(r"[a-z]{1,8}", c):
                raise ValueError(f"'{shown(c)}' is not an instance category like c, m or r")
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
            if not re.fullmatch(
                r"nano|micro|small|medium|large|xlarge|([2-9]|[1-9][0-9]+)xlarge|metal(-[0-9]+xl)?", size, re.ASCII
            ):
                raise ValueError(f"'{shown(size)}' is not an instance size like large, 2xlarge or metal")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not LABEL_KEY.fullmatch(key) or not LABEL_VALUE.fullmatch(value):
                raise ValueError(f"'{shown(key)}: {shown(value)}' is not a valid Kubernetes label")
            domain = key.split("/", 1)[0] if "/" in key else ""
            if domain.endswith(("karpenter.sh", "karpenter.k8s.aws", "kubernetes.io", "k8s.io")):
                raise ValueError(f"'{key}': the {domain} label domain is reserved (Karpenter and the kubelet set it)")
        return v


def _default_node_pools() -> list[KarpenterNodePoolConfig]:
    return [KarpenterNodePoolConfig(name="general", limits=KarpenterLimits(cpu="100", memory="400Gi"))]


class KarpenterConfig(Model):
    enabled: bool = Field(
        True,
        description=(
            "Install Karpenter, its IAM, interruption queue, NodeClasses and NodePools; under "
            "`cluster.eks.computeMode: auto-mode` only the stack's NodeClasses and NodePools (AWS runs Karpenter)."
        ),
    )
    # None: the environment's controller replicas (components/config/environments.py: 2 in staging and
    # prod, with the chart's PodDisruptionBudget; 1 in dev).
    replicas: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description=(
            "Controller replicas; unset means the environment's `controllerReplicas` (2 in staging and prod, 1 in "
            "dev); fewer than the environment's is refused (the chart's PodDisruptionBudget allows one eviction "
            "at a time)."
        ),
    )
    node_classes: list[KarpenterNodeClassConfig] = Field(
        default_factory=lambda: [KarpenterNodeClassConfig()],
        description="EC2NodeClasses, distinct names; the default is one class `default`, each field at its default.",
    )
    node_pools: list[KarpenterNodePoolConfig] = Field(
        default_factory=_default_node_pools, description=("NodePools, distinct names, at least one.")
    )

    def replica_count(self, default: int) -> int:
        return self.replicas if self.replicas is not None else default
