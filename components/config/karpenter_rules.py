"""Cross-field rules of the `karpenter` config section (pure; run by `StackConfig` validation).

`karpenter_problems(cfg)` yields `(key.path, message)` for what the field validators cannot see:
the control-plane kind (EKS alias vs K3s custom AMI), prod pinning, references between pools and
classes, and whether every instance type a pool allows can hold its class's maxPods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

from components.config.auto_mode import uses_auto_mode
from components.core.instance_types import al2023_ami_parameter
from components.core.pool_capacity import SMALL_SIZES, PoolShape, admitted_instance_types, pool_pod_capacity

if TYPE_CHECKING:
    from components.config.karpenter import KarpenterNodeClassConfig, KarpenterNodePoolConfig
    from components.config.stack import StackConfig

LATEST_ALIAS = "al2023@latest"
# K3s nodes boot Amazon Linux 2023 (the K3s agent is a static binary); AWS publishes these parameters.
DEFAULT_K3S_AMI_PARAMETERS: dict[str, str] = {arch: al2023_ami_parameter(arch) for arch in ("amd64", "arm64")}


def effective_ami_alias(node_class: "KarpenterNodeClassConfig") -> str:
    return node_class.ami_alias or LATEST_ALIAS


def effective_ami_parameters(node_class: "KarpenterNodeClassConfig") -> dict[str, str]:
    return dict(node_class.ami_ssm_parameters or DEFAULT_K3S_AMI_PARAMETERS)


def pool_shape(pool: "KarpenterNodePoolConfig") -> PoolShape:
    return PoolShape(
        categories=tuple(pool.instance_categories),
        generation_greater_than=pool.instance_generation_greater_than,
        architectures=tuple(pool.architectures),
        sizes=tuple(pool.instance_sizes) if pool.instance_sizes else None,
        families=tuple(pool.instance_families) if pool.instance_families else None,
    )


def uses_custom_networking(kind: str) -> bool:
    """EKS pods live on secondary ENIs in the pod subnets (VPC CNI custom networking); K3s has no VPC CNI."""
    return kind == "eks"


def karpenter_problems(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    k = cfg.karpenter
    if not k.enabled:
        return
    kind = cfg.cluster.kind
    wanted = cfg.safeguards_in_force
    # EKS Auto Mode: AWS runs the controller and picks the AMI and maxPods (components/config/auto_mode.py
    # refuses the keys for them); references, families and the pools' own fields are checked alike.
    auto_mode = uses_auto_mode(cfg)
    if k.replicas is not None and not auto_mode and k.replicas < wanted.controller_replicas:
        yield (
            "karpenter.replicas",
            f"{k.replicas} replica in {cfg.environment}; at least {wanted.controller_replicas} "
            "(a single controller is a SPOF for all scaling)",
        )

    classes = {}
    for i, nc in enumerate(k.node_classes):
        key = f"karpenter.nodeClasses.{i}"
        if nc.name in classes:
            yield f"{key}.name", f"'{nc.name}' is defined twice; node class names must be distinct"
        classes[nc.name] = nc
        if kind == "eks" and not auto_mode:
            if nc.ami_ssm_parameters is not None:
                yield (
                    f"{key}.amiSsmParameters",
                    "applies to k3s clusters; EKS node classes use amiAlias (e.g. al2023@v20260903)",
                )
            if wanted.pinned_amis and effective_ami_alias(nc) == LATEST_ALIAS:
                shown = "not set (defaults to al2023@latest)" if nc.ami_alias is None else "al2023@latest"
                yield (
                    f"{key}.amiAlias",
                    f"{shown}: {cfg.environment} nodes must run a pinned AMI "
                    "release like al2023@v20260903 (so a new AMI rolls out only through a reviewed change); "
                    "al2023@latest is allowed only where safeguards.pinnedAmis is off (dev by default)",
                )
        elif kind == "eks":
            if nc.ami_ssm_parameters is not None:
                yield (
                    f"{key}.amiSsmParameters",
                    "applies to k3s clusters; Auto Mode picks and patches the node AMI itself (remove the key)",
                )
        elif nc.ami_alias is not None:
            yield (
                f"{key}.amiAlias",
                "applies to EKS clusters; K3s node classes boot a custom AMI named by "
                "amiSsmParameters (the alias AMIs join EKS, not K3s)",
            )
    if not k.node_pools:
        yield "karpenter.nodePools", "at least one NodePool (without one Karpenter launches nothing)"

    names: set[str] = set()
    for i, pool in enumerate(k.node_pools):
        key = f"karpenter.nodePools.{i}"
        if pool.name in names:
            yield f"{key}.name", f"'{pool.name}' is defined twice; NodePool names must be distinct"
        names.add(pool.name)
        nc = classes.get(pool.node_class)
        if nc is None:
            yield (
                f"{key}.nodeClass",
                f"'{pool.node_class}' is not a configured node class; defined: {', '.join(classes) or 'none'}",
            )
            continue
        if kind == "k3s":
            missing = [a for a in pool.architectures if a not in effective_ami_parameters(nc)]
            if missing:
                yield (
                    f"{key}.architectures",
                    f"pool '{pool.name}' allows {', '.join(missing)} but node class "
                    f"'{nc.name}' has no AMI parameter for it; add it to amiSsmParameters or drop the architecture",
                )
        yield from _capacity_problems(key, pool, nc, kind, max_pods=not auto_mode)


def _capacity_problems(
    key: str, pool: "KarpenterNodePoolConfig", nc: "KarpenterNodeClassConfig", kind: str, max_pods: bool = True
) -> Iterator[tuple[str, str]]:
    if pool.instance_families:
        # A family the other requirements exclude would silently match nothing: name it.
        wide = dataclasses.replace(pool_shape(pool), families=None, sizes=None)
        admitted = {r.instance_type.split(".", 1)[0] for r in admitted_instance_types(wide)}
        for family in pool.instance_families:
            if family not in admitted:
                yield (
                    f"{key}.instanceFamilies",
                    f"pool '{pool.name}': family '{family}' has no instance type with ENI "
                    f"data that its instanceCategories ({', '.join(pool.instance_categories)}), "
                    f"instanceGenerationGreaterThan ({pool.instance_generation_greater_than}) and architectures "
                    f"({', '.join(pool.architectures)}) admit",
                )
    if not max_pods:
        return  # Auto Mode sets maxPods itself
    networking = "prefix delegation with custom networking" if uses_custom_networking(kind) else "prefix delegation"
    capacity = pool_pod_capacity(pool_shape(pool), custom_networking=uses_custom_networking(kind))
    sizes_key = f"{key}.instanceSizes"
    if capacity is None:
        sizes = ", ".join(pool.instance_sizes) if pool.instance_sizes else f"all but {', '.join(SMALL_SIZES)}"
        yield (
            sizes_key,
            f"pool '{pool.name}' (categories {', '.join(pool.instance_categories)}, generation > "
            f"{pool.instance_generation_greater_than}, sizes {sizes}) matches no instance type with ENI data in "
            "components/data/instance_network_limits.json, so its maxPods cannot be verified; widen the pool",
        )
        return
    if capacity.max_pods < nc.max_pods:
        yield (
            sizes_key,
            f"pool '{pool.name}' allows {capacity.instance_type}, which holds at most {capacity.max_pods} pods "
            f"under {networking}, below maxPods {nc.max_pods} of node class '{nc.name}'; allow only larger "
            "sizes (instanceSizes) or lower the node class's maxPods",
        )
