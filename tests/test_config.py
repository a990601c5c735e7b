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
        (
            "dev",
            "network.availabilityZones",
            ["us-east-1a", "us-east-1a"],
            "k8s-platform:network.availabilityZones",
            "distinct",
        ),
        (
            "dev",
            "network.availabilityZones",
            ["eu-west-1a", "eu-west-1b"],
            "k8s-platform:network.availabilityZones",
            "not in region us-east-1",
        ),
        (
            "prod",
            "network.availabilityZones",
            ["us-east-1a", "us-east-1b"],
            "k8s-platform:network.availabilityZones",
            "prod needs at least 3",
        ),
        ("prod", "network.natGateways", "single", "k8s-platform:network.natGateways", "one-per-az"),
        ("dev", "network.natGateways", "none", "k8s-platform:network.natGateways", "'one-per-az' or 'single'"),
        ("dev", "network.interfaceEndpoints", ["sts", "bogus"], "k8s-platform:network.interfaceEndpoints[1]", "'sts'"),
        (
            "dev",
            "network.interfaceEndpoints",
            ["sts", "ec2", "sts"],
            "k8s-platform:network.interfaceEndpoints",
            "listed twice: sts",
        ),
        ("dev", "network.flowLogs.retentionDays", 10, "k8s-platform:network.flowLogs.retentionDays", "14"),
        ("dev", "network.vpcCidrr", "10.0.0.0/16", "k8s-platform:network.vpcCidrr", "not a known key"),
        ("dev", "cluster.name", "Dev_Cluster", "k8s-platform:cluster.name", "DNS-safe"),
        ("dev", "cluster.name", "a" * 40, "k8s-platform:cluster.name", "at most 32"),
        ("dev", "cluster.kind", "gke", "k8s-platform:cluster.kind", "'eks' or 'k3s'"),
        ("dev", "cluster.kind", DELETE, "k8s-platform:cluster.kind", "is required"),
        ("dev", "environment", "qa", "k8s-platform:environment", "'dev', 'staging', 'prod' or 'ci'"),
        ("dev", "accountId", "1234", "k8s-platform:accountId", "12-digit"),
        ("dev", "aws:region", "useast1", "aws:region", "not an AWS region"),
        ("dev", "aws:region", "cn-north-1", "aws:region", "commercial 'aws' partition"),
        ("dev", "aws:region", "us-gov-west-1", "aws:region", "commercial 'aws' partition"),
        ("dev", "tags", {"owner": "x"}, "k8s-platform:tags", "cost-center"),
        (
            "dev",
            "tags",
            {"owner": "x", "cost-center": "y", "aws:team": "z"},
            "k8s-platform:tags.aws:team",
            "aws: prefix is reserved",
        ),
        (
            "dev",
            "tags",
            {"owner": "x", "cost-center": "y" * 257},
            "k8s-platform:tags.cost-center",
            "values at most 256",
        ),
        ("dev", "networking", {}, "k8s-platform:networking", "not a known key"),
    ],
)
def test_each_rule_names_its_key(mutate_config, stack, key, value, expected_key, expected_text):
    problems = problems_for(mutate_config(stack, key, value))
    matching = [p for p in problems if p.startswith(expected_key + ":")]
    assert matching, problems
    assert expected_text in matching[0], matching[0]


def test_pod_range_as_vpc_block_is_refused(mutate_config):
    # A VPC block must be RFC 1918, pod ranges are 100.64.0.0/10 or 198.19.0.0/16: disjoint by construction.
    raw = mutate_config("dev", "network.vpcCidr", "198.19.0.0/16")
    raw["k8s-platform:network"]["podCidr"] = "198.19.0.0/18"
    problems = problems_for(raw)
    assert problems == [
        "k8s-platform:network.vpcCidr: '198.19.0.0/16' must be a private (RFC 1918) range: within "
        "10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
    ]


def test_one_error_per_problem(mutate_config):
    raw = mutate_config("dev", "network.vpcCidr", "300.0.0.0/16")
    raw["k8s-platform:cluster"]["name"] = "BAD NAME"
    problems = problems_for(raw)
    assert len(problems) == 2
    assert {p.split(":", 2)[1] for p in problems} == {"network.vpcCidr", "cluster.name"}


def _engine_config(raw: dict) -> dict[str, str]:
    """Config as the Pulumi CLI hands it to the language host: every value a string, objects as JSON."""
    import json

    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


@pytest.mark.parametrize("route", ["PULUMI_CONFIG", "set_all_config"])
def test_a_real_run_reads_the_same_config_as_offline(monkeypatch, route):
    """`pulumi up`: the language host passes config in PULUMI_CONFIG (a JSON map of strings) and its
    exec shim copies it into the runtime config; both routes give the stack file's values."""
    import json

    import pulumi.runtime.config as runtime_config

    from components.config import read_pulumi_config

    engine = _engine_config(shipped_config("dev"))
    token = runtime_config.CONFIG.set({})
    try:
        if route == "PULUMI_CONFIG":
            monkeypatch.setenv("PULUMI_CONFIG", json.dumps(engine))
        else:
            monkeypatch.delenv("PULUMI_CONFIG", raising=False)
            runtime_config.set_all_config(engine)
        assert read_pulumi_config() == shipped_config("dev")
        assert parse_stack_config(read_pulumi_config()).cluster.name == "dev-k3s"
    finally:
        runtime_config.CONFIG.reset(token)


def test_bad_config_in_a_real_run_is_one_run_error_before_any_resource(monkeypatch, mutate_config):
    """The engine shows a `pulumi.RunError` as one clean error (no traceback); nothing is registered."""
    import pulumi
    import pulumi.runtime.config as runtime_config

    import programs.stack as stack

    raw = mutate_config("dev", "network.podCidr", "10.99.0.0/16")
    raw["k8s-platform:cluster"]["name"] = "BAD NAME"
    built: list[object] = []
    monkeypatch.setattr(stack, "build_stack", lambda cfg: built.append(cfg) or {})
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    token = runtime_config.CONFIG.set(_engine_config(raw))
    try:
        with pytest.raises(pulumi.RunError) as info:
            stack.main()
    finally:
        runtime_config.CONFIG.reset(token)
    message = str(info.value)
    assert "k8s-platform:network.podCidr" in message and "k8s-platform:cluster.name" in message
    assert built == []


@pytest.mark.parametrize(
    ("instance_type", "arch"),
    [
        ("a1.large", "arm64"),
        ("t4g.small", "arm64"),
        ("x2gd.large", "arm64"),
        ("im4gn.large", "arm64"),
        ("g5g.xlarge", "arm64"),
        ("g4dn.xlarge", "x86_64"),
        ("m7i-flex.large", "x86_64"),
        ("c6a.large", "x86_64"),
    ],
)
def test_instance_architecture(instance_type, arch):
    from components.config import instance_architecture

    assert instance_architecture(instance_type) == arch


def test_a_section_of_the_wrong_type_names_no_python_class():
    """A string where a mapping belongs: the message says what to write, not the model class behind it."""
    from components.config import ConfigError, parse_stack_config
    from tests.conftest import mutated_config

    try:
        parse_stack_config(mutated_config("prod", "cluster.eks.upgradePolicy", "EXTENDED"))
    except ConfigError as exc:
        (problem,) = exc.problems
    assert (
        problem
        == "k8s-platform:cluster.eks.upgradePolicy: Input should be a mapping (key: value) (got a string EXTENDED)"
    )
