"""`cluster.eks` resilience settings: node auto repair, deletion protection, the provisioned
control-plane tier and zonal shift (the pulumi-aws 7.51 `eks.Cluster`/`eks.NodeGroup` fields
`nodeRepairConfig`, `deletionProtection`, `controlPlaneScalingConfig.tier`, `zonalShiftConfig.enabled`).

Deletion protection: EKS refuses `DeleteCluster` while it is on, whatever Pulumi's `protect`
says (a `pulumi destroy --remove`, a state-file slip or an operator in the console). Its default
comes from the environment (`Safeguards.cluster_deletion_protection`, on in staging and prod); a
stack of such an environment may turn it off only with the explicit
`cluster.eks.allowDeletionUnprotected: true` (a deliberate teardown).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from components.config.base import Model

if TYPE_CHECKING:  # pragma: no cover
    from components.config.stack import StackConfig

# EKS Provisioned Control Plane tiers, as the pulumi-aws 7.51 ClusterControlPlaneScalingConfig documents them.
ControlPlaneTier = Literal["standard", "tier-xl", "tier-2xl", "tier-4xl", "tier-8xl"]


class NodeRepairConfig(Model):
    """Managed node group auto repair: EKS replaces or reboots nodes the node monitoring agent (or the
    kubelet's Ready condition) reports unhealthy."""

    enabled: bool = Field(
        True,
        description=(
            "Node auto repair on the system node group (with the `eks-node-monitoring-agent` add-on); the policy "
            "pack requires it in staging and prod."
        ),
    )
    max_parallel_nodes_repaired_count: int | None = Field(
        None,
        ge=1,
        le=20,
        description=(
            "Most nodes EKS repairs at once (1-20); unset: EKS's default. 1 keeps at most one system node away."
        ),
    )


class ControlPlaneScalingConfig(Model):
    """EKS Provisioned Control Plane: a fixed, pre-scaled control-plane capacity tier."""

    tier: ControlPlaneTier = Field(
        "standard",
        description=(
            "`standard` (EKS scales the control plane itself, no extra charge) or a provisioned tier `tier-xl`, "
            "`tier-2xl`, `tier-4xl`, `tier-8xl` (billed per hour while set)."
        ),
    )


class ZonalShiftConfig(Model):
    """Amazon Application Recovery Controller zonal shift for the cluster."""

    enabled: bool = Field(
        False,
        description=(
            "Register the cluster for zonal shift: during an AZ impairment ARC (or you) shifts traffic away from "
            "the zone; needs workloads spread over every zone with spare capacity."
        ),
    )


def deletion_protection_in_force(cfg: "StackConfig") -> bool:
    """The cluster's `deletionProtection`: the stack's value, else its environment's default."""
    given = cfg.cluster.eks.deletion_protection
    return cfg.safeguards_in_force.cluster_deletion_protection if given is None else given


def eks_resilience_problems(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    if cfg.cluster.kind != "eks":
        return
    eks = cfg.cluster.eks
    required = cfg.safeguards_in_force.cluster_deletion_protection
    if eks.deletion_protection is False and required and not eks.allow_deletion_unprotected:
        yield (
            "cluster.eks.deletionProtection",
            f"{cfg.environment} clusters keep deletion protection (EKS refuses DeleteCluster while it is on); to "
            "delete this cluster on purpose also set cluster.eks.allowDeletionUnprotected: true",
        )
    if eks.allow_deletion_unprotected and eks.deletion_protection is not False:
        yield (
            "cluster.eks.allowDeletionUnprotected",
            "only applies with cluster.eks.deletionProtection: false (there is nothing to allow); remove it",
        )
