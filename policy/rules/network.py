"""Network exposure: world-open admin ports, all-traffic ingress, public IPs on subnets, VPC flow
logs, and internet-facing Kubernetes API load balancers."""

from __future__ import annotations

import ipaddress

from pulumi_policy import Severity

from .common import (
    as_list, checkov, cis_aws, cis_eks, get, resource_rule, resources_of, stack_rule, str_list, transitive_dependencies,
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
TCP = ("tcp", "6")


def _is_world(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def ingress_entries(props, resource_type):
    """(protocol, fromPort, toPort, [cidrs]) of every ingress a security-group resource opens."""
    if resource_type == SECURITY_GROUP:
        for rule in as_list(get(props, "ingress")):
            yield (str(get(rule, "protocol", default="")).lower(), get(rule, "fromPort", default=0),
                   get(rule, "toPort", default=0),
                   str_list(get(rule, "cidrBlocks")) + str_list(get(rule, "ipv6CidrBlocks")))
    elif resource_type == SECURITY_GROUP_RULE:
        if get(props, "type") == "ingress":
            yield (str(get(props, "protocol", default="")).lower(), get(props, "fromPort", default=0),
                   get(props, "toPort", default=0),
                   str_list(get(props, "cidrBlocks")) + str_list(get(props, "ipv6CidrBlocks")))
    elif resource_type == INGRESS_RULE:
        cidrs = [c for c in (get(props, "cidrIpv4"), get(props, "cidrIpv6")) if c]
        yield (str(get(props, "ipProtocol", default="")).lower(), get(props, "fromPort", default=0),
               get(props, "toPort", default=0), cidrs)


def _world_admin_ports(props, cfg, report, args) -> None:
    for protocol, from_port, to_port, cidrs in ingress_entries(props, args.resource_type):
        world = [c for c in cidrs if _is_world(c)]
        if not world:
            continue
        # Numbers arrive as floats through the engine's protobuf Struct.
        from_port, to_port = int(from_port), int(to_port)
        for low, high in ((int(p[0]), int(p[1])) for p in cfg["adminPorts"]):
            if protocol in ALL_PROTOCOLS:
                report(f"ingress of all protocols from {', '.join(world)} exposes admin port(s) {low}-{high}")
                return
            if protocol in TCP and from_port <= high and to_port >= low:
                ports = f"{low}" if low == high else f"{low}-{high}"
                report(f"ingress tcp {from_port}-{to_port} from {', '.join(world)} exposes admin port {ports} "
                       "(SSH, Kubernetes API, kubelet or etcd) to the internet")


def _world_all_traffic(props, cfg, report, args) -> None:
    for protocol, _from, _to, cidrs in ingress_entries(props, args.resource_type):
        world = [c for c in cidrs if _is_world(c)]
        if world and protocol in ALL_PROTOCOLS:
            report(f"ingress of every protocol and port from {', '.join(world)}")


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
                report(f"load balancer '{lb.name}' serves the Kubernetes API (listener port {port}) and is "
                       "internet-facing; make it internal (policy config allowInternetFacing)", lb.urn)


SG_TYPES = [SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE]

RULES = [
    resource_rule(
        "no-world-open-admin-ports",
        "No security group opens SSH, the Kubernetes API, the kubelet or etcd to 0.0.0.0/0 or ::/0.",
        Severity.CRITICAL, [checkov("CKV_AWS_24"), cis_aws("5.2"), cis_aws("5.3"), cis_eks("5.4.2")], SG_TYPES, _world_admin_ports,
        {"adminPorts": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}},
                        "default": [[22, 22], [6443, 6443], [10250, 10250], [2379, 2380]],
                        "description": "inclusive [from, to] port ranges that must never be world-open"}}),
    resource_rule(
        "no-world-open-all-traffic", "No security group admits every protocol and port from the internet.",
        Severity.CRITICAL, [checkov("CKV_AWS_277")], SG_TYPES, _world_all_traffic),
    resource_rule(
        "subnet-no-auto-public-ip", "Subnets do not hand out public IPs on launch.",
        Severity.MEDIUM, [checkov("CKV_AWS_130")], [SUBNET], _subnet_public_ip),
    stack_rule(
        "vpc-flow-logs-enabled", "Every VPC has flow logs.",
        Severity.MEDIUM, [cis_aws("3.7"), checkov("CKV2_AWS_11")], [VPC, FLOW_LOG], _flow_logs),
    stack_rule(
        "k8s-api-load-balancer-internal", "A load balancer in front of the Kubernetes API is internal.",
        Severity.HIGH, [cis_eks("5.4.2")], [LOAD_BALANCER, LISTENER], _api_lb_internal,
        {"apiPorts": {"type": "array", "items": {"type": "integer"}, "default": [6443]},
         "allowInternetFacing": {"type": "boolean", "default": False}}),
]
