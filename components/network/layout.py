"""Pure subnet planning for the platform VPC.

Per availability zone: a public subnet (load balancers, NAT), a private node subnet (nodes,
internal load balancers, interface endpoints) and a pod subnet carved from the secondary pod CIDR
(VPC CNI custom networking / Karpenter pods). The primary CIDR is split into 16 equal blocks:
blocks 0..n-1 hold the node subnets, the last block is cut into small public subnets, so node
subnets stay large and public ones small.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Literal

Tier = Literal["public", "private", "pod"]

# How many equal blocks the VPC CIDR is cut into: 16 leaves room for 6 zones of node subnets
# plus spare blocks for later tiers (databases, transit) without renumbering.
_VPC_BLOCKS_BITS = 4
# Public subnets are cut from the last block into this many more bits (a /16 VPC gives /24s).
_PUBLIC_EXTRA_BITS = 4


@dataclass(frozen=True)
class SubnetPlan:
    tier: Tier
    az: str
    cidr: str

    @property
    def key(self) -> str:
        """A stable, readable resource-name suffix, e.g. `private-us-east-1a`."""
        return f"{self.tier}-{self.az}"


def plan_subnets(vpc_cidr: str, pod_cidr: str, azs: list[str]) -> list[SubnetPlan]:
    vpc = ipaddress.ip_network(vpc_cidr)
    pods = ipaddress.ip_network(pod_cidr)
    if len(azs) > 2**_VPC_BLOCKS_BITS - 1:
        raise ValueError(f"at most {2**_VPC_BLOCKS_BITS - 1} zones fit the VPC layout")
    blocks = list(vpc.subnets(prefixlen_diff=_VPC_BLOCKS_BITS))
    public_pool = list(blocks[-1].subnets(prefixlen_diff=_PUBLIC_EXTRA_BITS))
    pod_bits = max(1, math.ceil(math.log2(len(azs))))
    pod_pool = list(pods.subnets(prefixlen_diff=pod_bits))
    plans: list[SubnetPlan] = []
    for i, az in enumerate(azs):
        plans.append(SubnetPlan("public", az, str(public_pool[i])))
        plans.append(SubnetPlan("private", az, str(blocks[i])))
        plans.append(SubnetPlan("pod", az, str(pod_pool[i])))
    return plans


def nat_gateway_azs(azs: list[str], layout: Literal["one-per-az", "single"]) -> list[str]:
    """Zones that get a NAT gateway: every zone (zonal isolation) or only the first (dev cost)."""
    return list(azs) if layout == "one-per-az" else [azs[0]]


def nat_for_az(az: str, nat_azs: list[str]) -> str:
    """The NAT gateway zone a private route table in `az` sends egress through."""
    return az if az in nat_azs else nat_azs[0]


def subnet_tags(plan: SubnetPlan, cluster_name: str) -> dict[str, str]:
    """Discovery tags: ELB roles for the AWS Load Balancer Controller, Karpenter discovery on node subnets."""
    tags = {"Name": f"{cluster_name}-{plan.key}", "tier": plan.tier, f"kubernetes.io/cluster/{cluster_name}": "shared"}
    if plan.tier == "public":
        tags["kubernetes.io/role/elb"] = "1"
    elif plan.tier == "private":
        tags["kubernetes.io/role/internal-elb"] = "1"
        tags["karpenter.sh/discovery"] = cluster_name
    return tags


def endpoint_service_name(region: str, service: str) -> str:
    return f"com.amazonaws.{region}.{service}"
