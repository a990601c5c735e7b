"""Network exposure: world-open admin ports, all-traffic ingress, public IPs on subnets, VPC flow
logs, and internet-facing Kubernetes API load balancers."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from pulumi_policy import Severity

from .common import (
    as_list,
    checkov,
    cis_aws,
    cis_eks,
    get,
    peek,
    resource_rule,
    resources_of,
    stack_rule,
    str_list,
    transitive_dependencies,
    truthy,
)

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SUBNET = "aws:ec2/subnet:Subnet"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
ALL_PROTOCOLS = ("-1", "all")
SG_TYPES = [SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE]
TCP = ("tcp", "6")


# Sources that are not the internet: RFC 1918, carrier-grade NAT (pod CIDRs), loopback, link-local,
# and IPv6 unique-local / link-local / loopback. Everything else an ingress admits is public.
_NOT_PUBLIC = [
    ipaddress.ip_network(c)
    for c in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
]
# Names of the admin ports, for messages.
PORT_NAMES = {
    22: "SSH",
    3389: "RDP",
    5985: "WinRM",
    5986: "WinRM",
    6443: "Kubernetes API",
    10250: "kubelet",
    2379: "etcd",
    2380: "etcd",
}
WORLD_OPEN_SCHEMA = {
    "worldOpenIpv4Prefix": {
        "type": "integer",
        "minimum": 0,
        "maximum": 32,
        "default": 8,
        "description": "public IPv4 sources that together cover at least a /N (default /8: "
        "1.0.0.0/8, or 0.0.0.0/1 + 128.0.0.0/1) count as world-open",
    },
    "worldOpenIpv6Prefix": {
        "type": "integer",
        "minimum": 0,
        "maximum": 128,
        "default": 32,
        "description": "public IPv6 sources that together cover at least a /N count as world-open",
    },
}


def _networks(cidrs):
    out = []
    for c in cidrs:
        try:
            out.append(ipaddress.ip_network(str(c), strict=False))
        except ValueError:
            continue
    return out


def public_sizes(cidrs) -> tuple[int, int]:
    """(IPv4, IPv6) count of public addresses the sources admit together (overlaps counted once)."""
    return _public_sizes(tuple(str(c) for c in cidrs))


@lru_cache(maxsize=4096)
def _public_sizes(cidrs: tuple[str, ...]) -> tuple[int, int]:
    # Cached: every security-group rule of every plan asks, mostly for the same few ranges, and the
    # address arithmetic measured 0.6 ms a call.
    sizes = [0, 0]
    for version, idx in ((4, 0), (6, 1)):
        nets = list(ipaddress.collapse_addresses(n for n in _networks(cidrs) if n.version == version))
        for private in (p for p in _NOT_PUBLIC if p.version == version):
            kept = []
            for net in nets:
                if private.subnet_of(net):
                    kept.extend(net.address_exclude(private))
                elif not net.subnet_of(private):
                    kept.append(net)
            nets = list(ipaddress.collapse_addresses(kept))
        sizes[idx] = sum(n.num_addresses for n in nets)
    return sizes[0], sizes[1]


def is_world_open(cidrs, cfg) -> bool:
    v4, v6 = public_sizes(cidrs)
    return v4 >= 2 ** (32 - int(cfg["worldOpenIpv4Prefix"])) or v6 >= 2 ** (128 - int(cfg["worldOpenIpv6Prefix"]))


def public_sources(cidrs) -> list[str]:
    return [str(c) for c in cidrs if any(public_sizes([c]))]


def exposed_admin_ranges(protocol, from_port, to_port, admin_ports) -> list[tuple[int, int]]:
    """The admin port ranges (clipped to the rule) an ingress entry opens; all protocols open all of them."""
    ranges = [(int(p[0]), int(p[1])) for p in admin_ports]
    if protocol in ALL_PROTOCOLS:
        return ranges
    if protocol not in TCP:
        return []
    # Numbers arrive as floats through the engine's protobuf Struct.
    low_rule, high_rule = int(from_port), int(to_port)
    return [(max(low, low_rule), min(high, high_rule)) for low, high in ranges if low_rule <= high and high_rule >= low]


def describe_ports(ranges) -> str:
    parts = []
    for low, high in ranges:
        names = sorted({name for port, name in PORT_NAMES.items() if low <= port <= high})
        label = f"{low}" if low == high else f"{low}-{high}"
        parts.append(f"{label} ({'/'.join(names)})" if names else label)
    return ", ".join(parts)


def admin_exposure(entries, cfg):
    """{admin range: sources} of the entries that open that range, for the ranges their sources make world-open."""
    by_range: dict[tuple[int, int], list[str]] = {}
    for protocol, from_port, to_port, cidrs in entries:
        for rng in exposed_admin_ranges(protocol, from_port, to_port, cfg["adminPorts"]):
            by_range.setdefault(rng, []).extend(cidrs)
    return {rng: cidrs for rng, cidrs in by_range.items() if is_world_open(cidrs, cfg)}


def ingress_entries(props, resource_type):
    """(protocol, fromPort, toPort, [cidrs]) of every ingress a security-group resource opens."""
    if resource_type == SECURITY_GROUP:
        for rule in as_list(get(props, "ingress")):
            yield (
                str(get(rule, "protocol", default="")).lower(),
                get(rule, "fromPort", default=0),
                get(rule, "toPort", default=0),
                str_list(get(rule, "cidrBlocks")) + str_list(get(rule, "ipv6CidrBlocks")),
            )
    elif resource_type == SECURITY_GROUP_RULE:
        if get(props, "type") == "ingress":
            yield (
                str(get(props, "protocol", default="")).lower(),
                get(props, "fromPort", default=0),
                get(props, "toPort", default=0),
                str_list(get(props, "cidrBlocks")) + str_list(get(props, "ipv6CidrBlocks")),
            )
    elif resource_type == INGRESS_RULE:
        cidrs = [c for c in (get(props, "cidrIpv4"), get(props, "cidrIpv6")) if c]
        yield (
            str(get(props, "ipProtocol", default="")).lower(),
            get(props, "fromPort", default=0),
            get(props, "toPort", default=0),
            cidrs,
        )


def _entry_label(protocol, from_port, to_port) -> str:
    return "all protocols" if protocol in ALL_PROTOCOLS else f"{protocol} {int(from_port)}-{int(to_port)}"


def _world_admin_ports(props, cfg, report, args) -> None:
    entries = list(ingress_entries(props, args.resource_type))
    exposed = admin_exposure(entries, cfg)
    if not exposed:
        return
    sources = sorted({c for cidrs in exposed.values() for c in public_sources(cidrs)})
    opening = sorted(
        {
            _entry_label(p, f, t)
            for p, f, t, c in entries
            if public_sources(c) and exposed_admin_ranges(p, f, t, cfg["adminPorts"])
        }
    )
    report(
        f"ingress {', '.join(opening)} from {', '.join(sources)} exposes admin port(s) "
        f"{describe_ports(sorted(exposed))} to the internet (public sources that together cover a "
        f"/{int(cfg['worldOpenIpv4Prefix'])} or an IPv6 /{int(cfg['worldOpenIpv6Prefix'])} count as world-open)"
    )


def _target_group(res) -> str:
    """Which security group an ingress resource opens: its own URN for a group, else the group it names."""
    if res.resource_type == SECURITY_GROUP:
        return res.urn
    for dep in res.property_dependencies.get("securityGroupId", []) or []:
        if dep.resource_type == SECURITY_GROUP:
            return dep.urn
    sg_id = peek(res.props, "securityGroupId")
    if isinstance(sg_id, str) and sg_id:
        return f"id:{sg_id}"
    sgs = [d for d in res.dependencies if d.resource_type == SECURITY_GROUP]
    return sgs[0].urn if len(sgs) == 1 else res.urn


def _world_admin_ports_combined(resources, cfg, report, args) -> None:
    groups: dict[str, list] = {}
    for res in resources_of(resources, *SG_TYPES):
        groups.setdefault(_target_group(res), []).append(res)
    for members in groups.values():
        if len(members) < 2:
            continue
        per_member = {m.urn: list(ingress_entries(m.props, m.resource_type)) for m in members}
        alone = set().union(*(admin_exposure(e, cfg) for e in per_member.values()))
        combined = admin_exposure([e for es in per_member.values() for e in es], cfg)
        new = sorted(rng for rng in combined if rng not in alone)  # single resources: no-world-open-admin-ports
        if not new:
            continue
        contributing = [
            m
            for m in members
            if any(
                exposed_admin_ranges(p, f, t, cfg["adminPorts"]) and public_sources(c)
                for p, f, t, c in per_member[m.urn]
            )
        ]
        sources = sorted({c for rng in new for c in public_sources(combined[rng])})
        for m in contributing:
            report(
                f"ingress rules {', '.join(x.name for x in contributing)} on one security group together admit "
                f"{', '.join(sources)}, exposing admin port(s) {describe_ports(new)} to the internet",
                m.urn,
            )


def _world_all_traffic(props, cfg, report, args) -> None:
    for protocol, _from, _to, cidrs in ingress_entries(props, args.resource_type):
        if protocol in ALL_PROTOCOLS and is_world_open(cidrs, cfg):
            report(f"ingress of every protocol and port from {', '.join(public_sources(cidrs))}")


def _subnet_public_ip(props, cfg, report, args) -> None:
    if truthy(get(props, "mapPublicIpOnLaunch", default=False)):
        report("mapPublicIpOnLaunch is true: every instance launched here gets a public IP")


def _flow_logs(resources, cfg, report, args) -> None:
    logged = set()
    for fl in resources_of(resources, FLOW_LOG):
        logged.update(d.urn for d in transitive_dependencies(fl))
    for vpc in resources_of(resources, VPC):
        if vpc.urn not in logged:
            report(f"VPC '{vpc.name}' has no flow log", vpc.urn)


def _api_lb_internal(resources, cfg, report, args) -> None:
    if cfg["allowInternetFacing"]:
        return
    for listener in resources_of(resources, LISTENER):
        port = get(listener.props, "port")
        if port is None or int(port) not in cfg["apiPorts"]:
            continue
        for lb in (d for d in transitive_dependencies(listener) if d.resource_type == LOAD_BALANCER):
            if not truthy(get(lb.props, "internal", default=False)):
                report(
                    f"load balancer '{lb.name}' serves the Kubernetes API (listener port {port}) and is "
                    "internet-facing; make it internal (policy config allowInternetFacing)",
                    lb.urn,
                )


ADMIN_PORTS_SCHEMA = {
    "type": "array",
    "items": {"type": "array", "items": {"type": "integer"}},
    "default": [[22, 22], [3389, 3389], [5985, 5986], [6443, 6443], [10250, 10250], [2379, 2380]],
    "description": "inclusive [from, to] port ranges that must never be world-open (SSH, RDP, WinRM, "
    "Kubernetes API, kubelet, etcd)",
}

RULES = [
    resource_rule(
        "no-world-open-admin-ports",
        "No security group opens SSH, RDP, WinRM, the Kubernetes API, the kubelet or etcd to the internet "
        "(0.0.0.0/0, ::/0, or public sources as broad as a /8 or an IPv6 /32 together).",
        Severity.CRITICAL,
        [checkov("CKV_AWS_24"), cis_aws("5.2"), cis_aws("5.3"), cis_eks("5.4.2")],
        SG_TYPES,
        _world_admin_ports,
        {"adminPorts": ADMIN_PORTS_SCHEMA, **WORLD_OPEN_SCHEMA},
    ),
    stack_rule(
        "no-world-open-admin-ports-combined",
        "Several ingress rules on one security group do not together open an admin port to the internet.",
        Severity.CRITICAL,
        [cis_aws("5.2"), cis_aws("5.3"), checkov("CKV_AWS_24")],
        SG_TYPES,
        _world_admin_ports_combined,
        {"adminPorts": ADMIN_PORTS_SCHEMA, **WORLD_OPEN_SCHEMA},
    ),
    resource_rule(
        "no-world-open-all-traffic",
        "No security group admits every protocol and port from the internet.",
        Severity.CRITICAL,
        [checkov("CKV_AWS_277")],
        SG_TYPES,
        _world_all_traffic,
        dict(WORLD_OPEN_SCHEMA),
    ),
    resource_rule(
        "subnet-no-auto-public-ip",
        "Subnets do not hand out public IPs on launch.",
        Severity.MEDIUM,
        [checkov("CKV_AWS_130")],
        [SUBNET],
        _subnet_public_ip,
    ),
    stack_rule(
        "vpc-flow-logs-enabled",
        "Every VPC has flow logs.",
        Severity.MEDIUM,
        [cis_aws("3.7"), checkov("CKV2_AWS_11")],
        [VPC, FLOW_LOG],
        _flow_logs,
    ),
    stack_rule(
        "k8s-api-load-balancer-internal",
        "A load balancer in front of the Kubernetes API is internal.",
        Severity.HIGH,
        [cis_eks("5.4.2")],
        [LOAD_BALANCER, LISTENER],
        _api_lb_internal,
        {
            "apiPorts": {"type": "array", "items": {"type": "integer"}, "default": [6443]},
            "allowInternetFacing": {"type": "boolean", "default": False},
        },
    ),
]
