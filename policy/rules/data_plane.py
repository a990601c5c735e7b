"""Optional data-plane pieces: EFS file systems encrypted with a customer-managed key, NFS never open to
the internet, and Fargate profiles only in private subnets."""

from __future__ import annotations

from pulumi_policy import Severity

from .common import (
    UNKNOWN,
    checkov,
    eks_best_practices,
    get,
    is_set,
    peek,
    resource_rule,
    resources_of,
    stack_rule,
    truthy,
)
from .network import (
    ALL_PROTOCOLS,
    SG_TYPES,
    SUBNET,
    TCP,
    WORLD_OPEN_SCHEMA,
    ingress_entries,
    is_world_open,
    public_sources,
)

EFS_FILE_SYSTEM = "aws:efs/fileSystem:FileSystem"
FARGATE_PROFILE = "aws:eks/fargateProfile:FargateProfile"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway"
NFS_PORT = 2049


def _efs_encrypted(props, cfg, report, args) -> None:
    if not truthy(get(props, "encrypted", default=False)):
        report("the file system is not encrypted at rest (set encrypted: true with a customer-managed KMS key)")
    elif not is_set(props, "kmsKeyId"):
        report(
            "the file system is encrypted with the AWS managed aws/elasticfilesystem key; use a customer-managed key"
        )


def _nfs_world_open(props, cfg, report, args) -> None:
    for protocol, from_port, to_port, cidrs in ingress_entries(props, args.resource_type):
        opens_nfs = protocol in ALL_PROTOCOLS or (
            protocol in TCP and int(from_port or 0) <= NFS_PORT <= int(to_port if to_port is not None else 0)
        )
        if opens_nfs and is_world_open(cidrs, cfg):
            report(
                f"ingress admits NFS (TCP {NFS_PORT}) from {', '.join(public_sources(cidrs))}: an EFS mount target "
                "behind it is reachable from the internet; admit the nodes' security group only"
            )


def _depends_on(resource, target) -> bool:
    return any(d.urn == target.urn for d in resource.dependencies)


def _public_subnet(subnet, resources) -> str | None:
    """Why a subnet of the stack is public (None if it is not): it maps public IPs, or its route table
    routes to an internet gateway."""
    maps = peek(subnet.props, "mapPublicIpOnLaunch", default=False)
    if maps is not UNKNOWN and truthy(maps):
        return "it maps public IPs on launch"
    tables = [
        d
        for a in resources_of(resources, ROUTE_TABLE_ASSOCIATION)
        if _depends_on(a, subnet)
        for d in a.dependencies
        if d.resource_type == ROUTE_TABLE
    ]
    routes = [r for r in resources_of(resources, ROUTE) if any(_depends_on(r, t) for t in tables)]
    for holder in [*tables, *routes]:
        if any(d.resource_type == INTERNET_GATEWAY for d in holder.dependencies):
            return "its route table sends traffic to an internet gateway"
    return None


def _fargate_private_subnets(resources, cfg, report, args) -> None:
    for profile in resources_of(resources, FARGATE_PROFILE):
        deps = profile.property_dependencies.get("subnetIds") or profile.dependencies
        subnets = [d for d in deps if d.resource_type == SUBNET]
        if not subnets:
            report(
                f"Fargate profile '{profile.name}': its subnets are not subnets of this stack, so they cannot be "
                "shown to be private; use the stack's private subnets",
                profile.urn,
            )
            continue
        for subnet in subnets:
            why = _public_subnet(subnet, resources)
            if why:
                report(
                    f"Fargate profile '{profile.name}' places pods in subnet '{subnet.name}', which is public "
                    f"({why}); Fargate profiles take private subnets only",
                    profile.urn,
                )


RULES = [
    resource_rule(
        "efs-encrypted-kms",
        "EFS file systems are encrypted at rest with a customer-managed KMS key.",
        Severity.HIGH,
        [checkov("CKV_AWS_42"), checkov("CKV_AWS_184")],
        [EFS_FILE_SYSTEM],
        _efs_encrypted,
    ),
    resource_rule(
        "efs-nfs-not-world-open",
        "No security group admits NFS (TCP 2049) from the internet.",
        Severity.CRITICAL,
        [eks_best_practices("security/network#security-groups")],
        SG_TYPES,
        _nfs_world_open,
        dict(WORLD_OPEN_SCHEMA),
    ),
    stack_rule(
        "eks-fargate-private-subnets",
        "Fargate profiles place pods in private subnets of the stack only.",
        Severity.HIGH,
        [eks_best_practices("security/network#fargate")],
        [FARGATE_PROFILE, SUBNET, ROUTE_TABLE, ROUTE_TABLE_ASSOCIATION, INTERNET_GATEWAY],
        _fargate_private_subnets,
    ),
]
