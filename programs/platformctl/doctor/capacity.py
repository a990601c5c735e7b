"""Pod IP capacity (EKS, VPC CNI with prefix delegation and custom networking): the pod subnets
hold enough free addresses for the pods the nodes advertise, and no node advertises more pods
than its ENIs can address. Both are "pods Pending on InsufficientIPs while CPU idles"."""

from __future__ import annotations

import math

from components.core.max_pods import INSTANCE_LIMITS, PREFIX_ADDRESSES, max_pods_for
from programs.platformctl.doctor.framework import Check, Context, Result, fail, ok, skipped, warn

ZONE_LABEL = "topology.kubernetes.io/zone"
TYPE_LABEL = "node.kubernetes.io/instance-type"


def _pods_per_node(ctx: Context) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in ctx.kube_items("/api/v1/pods") or []:
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        if spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed") or not spec.get("nodeName"):
            continue
        counts[spec["nodeName"]] = counts.get(spec["nodeName"], 0) + 1
    return counts


def pod_ip_headroom(ctx: Context) -> Result:
    subnets = ctx.outputs.get("podSubnetIds") or {}
    if not subnets:
        return skipped("the stack exports no pod subnets (podSubnetIds)")
    queried = ["GET /api/v1/nodes", "GET /api/v1/pods", f"ec2:DescribeSubnets {', '.join(subnets.values())}"]
    nodes = ctx.kube_items("/api/v1/nodes") or []
    used = _pods_per_node(ctx)
    # Free pod slots per zone, in /28 prefixes: the CNI allocates whole prefixes per ENI.
    needed: dict[str, int] = {}
    largest: dict[str, int] = {}
    for node in nodes:
        meta = node["metadata"]
        zone = (meta.get("labels") or {}).get(ZONE_LABEL)
        advertised = int(((node.get("status") or {}).get("capacity") or {}).get("pods", 0))
        free = max(advertised - used.get(meta["name"], 0), 0)
        needed[zone] = needed.get(zone, 0) + math.ceil(free / PREFIX_ADDRESSES) * PREFIX_ADDRESSES
        largest[zone] = max(largest.get(zone, 0), math.ceil(advertised / PREFIX_ADDRESSES) * PREFIX_ADDRESSES)
    described = ctx.aws("ec2").describe_subnets(SubnetIds=list(subnets.values()))["Subnets"]
    failing, tight = [], []
    for subnet in described:
        zone, available = subnet["AvailabilityZone"], subnet["AvailableIpAddressCount"]
        need = needed.get(zone, 0)
        line = f"{subnet['SubnetId']} ({zone}): {available} free addresses, {need} needed for the advertised pods"
        if available < need:
            failing.append(line)
        elif available < need + largest.get(zone, 0):
            tight.append(line + "; no room for one more node")
    if failing:
        return fail("pod subnets cannot address every pod the nodes advertise", queried, failing + tight)
    if tight:
        return warn("pod subnets are nearly full", queried, tight)
    return ok(f"{len(described)} pod subnets have room for every advertised pod and one more node per zone", queried)


def max_pods_vs_cni(ctx: Context) -> Result:
    custom_networking = bool(ctx.outputs.get("podSubnetIds"))
    queried = ["GET /api/v1/nodes"]
    over, unknown, checked = [], [], 0
    for node in ctx.kube_items("/api/v1/nodes") or []:
        name = node["metadata"]["name"]
        itype = (node["metadata"].get("labels") or {}).get(TYPE_LABEL)
        advertised = int(((node.get("status") or {}).get("capacity") or {}).get("pods", 0))
        if itype not in INSTANCE_LIMITS:
            unknown.append(f"{name}: instance type {itype or '(no label)'} has no ENI data")
            continue
        checked += 1
        real = max_pods_for(itype, prefix_delegation=True, custom_networking=custom_networking)
        if advertised > real:
            over.append(f"{name} ({itype}): advertises maxPods {advertised}, the CNI can address {real}")
    if over:
        return fail(f"{len(over)} nodes advertise more pods than their ENIs can address", queried, over + unknown)
    if unknown:
        return warn(f"{len(unknown)} nodes could not be compared", queried, unknown)
    if not checked:
        return skipped("no nodes registered", queried)
    return ok(f"{checked} nodes advertise at most what the CNI can address", queried)


CHECKS = [
    Check(
        "pod-ip-headroom",
        "pods Pending (InsufficientNumberOfIPs) while CPU and memory idle",
        "aws ec2 describe-subnets --subnet-ids <pod subnets> --query 'Subnets[].AvailableIpAddressCount'; "
        "kubectl describe pod <pending pod>  # FailedCreatePodSandBox",
        "add pod address space (a larger secondary CIDR such as 100.64.0.0/16 and new pod subnets); "
        "fewer, larger nodes waste fewer /28 prefixes",
        ("eks",),
        pod_ip_headroom,
    ),
    Check(
        "max-pods-vs-cni",
        "pods stuck ContainerCreating on some nodes: advertised maxPods above CNI capacity",
        "kubectl get nodes -o "
        "custom-columns=NAME:.metadata.name,TYPE:.metadata.labels.node\\.kubernetes\\.io/instance-type,"
        "PODS:.status.capacity.pods; kubectl -n kube-system logs ds/aws-node -c aws-node | grep -i insufficient",
        "set maxPods from the instance's ENI capacity (components/core/max_pods.py; EC2NodeClass kubelet.maxPods) "
        "and replace the nodes",
        ("eks",),
        max_pods_vs_cni,
    ),
]
