"""`cluster.k3s` config: defaults, and every refusal names its key and what is allowed."""

from __future__ import annotations

import pytest

from components.config import ConfigError, K3sConfig, instance_architecture, parse_stack_config
from programs.offline import run_offline


def problems(cfg) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(cfg)
    return err.value.problems


def test_defaults_are_a_pinned_v1_36_release_and_a_private_api():
    k3s = K3sConfig()
    assert k3s.version.startswith("v1.36.") and k3s.version.endswith("+k3s1")
    assert k3s.servers.count == 1 and k3s.api_access.internet_facing is False and k3s.api_access.allowed_cidrs == []
    assert k3s.ssh_key_name is None and k3s.ssh_source_security_group_id is None


@pytest.mark.parametrize("count", [2, 4, 6])
def test_even_server_count_is_refused_with_its_key(mutate_config, count):
    (msg,) = problems(mutate_config("dev", "cluster.k3s.servers", {"count": count}))
    assert msg.startswith("k8s-platform:cluster.k3s.servers.count: ")
    assert f"{count} servers is not allowed" in msg and "use 1 (dev), 3 or 5" in msg


def test_even_server_count_registers_no_resource(mutate_config):
    with pytest.raises(ConfigError):
        run_offline("dev", mutate_config("dev", "cluster.k3s.servers", {"count": 2}))


def test_internet_facing_needs_an_allowlist(mutate_config):
    (msg,) = problems(mutate_config("dev", "cluster.k3s.apiAccess", {"internetFacing": True}))
    assert msg.startswith("k8s-platform:cluster.k3s.apiAccess.allowedCidrs: ") and "non-empty" in msg
    (msg,) = problems(
        mutate_config("dev", "cluster.k3s.apiAccess", {"internetFacing": True, "allowedCidrs": ["0.0.0.0/0"]})
    )
    assert "cluster.k3s.apiAccess.allowedCidrs" in msg and "everyone" in msg


@pytest.mark.parametrize(
    ("k3s", "key"),
    [
        ({"sshKeyName": "ops"}, "cluster.k3s.sshSourceSecurityGroupId"),
        ({"sshSourceSecurityGroupId": "sg-0123456789abcdef0"}, "cluster.k3s.sshKeyName"),
    ],
)
def test_ssh_needs_key_and_source_group_together(mutate_config, k3s, key):
    (msg,) = problems(mutate_config("dev", "cluster.k3s", k3s))
    assert msg.startswith(f"k8s-platform:{key}: ") and "both" in msg


def test_ssh_pair_opens_port_22_from_that_group_only(mutate_config):
    run = run_offline(
        "dev",
        mutate_config("dev", "cluster.k3s", {"sshKeyName": "ops", "sshSourceSecurityGroupId": "sg-0123456789abcdef0"}),
    )
    rule = run.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "k3s-ssh")
    assert rule.inputs["referencedSecurityGroupId"] == "sg-0123456789abcdef0" and rule.inputs["fromPort"] == 22
    assert all(
        lt.inputs["keyName"] == "ops"
        for lt in run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
        if lt.name.startswith("k3s-")
    )


@pytest.mark.parametrize(
    ("k3s", "key", "fragment"),
    [
        ({"version": "latest"}, "cluster.k3s.version", "exact K3s release"),
        ({"agents": {"instanceTypes": ["t3.large", "m7g.large"]}}, "cluster.k3s.agents.instanceTypes", "architectures"),
        ({"agents": {"minSize": 3, "desiredSize": 2}}, "cluster.k3s.agents.desiredSize", "minSize <= desiredSize"),
        ({"snapshots": {"scheduleCron": "every hour"}}, "cluster.k3s.snapshots.scheduleCron", "cron"),
        ({"drainTimeoutSeconds": 5000}, "cluster.k3s.drainTimeoutSeconds", "840"),
        ({"servers": {"instanceType": "large"}}, "cluster.k3s.servers.instanceType", "instance type"),
    ],
)
def test_other_k3s_refusals(mutate_config, k3s, key, fragment):
    msgs = problems(mutate_config("dev", "cluster.k3s", k3s))
    assert any(m.startswith(f"k8s-platform:{key}: ") and fragment in m for m in msgs), msgs


def test_vpc_must_not_overlap_k3s_internal_ranges(mutate_config):
    cfg = mutate_config("dev", "network.vpcCidr", "10.42.0.0/16")
    msgs = problems(cfg)
    assert any(m.startswith("k8s-platform:network.vpcCidr: ") and "10.42.0.0/16" in m for m in msgs), msgs


def test_architecture_from_instance_type():
    assert instance_architecture("m7g.large") == "arm64" and instance_architecture("c7gn.xlarge") == "arm64"
    assert instance_architecture("t3.medium") == "x86_64" and instance_architecture("m7i.large") == "x86_64"
