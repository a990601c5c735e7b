"""maxPods per instance type, computed the way AWS's max-pods calculator does (pure).

The VPC CNI gives every pod an address from the node's ENIs, so the ENI count and the IPv4
addresses per ENI bound how many pods fit:

- secondary-IP mode: each ENI's primary address is the node's own, leaving `ips - 1` pod slots per
  ENI; `+ 2` counts the host-network pods (aws-node, kube-proxy) that need no VPC address;
- prefix delegation: each of those slots holds a /28 prefix (16 addresses) instead of one address;
- custom networking: the primary ENI stays in the node subnet and carries no pods (pods live on
  secondary ENIs in the pod subnet), so one ENI fewer counts;
- the result is capped like the calculator does: 110 below 30 vCPUs, 250 from 30 up (kubelet and
  the control plane are tested to those densities; more IPs than that is not more schedulable pods).

Note: the published `eni-max-pods.txt` lists the uncapped secondary-IP figure (c5.18xlarge: 737);
the calculator, and therefore this module, applies the vCPU cap (250).

Instance data: `components/data/instance_network_limits.json`, a small documented subset
(see its `_source`): ENIs and IPv4 per ENI from awslabs/amazon-eks-ami, vCPUs from the EC2
instance-type documentation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# Addresses per delegated prefix: a /28.
PREFIX_ADDRESSES = 16
# Pods on the host network (aws-node, kube-proxy) that consume no VPC address.
HOST_NETWORK_PODS = 2
LOW_CPU_CEILING = 110
HIGH_CPU_CEILING = 250
HIGH_CPU_THRESHOLD = 30

_DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "instance_network_limits.json"


@dataclass(frozen=True)
class InstanceNetworkLimits:
    instance_type: str
    vcpus: int
    max_enis: int
    ipv4_per_eni: int


def _load_limits() -> dict[str, InstanceNetworkLimits]:
    rows = json.loads(_DATA_FILE.read_text())["instances"]
    return {
        r["instanceType"]: InstanceNetworkLimits(r["instanceType"], r["vcpus"], r["maxEnis"], r["ipv4PerEni"])
        for r in rows
    }


INSTANCE_LIMITS: dict[str, InstanceNetworkLimits] = _load_limits()


def pod_ceiling(vcpus: int) -> int:
    """The calculator's density cap for an instance with `vcpus` vCPUs."""
    return LOW_CPU_CEILING if vcpus < HIGH_CPU_THRESHOLD else HIGH_CPU_CEILING


def max_pods(limits: InstanceNetworkLimits, *, prefix_delegation: bool, custom_networking: bool = False) -> int:
    """maxPods for the kubelet of an instance with these network limits."""
    pod_enis = limits.max_enis - 1 if custom_networking else limits.max_enis
    if pod_enis < 1:
        raise ValueError(f"{limits.instance_type}: custom networking needs at least 2 ENIs, it has {limits.max_enis}")
    slots_per_eni = limits.ipv4_per_eni - 1
    addresses_per_slot = PREFIX_ADDRESSES if prefix_delegation else 1
    uncapped = pod_enis * slots_per_eni * addresses_per_slot + HOST_NETWORK_PODS
    return min(uncapped, pod_ceiling(limits.vcpus))


def limits_for(instance_type: str) -> InstanceNetworkLimits:
    try:
        return INSTANCE_LIMITS[instance_type]
    except KeyError:
        raise ValueError(
            f"unknown instance type '{instance_type}': no ENI data in {_DATA_FILE.name}; "
            "add a row (ENIs and IPv4 per ENI from amazon-eks-ami, vCPUs from EC2) or pick a listed type"
        ) from None


def max_pods_for(instance_type: str, *, prefix_delegation: bool, custom_networking: bool = False) -> int:
    """maxPods for a named instance type; ValueError naming the type if it is not in the table."""
    return max_pods(limits_for(instance_type), prefix_delegation=prefix_delegation, custom_networking=custom_networking)
