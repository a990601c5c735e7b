"""Environments: what dev, staging and prod guarantee by default, and the `safeguards` a stack adds.

Every behaviour that used to hang on `environment == "prod"` is one field of `Safeguards`; the
table `ENVIRONMENTS` gives each environment's defaults (README "Environments" prints it). A stack
may tighten them with `k8s-platform:safeguards` (e.g. protection in dev, three zones in staging),
never loosen them: a loosening value is refused naming the key. Components read the effective
values from `StackConfig.safeguards_in_force`, never the environment's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

from pydantic import Field

from components.config.base import Model

if TYPE_CHECKING:  # pragma: no cover
    from components.config.stack import StackConfig


@dataclass(frozen=True)
class Safeguards:
    """What an environment guarantees; each field's comment is what it changes."""

    # protect=True on stateful resources (cluster, KMS keys, buckets, OIDC providers, etcd snapshot
    # bucket without force_destroy), deletion protection on the K3s API load balancer, a 30-day
    # (instead of 7-day) recovery window on the K3s token secret.
    protect_stateful_resources: bool
    # Karpenter node classes must run a released AMI (al2023@v20260903), not al2023@latest.
    pinned_amis: bool
    # Fewest availability zones network.availabilityZones may list.
    min_availability_zones: int
    # Replicas of Karpenter and the add-on controllers (>= 2 also enables their PodDisruptionBudgets).
    controller_replicas: int
    # network.natGateways must be one-per-az (a single NAT gateway is a zonal single point of failure).
    nat_gateway_per_zone: bool
    # EKS clusters get deletionProtection by default; `cluster.eks.deletionProtection: false` then
    # needs `cluster.eks.allowDeletionUnprotected: true` (components/config/eks_resilience.py).
    cluster_deletion_protection: bool
    # Days RDS keeps automated backups of the K3s external datastore (point-in-time restore window).
    datastore_backup_retention_days: int
    # The K3s external datastore survives a zone: RDS Multi-AZ, an Aurora reader in a second zone, and
    # at least 2 K3s servers in front of it.
    highly_available_datastore: bool
    # A throwaway stack (the ci profile, components/config/ci.py): one untainted K3s server and no agents,
    # nothing protected, short retentions, an expiry (`ci.expiresAt`) tagged on every resource. Set by the
    # environment only, not by `k8s-platform:safeguards`.
    ephemeral: bool = False

    @property
    def highly_available(self) -> bool:
        return self.controller_replicas >= 2


ENVIRONMENTS: dict[str, Safeguards] = {
    "dev": Safeguards(
        protect_stateful_resources=False,
        pinned_amis=False,
        min_availability_zones=2,
        controller_replicas=1,
        nat_gateway_per_zone=False,
        cluster_deletion_protection=False,
        datastore_backup_retention_days=1,
        highly_available_datastore=False,
    ),
    # A rehearsal of prod: same protection, pins and replica counts, so a change that would fail in
    # prod fails here first; two zones and one NAT gateway keep it affordable.
    "staging": Safeguards(
        protect_stateful_resources=True,
        pinned_amis=True,
        min_availability_zones=2,
        controller_replicas=2,
        nat_gateway_per_zone=False,
        cluster_deletion_protection=True,
        datastore_backup_retention_days=7,
        highly_available_datastore=False,
    ),
    "prod": Safeguards(
        protect_stateful_resources=True,
        pinned_amis=True,
        min_availability_zones=3,
        controller_replicas=2,
        nat_gateway_per_zone=True,
        cluster_deletion_protection=True,
        datastore_backup_retention_days=30,
        highly_available_datastore=True,
    ),
    # Ephemeral clusters of a pipeline run (`platformctl ci up|down|reap`): cheapest and destroyable.
    "ci": Safeguards(
        protect_stateful_resources=False,
        pinned_amis=False,
        min_availability_zones=2,
        controller_replicas=1,
        nat_gateway_per_zone=False,
        cluster_deletion_protection=False,
        datastore_backup_retention_days=1,
        highly_available_datastore=False,
        ephemeral=True,
    ),
}


class SafeguardsConfig(Model):
    """`k8s-platform:safeguards`: tighten the environment's defaults (unset keys keep them)."""

    protect_stateful_resources: bool | None = Field(
        None,
        description=(
            "`protect` on stateful resources (cluster, KMS keys, buckets, OIDC providers), deletion protection "
            "on the K3s API load balancer, a 30-day recovery window on the K3s token secret; unset: the environment's."
        ),
    )
    pinned_amis: bool | None = Field(
        None,
        description=(
            "Karpenter node classes must run a released AMI (`al2023@vYYYYMMDD`), not `al2023@latest`; unset: the "
            "environment's."
        ),
    )
    min_availability_zones: int | None = Field(
        default=None,
        ge=2,
        le=6,
        description=("Fewest zones `network.availabilityZones` may list; unset: the environment's."),
    )
    controller_replicas: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description=(
            "Replicas of Karpenter and the add-on controllers (2 or more also enables their PodDisruptionBudgets); "
            "unset: the environment's."
        ),
    )
    nat_gateway_per_zone: bool | None = Field(
        None, description=("`network.natGateways` must be `one-per-az`; unset: the environment's.")
    )
    cluster_deletion_protection: bool | None = Field(
        None,
        description=(
            "EKS clusters get deletion protection by default, and turning it off needs "
            "`cluster.eks.allowDeletionUnprotected`; unset: the environment's."
        ),
    )
    datastore_backup_retention_days: int | None = Field(
        default=None,
        ge=1,
        le=35,
        description=(
            "Days RDS keeps automated backups of the K3s external datastore (1-35, RDS's range); unset: the "
            "environment's."
        ),
    )
    highly_available_datastore: bool | None = Field(
        None,
        description=(
            "The K3s external datastore survives a zone (RDS Multi-AZ, an Aurora reader in another zone, 2 or more "
            "servers); unset: the environment's."
        ),
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def effective_safeguards(environment: str, given: SafeguardsConfig) -> Safeguards:
    """The environment's defaults, tightened by the stack (a looser value keeps the default)."""
    base = ENVIRONMENTS[environment]
    changes = {}
    for f in fields(Safeguards):
        value = getattr(given, f.name, None)  # `ephemeral` is the environment's alone
        if value is not None:
            changes[f.name] = max(value, getattr(base, f.name))
    return replace(base, **changes)


def _loosened(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    base = ENVIRONMENTS[cfg.environment]
    for f in fields(Safeguards):
        value = getattr(cfg.safeguards, f.name, None)
        if value is not None and value < getattr(base, f.name):
            yield (
                f"safeguards.{_camel(f.name)}",
                f"{value!r} is looser than {cfg.environment}'s {getattr(base, f.name)!r}; a stack can tighten "
                "its environment's safeguards, not loosen them (remove the key)",
            )


def _zone_count(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    wanted, azs = cfg.safeguards_in_force, cfg.network.availability_zones
    if len(azs) < wanted.min_availability_zones:
        yield (
            "network.availabilityZones",
            f"{cfg.environment} needs at least {wanted.min_availability_zones} zones, {len(azs)} given",
        )


def _nat_layout(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    if cfg.safeguards_in_force.nat_gateway_per_zone and cfg.network.nat_gateways == "single":
        yield ("network.natGateways", f"{cfg.environment} needs 'one-per-az' (a single NAT is a zonal SPOF)")


# Independent rules, so that one whose inputs failed validation does not hide the others.
SAFEGUARD_RULES = (_loosened, _zone_count, _nat_layout)


def safeguard_problems(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    """(key, message) for every safeguard the stack tries to loosen, and every value it breaks."""
    for rule in SAFEGUARD_RULES:
        yield from rule(cfg)


def environments_table() -> list[dict[str, object]]:
    """Rows for README and `platformctl` (camelCase keys as in `k8s-platform:safeguards`)."""
    return [
        {"environment": env, **{_camel(f.name): getattr(s, f.name) for f in fields(Safeguards)}}
        for env, s in ENVIRONMENTS.items()
    ]
