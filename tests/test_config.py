"""Stack config validation: the shipped stacks parse; every rule has a failing case naming its key."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_stack_config
from tests.conftest import DELETE, shipped_config


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stacks_are_valid(stack):
    cfg = parse_stack_config(shipped_config(stack))
    assert cfg.cluster.kind == {"dev": "k3s", "prod": "eks"}[stack]


def test_defaults_fill_in(mutate_config):
    cfg = parse_stack_config(mutate_config("prod", "network.interfaceEndpoints", DELETE))
    assert "sts" in cfg.network.interface_endpoints and "ecr.dkr" in cfg.network.interface_endpoints
    assert cfg.network.flow_logs.enabled


def problems_for(raw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_stack_config(raw)
    return info.value.problems


@pytest.mark.parametrize(
    ("stack", "key", "value", "expected_key", "expected_text"),
    [
        ("dev", "network.vpcCidr", "10.20.0.0/33", "k8s-platform:network.vpcCidr", "not a valid IPv4 CIDR"),
        ("dev", "network.vpcCidr", "10.20.0.1/16", "k8s-platform:network.vpcCidr", "not a valid IPv4 CIDR"),
        ("dev", "network.vpcCidr", "10.0.0.0/8", "k8s-platform:network.vpcCidr", "/16 to /20"),
        ("dev", "network.vpcCidr", "8.8.0.0/16", "k8s-platform:network.vpcCidr", "private"),
        ("dev", "network.podCidr", "10.200.0.0/16", "k8s-platform:network.podCidr", "100.64.0.0/10"),
        ("dev", "network.podCidr", "100.64.0.0/12", "k8s-platform:network.podCidr", "/16 to /20"),
        ("dev", "network.vpcCidr", "100.64.0.0/16", "k8s-platform:network.vpcCidr", "private"),
        ("dev", "network.availabilityZones", ["us-east-1a"], "k8s-platform:network.availabilityZones", "2 to 6"),
        ("dev", "network.availabilityZones", ["us-east-1a", "us-east-1a"], "k8s-platform:network.availabilityZones", "distinct"),
        ("dev", "network.availabilityZones", ["eu-west-1a", "eu-west-1b"], "k8s-platform:network.availabilityZones", "not in region us-east-1"),
        ("prod", "network.availabilityZones", ["us-east-1a", "us-east-1b"], "k8s-platform:network.availabilityZones", "prod needs at least 3"),
        ("prod", "network.natGateways", "single", "k8s-platform:network.natGateways", "one-per-az"),
        ("dev", "network.natGateways", "none", "k8s-platform:network.natGateways", "'one-per-az' or 'single'"),
        ("dev", "network.interfaceEndpoints", ["sts", "bogus"], "k8s-platform:network.interfaceEndpoints[1]", "'sts'"),
        ("dev", "network.flowLogs.retentionDays", 10, "k8s-platform:network.flowLogs.retentionDays", "14"),
        ("dev", "network.vpcCidrr", "10.0.0.0/16", "k8s-platform:network.vpcCidrr", "not a known key"),
        ("dev", "cluster.name", "Dev_Cluster", "k8s-platform:cluster.name", "DNS-safe"),
        ("dev", "cluster.name", "a" * 40, "k8s-platform:cluster.name", "at most 32"),
        ("dev", "cluster.kind", "gke", "k8s-platform:cluster.kind", "'eks' or 'k3s'"),
        ("dev", "cluster.kind", DELETE, "k8s-platform:cluster.kind", "is required"),
        ("dev", "environment", "qa", "k8s-platform:environment", "'dev', 'staging' or 'prod'"),
        ("dev", "accountId", "1234", "k8s-platform:accountId", "12-digit"),
        ("dev", "aws:region", "useast1", "aws:region", "not an AWS region"),
        ("dev", "tags", {"owner": "x"}, "k8s-platform:tags", "cost-center"),
        ("dev", "networking", {}, "k8s-platform:networking", "not a known key"),
    ],
)
def test_each_rule_names_its_key(mutate_config, stack, key, value, expected_key, expected_text):
    problems = problems_for(mutate_config(stack, key, value))
    matching = [p for p in problems if p.startswith(expected_key + ":")]
    assert matching, problems
    assert expected_text in matching[0], matching[0]


def test_pod_cidr_overlapping_vpc_is_refused(mutate_config):
    raw = mutate_config("dev", "network.vpcCidr", "198.19.0.0/16")
    raw["k8s-platform:network"]["podCidr"] = "198.19.0.0/18"
    problems = problems_for(raw)
    assert problems == ["k8s-platform:network.podCidr: 198.19.0.0/18 overlaps vpcCidr 198.19.0.0/16; they must be disjoint"]


def test_one_error_per_problem(mutate_config):
    raw = mutate_config("dev", "network.vpcCidr", "300.0.0.0/16")
    raw["k8s-platform:cluster"]["name"] = "BAD NAME"
    problems = problems_for(raw)
    assert len(problems) == 2
    assert {p.split(":", 2)[1] for p in problems} == {"network.vpcCidr", "cluster.name"}
