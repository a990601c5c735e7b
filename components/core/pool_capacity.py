"""Which instance types a Karpenter NodePool may launch, and how many pods each of them can hold (pure).

A NodeClass pins one `kubelet.maxPods` for every node it launches, while a NodePool lets Karpenter
pick from many instance types. If one allowed type cannot give that many pods an address (VPC CNI
with prefix delegation, see `components/core/max_pods.py`), pods land on it and stay `ContainerCreating`.
So the platform checks, before anything is deployed, that every instance type in the ENI table that a
pool's requirements admit holds the NodeClass's maxPods.

Instance-type names are read the way Karpenter labels them: `c6g.2xlarge` is category `c`,
generation 6, attributes `g` (Graviton, so arm64), size `2xlarge`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from components.core.instance_types import architecture
from components.core.max_pods import INSTANCE_LIMITS, InstanceNetworkLimits, max_pods

# Sizes a pool leaves out unless it lists sizes itself: too few ENI slots for a useful pod density,
# and too little memory once kubelet, the CNI and the system reservations are taken.
SMALL_SIZES = ("nano", "micro", "small", "medium")

_NAME = re.compile(r"^(?P<category>[a-z]+?)(?P<generation>\d+)(?P<attributes>[a-z0-9-]*)\.(?P<size>[a-z0-9-]+)$")


@dataclass(frozen=True)
class InstanceShape:
    instance_type: str
    category: str
    generation: int
    attributes: str
    size: str

    @property
    def architecture(self) -> str:
        return architecture(self.instance_type)


def parse_instance_type(instance_type: str) -> InstanceShape:
    match = _NAME.match(instance_type)
    if not match:
        raise ValueError(f"'{instance_type}' is not an EC2 instance type name like m6i.large")
    return InstanceShape(
        instance_type=instance_type,
        category=match["category"],
        generation=int(match["generation"]),
        attributes=match["attributes"],
        size=match["size"],
    )


@dataclass(frozen=True)
class PoolShape:
    """The parts of a NodePool's requirements that decide which instance types it may launch."""

    categories: tuple[str, ...]
    generation_greater_than: int
    architectures: tuple[str, ...]
    sizes: tuple[str, ...] | None  # None: every size except SMALL_SIZES
    families: tuple[str, ...] | None = None  # None: every family of the categories

    def admits(self, shape: InstanceShape) -> bool:
        if shape.category not in self.categories or shape.generation <= self.generation_greater_than:
            return False
        if self.families is not None and shape.instance_type.split(".", 1)[0] not in self.families:
            return False
        if shape.architecture not in self.architectures:
            return False
        if self.sizes is None:
            return shape.size not in SMALL_SIZES
        return shape.size in self.sizes


def admitted_instance_types(
    pool: PoolShape, table: dict[str, InstanceNetworkLimits] | None = None
) -> list[InstanceNetworkLimits]:
    """The rows of the ENI table the pool's requirements admit, sorted by name."""
    if table is None:
        return list(_admitted_from_shipped_table(pool))
    return [table[name] for name, shape in _shapes(table) if pool.admits(shape)]


@cache
def _admitted_from_shipped_table(pool: PoolShape) -> tuple[InstanceNetworkLimits, ...]:
    """Once per distinct pool and process: config validation and the program each ask for every pool,
    and a filter over the ~1,400 types of the shipped table measured 3 ms a pool (profile of the suite)."""
    return tuple(INSTANCE_LIMITS[name] for name, shape in _shipped_shapes() if pool.admits(shape))


def _shapes(rows: dict[str, InstanceNetworkLimits]) -> list[tuple[str, InstanceShape]]:
    # Names outside the <category><generation><attributes>.<size> scheme (u-6tb1.metal, mac-m4.metal,
    # bmn-sf1.metal) carry no category/generation label a pool could select them by.
    return [(name, parse_instance_type(name)) for name in sorted(rows) if _NAME.match(name)]


@cache
def _shipped_shapes() -> tuple[tuple[str, InstanceShape], ...]:
    """The shipped table's names, parsed once per process (every pool of every run reads them)."""
    return tuple(_shapes(INSTANCE_LIMITS))


@dataclass(frozen=True)
class PodCapacity:
    """The smallest pod capacity among the instance types a pool admits, and which type has it."""

    max_pods: int
    instance_type: str
    checked: int  # how many instance types were checked


def pool_pod_capacity(
    pool: PoolShape, *, custom_networking: bool, table: dict[str, InstanceNetworkLimits] | None = None
) -> PodCapacity | None:
    """Lowest maxPods (prefix delegation) over every admitted type; None if the table has none of them."""
    if table is None:
        return _capacity_from_shipped_table(pool, custom_networking)
    return _lowest_capacity(admitted_instance_types(pool, table), custom_networking)


@cache
def _capacity_from_shipped_table(pool: PoolShape, custom_networking: bool) -> PodCapacity | None:
    return _lowest_capacity(_admitted_from_shipped_table(pool), custom_networking)


def _lowest_capacity(admitted: Iterable[InstanceNetworkLimits], custom_networking: bool) -> PodCapacity | None:
    admitted = list(admitted)
    if not admitted:
        return None
    worst = min(
        admitted,
        key=lambda r: (max_pods(r, prefix_delegation=True, custom_networking=custom_networking), r.instance_type),
    )
    return PodCapacity(
        max_pods=max_pods(worst, prefix_delegation=True, custom_networking=custom_networking),
        instance_type=worst.instance_type,
        checked=len(admitted),
    )


def node_class_max_pods(configured: int, pools: Iterable[PoolShape], *, custom_networking: bool) -> int:
    """kubelet.maxPods for a NodeClass: the configured density, never above what its pools' types can hold.

    Config validation refuses pools that cannot hold `configured`, so for a validated config this
    returns `configured`; the min keeps a node class honest even when called on its own.
    """
    capacities = [c.max_pods for c in (pool_pod_capacity(p, custom_networking=custom_networking) for p in pools) if c]
    return min([configured, *capacities])
