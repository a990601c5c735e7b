"""Network: the pure layout, and the wired VPC as captured from the shipped stacks' offline runs."""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from components.network.layout import nat_for_az, nat_gateway_azs, plan_subnets, subnet_tags

SUBNET = "aws:ec2/subnet:Subnet"


@pytest.mark.parametrize("azs", [["a1", "a2"], ["a1", "a2", "a3"], ["a1", "a2", "a3", "a4", "a5", "a6"]])
@pytest.mark.parametrize(("vpc", "pods"), [("10.0.0.0/16", "100.64.0.0/16"), ("172.16.0.0/20", "100.96.0.0/20")])
def test_layout_subnets_fit_and_never_overlap(azs, vpc, pods):
    plans = plan_subnets(vpc, pods, azs)
    assert len(plans) == 3 * len(azs)
    for p in plans:
        parent = ipaddress.ip_network(pods if p.tier == "pod" else vpc)
        assert ipaddress.ip_network(p.cidr).subnet_of(parent), p
    for a, b in itertools.combinations(plans, 2):
        assert not ipaddress.ip_network(a.cidr).overlaps(ipaddress.ip_network(b.cidr)), (a, b)
    for az in azs:
        assert sorted(p.tier for p in plans if p.az == az) == ["pod", "private", "public"]


def test_layout_node_subnets_are_larger_than_public():
    plans = {p.key: p for p in plan_subnets("10.0.0.0/16", "100.64.0.0/16", ["a1", "a2", "a3"])}
    assert ipaddress.ip_network(plans["private-a1"].cidr).num_addresses == 4096
    assert ipaddress.ip_network(plans["public-a1"].cidr).num_addresses == 256
    assert ipaddress.ip_network(plans["pod-a1"].cidr).num_addresses == 16384


def test_nat_layouts():
    azs = ["a1", "a2", "a3"]
    assert nat_gateway_azs(azs, "one-per-az") == azs
    assert nat_gateway_azs(azs, "single") == ["a1"]
    assert [nat_for_az(az, ["a1"]) for az in azs] == ["a1", "a1", "a1"]
    assert [nat_for_az(az, azs) for az in azs] == azs


def test_subnet_tags_by_tier():
    public, private, pod = plan_subnets("10.0.0.0/16", "100.64.0.0/16", ["a1", "a2"])[:3]
    assert subnet_tags(public, "c")["kubernetes.io/role/elb"] == "1"
    assert "kubernetes.io/role/internal-elb" not in subnet_tags(public, "c")
    assert subnet_tags(private, "c")["kubernetes.io/role/internal-elb"] == "1"
    assert subnet_tags(private, "c")["karpenter.sh/discovery"] == "c"
    assert "karpenter.sh/discovery" not in subnet_tags(pod, "c")
    assert all(subnet_tags(p, "c")["kubernetes.io/cluster/c"] == "shared" for p in (public, private, pod))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_plan_has_three_tiers_per_az_inside_their_cidrs(stack, request):
    run = request.getfixturevalue(f"{stack}_run")
    net = run.config.network
    vpc = run.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == net.vpc_cidr and vpc.inputs["enableDnsHostnames"] is True
    assoc = run.one("aws:ec2/vpcIpv4CidrBlockAssociation:VpcIpv4CidrBlockAssociation")
    assert assoc.inputs["cidrBlock"] == net.pod_cidr
    subnets = run.of_type(SUBNET)
    for az in net.availability_zones:
        tiers = sorted(s.inputs["tags"]["tier"] for s in subnets if s.inputs["availabilityZone"] == az)
        assert tiers == ["pod", "private", "public"]
    for s in subnets:
        parent = net.pod_cidr if s.inputs["tags"]["tier"] == "pod" else net.vpc_cidr
        assert ipaddress.ip_network(s.inputs["cidrBlock"]).subnet_of(ipaddress.ip_network(parent))
        assert s.inputs.get("mapPublicIpOnLaunch") is False
        if s.inputs["tags"]["tier"] == "pod":
            assert assoc.urn in s.dependencies, "pod subnets must wait for the secondary CIDR"


@pytest.mark.parametrize(("stack", "expected_nats"), [("dev", 1), ("prod", 3)])
def test_nat_layout_per_environment(stack, expected_nats, request):
    run = request.getfixturevalue(f"{stack}_run")
    nats = run.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == expected_nats
    private_rts = [r for r in run.of_type("aws:ec2/routeTable:RouteTable") if "private" in r.name]
    assert len(private_rts) == len(run.config.network.availability_zones)
    for rt in private_rts:
        (route,) = rt.inputs["routes"]
        assert route["cidrBlock"] == "0.0.0.0/0" and route["natGatewayId"].startswith("nat-")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_endpoints_and_flow_logs(stack, request):
    run = request.getfixturevalue(f"{stack}_run")
    endpoints = {
        e.inputs["serviceName"].rsplit(".", 1)[-1]
        if "ecr" not in e.inputs["serviceName"]
        else e.inputs["serviceName"].split(f"{run.config.region}.")[1]: e
        for e in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    assert endpoints["s3"].inputs["vpcEndpointType"] == "Gateway"
    for service in ("sts", "ec2", "ecr.api", "ecr.dkr", "ssm", "sqs"):
        assert endpoints[service].inputs["vpcEndpointType"] == "Interface"
        assert endpoints[service].inputs["privateDnsEnabled"] is True
    flow = run.one("aws:ec2/flowLog:FlowLog")
    assert flow.inputs["trafficType"] == "ALL"
    group = run.one("aws:cloudwatch/logGroup:LogGroup", "network-flow-logs")
    assert group.inputs["retentionInDays"] == run.config.network.flow_logs.retention_days
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_child_has_the_network_parent_and_tags(stack, request):
    run = request.getfixturevalue(f"{stack}_run")
    network = run.one("k8s-platform:network:Network")
    children = run.children_of(network.urn)
    assert len(children) > 20
    for child in children:
        if "tags" in child.inputs:
            assert child.inputs["tags"]["owner"] and child.inputs["tags"]["cost-center"], child.name


@pytest.mark.parametrize(("stack", "protected"), [("dev", False), ("prod", True)])
def test_flow_log_key_and_group_protected_in_prod_only(stack, protected, request):
    run = request.getfixturevalue(f"{stack}_run")
    assert run.one("aws:kms/key:Key", "network-flow-logs").protect is protected
    assert run.one("aws:cloudwatch/logGroup:LogGroup", "network-flow-logs").protect is protected


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_flow_log_role_has_what_the_service_needs_and_no_more(stack, request):
    """AWS's flow-logs role: Create/Describe streams, PutLogEvents, DescribeLogGroups; trust bound to this
    account's flow logs."""
    import json

    from tests.iam_eval import allows

    run = request.getfixturevalue(f"{stack}_run")
    account, region, cluster = run.config.account_id, run.config.region, run.config.cluster_name
    group_arn = f"arn:aws:logs:{region}:{account}:log-group:/aws/vpc/{cluster}/flow-logs"
    policy = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "network-flow-logs").inputs["policy"])
    for action in ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"):
        assert allows(policy, action, f"{group_arn}:log-stream:eni-1"), action
    # DescribeLogGroups is authorised on the account's log-group namespace, not on one group.
    assert allows(policy, "logs:DescribeLogGroups", f"arn:aws:logs:{region}:{account}:log-group::log-stream:")
    assert not allows(policy, "logs:PutLogEvents", f"arn:aws:logs:{region}:{account}:log-group:other:log-stream:x")
    assert not allows(policy, "logs:DeleteLogGroup", group_arn)

    trust = json.loads(run.one("aws:iam/role:Role", "network-flow-logs").inputs["assumeRolePolicy"])
    service = ("Service", "vpc-flow-logs.amazonaws.com")
    own = {"aws:SourceAccount": account, "aws:SourceArn": f"arn:aws:ec2:{region}:{account}:vpc-flow-log/fl-0123"}
    assert allows(trust, "sts:AssumeRole", context=own, principal=service)
    other = {
        "aws:SourceAccount": "999999999999",
        "aws:SourceArn": f"arn:aws:ec2:{region}:999999999999:vpc-flow-log/fl-1",
    }
    assert not allows(trust, "sts:AssumeRole", context=other, principal=service)
    assert not allows(
        trust,
        "sts:AssumeRole",
        context={**own, "aws:SourceArn": f"arn:aws:ec2:{region}:{account}:instance/i-1"},
        principal=service,
    )
