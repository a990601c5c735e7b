"""K3s's embedded registry mirror (Spegel), an option off by default (issue 17, point 4).

On: servers start with `embedded-registry: true` (a server flag that enables it cluster-wide), every
node kind (servers, ASG agents, Karpenter nodes) writes the same `registries.yaml` mirrors at boot, and
the mirror's ports (5001/tcp peer to peer, 6443/tcp a node's local registry) are opened by
self-referencing rules of the node security group only.
"""

from __future__ import annotations

import base64
import re

import pytest
import yaml

from components.config import ConfigError, parse_stack_config
from components.config.k3s import DEFAULT_MIRRORED_REGISTRIES
from components.k3s.user_data import render_k3s_agent_cloud_init, render_k3s_server_cloud_init
from programs.offline import reveal
from tests.conftest import mutated_config, variants_run
from tests.test_k3s_user_data import agent_user_data, run_boot_script, settings
from tests.test_upstream_contracts_k3s import DEFAULT_RELEASE_WITH_MIRROR, rendered_node_configs

LT = "aws:ec2/launchTemplate:LaunchTemplate"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
MIRRORS_LINE = re.compile(r"^\s*readonly REGISTRY_MIRRORS=(.*)$", re.M)


@pytest.fixture(scope="module")
def mirror_run():
    return variants_run("dev", DEFAULT_RELEASE_WITH_MIRROR)


def boot_mirrors(run) -> dict[str, str]:
    """node kind name -> the REGISTRY_MIRRORS its boot script is rendered with."""
    scripts = {lt.name: base64.b64decode(reveal(lt.inputs)["userData"]).decode() for lt in run.of_type(LT)}
    scripts |= {nc.name: reveal(nc.inputs)["spec"]["userData"] for nc in run.of_type(NODECLASS)}
    return {name: MIRRORS_LINE.search(text).group(1) for name, text in scripts.items() if "K3S_VERSION" in text}


def test_off_by_default(dev_run):
    assert not dev_run.config.cluster.k3s.embedded_registry.enabled
    assert all("embedded-registry" not in c for _, c in rendered_node_configs(dev_run).values())
    assert set(boot_mirrors(dev_run).values()) == {"''"}
    assert not [r for r in dev_run.of_type(INGRESS) if "registry" in r.name]


def test_servers_enable_it_and_every_node_kind_lists_the_same_mirrors(mirror_run):
    configs = rendered_node_configs(mirror_run)
    servers = [c for kind, c in configs.values() if kind == "server"]
    assert servers and all(c["embedded-registry"] is True for c in servers)
    assert all("embedded-registry" not in c for kind, c in configs.values() if kind == "agent")
    mirrors = boot_mirrors(mirror_run)
    assert {"k3s-server-bootstrap", "k3s-agent"} <= set(mirrors) and any("karpenter" in n for n in mirrors)
    assert set(mirrors.values()) == {"'" + " ".join(DEFAULT_MIRRORED_REGISTRIES) + "'"}, mirrors


def test_ports_are_open_between_nodes_only(mirror_run):
    rules = {r.name: r.inputs for r in mirror_run.of_type(INGRESS)}
    nodes_sg = rules["k3s-nodes-from-nodes"]["securityGroupId"]
    mirror_rules = {n: r for n, r in rules.items() if "registry" in n}
    assert {(r["fromPort"], r["toPort"], r["ipProtocol"]) for r in mirror_rules.values()} == {
        (5001, 5001, "tcp"),
        (6443, 6443, "tcp"),
    }
    for name, rule in mirror_rules.items():
        # Self-referencing: from the node group to the node group, never a CIDR.
        assert rule["securityGroupId"] == nodes_sg == rule["referencedSecurityGroupId"], name
        assert not rule.get("cidrIpv4") and not rule.get("cidrIpv6"), name
    assert not [n for n, r in rules.items() if r.get("fromPort") == 5001 and n not in mirror_rules]


def test_boot_script_writes_the_mirrors_every_node_reads(tmp_path):
    mirrors = ("docker.io", "registry.example.com:5000", "*")
    # The script runs in the repository root, full of files: an unquoted `*` would become their names.
    root, _ = run_boot_script(
        tmp_path, render_k3s_server_cloud_init(settings("join", registry_mirrors=mirrors)), cluster_up=True
    )
    doc = yaml.safe_load((root / "etc/registries.yaml").read_text())
    assert doc == {"mirrors": dict.fromkeys(mirrors)}
    (root / "etc/registries.yaml").unlink()
    agent_root = tmp_path / "agent"
    agent_root.mkdir()
    root, _ = run_boot_script(agent_root, agent_user_data(registry_mirrors=("quay.io",)), cluster_up=True)
    assert yaml.safe_load((root / "etc/registries.yaml").read_text()) == {"mirrors": {"quay.io": None}}


def test_no_mirror_no_registries_file(tmp_path):
    root, _ = run_boot_script(tmp_path, render_k3s_server_cloud_init(settings("join")), cluster_up=True)
    assert not (root / "etc/registries.yaml").exists()  # K3s's default: every registry pulled directly


def test_agent_renderer_stays_small_and_mirror_free_by_default():
    text = render_k3s_agent_cloud_init(
        server_url="https://x:6443", token_parameter_name="/p", region="us-east-1", k3s_version="v1.36.4+k3s1"
    )
    assert MIRRORS_LINE.search(text).group(1) == "''"


@pytest.mark.parametrize(
    ("mirrors", "expected"),
    [
        ([], "at least one registry"),
        (["https://docker.io"], "not a registry host"),
        (["Docker.io"], "not a registry host"),
        (["docker.io/library"], "not a registry host"),
        (["docker.io", "docker.io"], "distinct"),
        (["*", "docker.io"], "list it alone"),
    ],
)
def test_bad_mirrors_are_refused_naming_the_key(mirrors, expected):
    cfg = mutated_config("dev", "cluster.k3s.embeddedRegistry", {"enabled": True, "mirrors": mirrors})
    with pytest.raises(ConfigError) as err:
        parse_stack_config(cfg)
    (msg,) = err.value.problems
    assert msg.startswith("k8s-platform:cluster.k3s.embeddedRegistry.mirrors: ") and expected in msg, msg


def test_a_wildcard_or_a_private_registry_is_accepted():
    for mirrors in (["*"], ["registry.example.com:5000", "localhost:5000"]):
        cfg = mutated_config("dev", "cluster.k3s.embeddedRegistry", {"enabled": True, "mirrors": mirrors})
        assert parse_stack_config(cfg).cluster.k3s.embedded_registry.mirrors == mirrors
