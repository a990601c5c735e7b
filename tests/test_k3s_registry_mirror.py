"""K3s's embedded registry mirror (Spegel), an option off by default (issue 17, point 4).

On: servers start with `embedded-registry: true` (a server flag that enables it cluster-wide), every
node kind (servers, ASG agents, Karpenter nodes) gets the same `registries.yaml` mirrors from cloud-init
before K3s starts, and the mirror's ports (5001/tcp peer to peer, 6443/tcp a node's local registry) are
opened by self-referencing rules of the node security group only. Off: the user-data is byte-for-byte
what it was before the option existed (no node is rolled for a feature that is off).
"""

from __future__ import annotations

import base64

import pytest
import yaml

from components.config import ConfigError, parse_stack_config
from components.config.k3s import DEFAULT_MIRRORED_REGISTRIES
from components.k3s.user_data import REGISTRIES_PATH, render_k3s_server_cloud_init
from programs.offline import reveal
from tests.conftest import mutated_config, variants_run
from tests.test_k3s_user_data import agent_user_data, files_of, run_boot_script, settings
from tests.test_upstream_contracts_k3s import DEFAULT_RELEASE_WITH_MIRROR, rendered_node_configs

LT = "aws:ec2/launchTemplate:LaunchTemplate"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


@pytest.fixture(scope="module")
def mirror_run():
    return variants_run("dev", DEFAULT_RELEASE_WITH_MIRROR)


def node_registries(run) -> dict[str, dict | None]:
    """node kind name -> its registries.yaml (parsed), None where the user-data writes none."""
    texts = {lt.name: base64.b64decode(reveal(lt.inputs)["userData"]).decode() for lt in run.of_type(LT)}
    texts |= {nc.name: reveal(nc.inputs)["spec"]["userData"] for nc in run.of_type(NODECLASS)}
    found = {}
    for name, text in texts.items():
        if text.startswith("#cloud-config") and "k3s-node-boot" in text:
            content = files_of(text).get(REGISTRIES_PATH)
            found[name] = None if content is None else yaml.safe_load(content)
    return found


def test_off_by_default(dev_run):
    assert not dev_run.config.cluster.k3s.embedded_registry.enabled
    assert all("embedded-registry" not in c for _, c in rendered_node_configs(dev_run).values())
    registries = node_registries(dev_run)
    assert registries and set(registries.values()) == {None}
    assert not [r for r in dev_run.of_type(INGRESS) if "registry" in r.name]


def test_servers_enable_it_and_every_node_kind_lists_the_same_mirrors(mirror_run):
    configs = rendered_node_configs(mirror_run)
    servers = [c for kind, c in configs.values() if kind == "server"]
    assert servers and all(c["embedded-registry"] is True for c in servers)
    assert all("embedded-registry" not in c for kind, c in configs.values() if kind == "agent")
    registries = node_registries(mirror_run)
    assert {"k3s-server-bootstrap", "k3s-agent"} <= set(registries) and any("karpenter" in n for n in registries)
    expected = {"mirrors": {registry: {} for registry in DEFAULT_MIRRORED_REGISTRIES}}
    assert all(doc == expected for doc in registries.values()), registries


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


def test_the_file_is_written_before_k3s_starts_and_readable_by_root_only(tmp_path):
    text = render_k3s_server_cloud_init(settings("join", registry_mirrors=("docker.io", "*")))
    doc = yaml.safe_load(text)
    (entry,) = [f for f in doc["write_files"] if f["path"] == REGISTRIES_PATH]
    assert entry["permissions"] == "0600" and entry["owner"] == "root:root"
    assert yaml.safe_load(entry["content"]) == {"mirrors": {"docker.io": {}, "*": {}}}
    assert "&" not in entry["content"]  # no YAML anchors: K3s reads a plain mapping
    # cloud-init writes files (init stage) before runcmd runs the boot script that starts K3s.
    assert doc["runcmd"] == [["/usr/local/sbin/k3s-node-boot.sh"]]
    # The boot script still runs unchanged with the mirror on.
    run_boot_script(tmp_path, text, cluster_up=True)


def test_off_leaves_the_user_data_exactly_as_before():
    assert render_k3s_server_cloud_init(settings("join", registry_mirrors=())) == render_k3s_server_cloud_init(
        settings("join")
    )
    assert agent_user_data(registry_mirrors=()) == agent_user_data()
    assert REGISTRIES_PATH not in files_of(agent_user_data())


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
    for mirrors in (["*"], ["registry.example.com:5000", "localhost:5000", "10.20.0.5:5000"]):
        cfg = mutated_config("dev", "cluster.k3s.embeddedRegistry", {"enabled": True, "mirrors": mirrors})
        assert parse_stack_config(cfg).cluster.k3s.embedded_registry.mirrors == mirrors
