"""K3s releases: 1.36 the default, no minor downgrade, one minor at a time, servers before agents
(issue 17, point 5). The refusals need the deployed release (`cluster.k3s.deployedVersion`)."""

from __future__ import annotations

import base64
import re

import pytest

from components.config import ConfigError, K3sConfig, parse_stack_config
from components.config.k3s_rules import k3s_minor
from components.core.pins import CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS, K3S_VERSION
from tests.conftest import mutated_config, variants_run

V135, V136 = "v1.35.8+k3s1", "v1.36.4+k3s1"
LT = "aws:ec2/launchTemplate:LaunchTemplate"


def dev_with(**k3s) -> dict:
    cfg = mutated_config("dev", "cluster.k3s.version", k3s.pop("version", V135))
    cfg["k8s-platform:cluster"]["k3s"].update(k3s)
    return cfg


def refusals(cfg) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(cfg)
    return err.value.problems


def test_the_default_is_the_pinned_1_36_release_with_a_cloud_controller_image():
    assert K3sConfig().version == K3S_VERSION == V136
    assert k3s_minor(K3S_VERSION) == (1, 36) and "1.36" in CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS


def test_a_minor_downgrade_is_refused_naming_the_key():
    (msg,) = refusals(dev_with(version=V135, deployedVersion=V136))
    assert msg.startswith("k8s-platform:cluster.k3s.version: v1.35.8+k3s1 downgrades the servers from 1.36")
    assert "no minor downgrade" in msg and "etcd" in msg


def test_a_skipped_minor_is_refused_with_the_next_step():
    (msg,) = refusals(dev_with(version=V136, deployedVersion="v1.34.3+k3s1", agents={"version": "v1.34.3+k3s1"}))
    assert msg.startswith("k8s-platform:cluster.k3s.version: v1.36.4+k3s1 skips a minor")
    assert "to 1.35 first" in msg


def test_servers_go_first_agents_follow():
    # Upgrading the servers with the agents in the same run is refused...
    (msg,) = refusals(dev_with(version=V136, deployedVersion=V135))
    assert msg.startswith("k8s-platform:cluster.k3s.agents.version: this run upgrades the servers from 1.35 to 1.36")
    assert f"agents.version: {V135}" in msg
    # ...the servers alone are accepted, then the agents once the servers run the new minor.
    parse_stack_config(dev_with(version=V136, deployedVersion=V135, agents={"version": V135}))
    parse_stack_config(dev_with(version=V136, deployedVersion=V136))


@pytest.mark.parametrize(("deployed", "target"), [(V135, V135), (V135, "v1.35.9+k3s1"), ("v1.35.9+k3s1", V135)])
def test_patch_changes_within_a_minor_are_accepted(deployed, target):
    parse_stack_config(dev_with(version=target, deployedVersion=deployed))


def test_agents_are_never_newer_than_the_servers():
    (msg,) = refusals(dev_with(version=V135, agents={"version": V136}))
    assert msg.startswith("k8s-platform:cluster.k3s.agents.version: v1.36.4+k3s1 is newer than the servers'")


def test_agents_at_most_three_minors_behind():
    (msg,) = refusals(dev_with(version=V136, agents={"version": "v1.32.1+k3s1"}))
    assert msg.startswith("k8s-platform:cluster.k3s.agents.version: ") and "kubelet skew" in msg
    parse_stack_config(dev_with(version=V136, agents={"version": "v1.33.1+k3s1"}))


@pytest.mark.parametrize("key", ["deployedVersion", "agents"])
def test_versions_must_be_exact_releases(key):
    value = "v1.36" if key == "deployedVersion" else {"version": "stable"}
    (msg,) = refusals(dev_with(**{key: value}))
    path = "cluster.k3s.deployedVersion" if key == "deployedVersion" else "cluster.k3s.agents.version"
    assert msg.startswith(f"k8s-platform:{path}: ") and "exact K3s release" in msg


def installed_versions(run) -> dict[str, str]:
    found = {}
    for lt in run.of_type(LT):
        text = base64.b64decode(lt.inputs["userData"]).decode()
        found[lt.name] = re.search(r"^\s*readonly K3S_VERSION=(\S+)$", text, re.M).group(1)
    for nc in run.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        found[nc.name] = re.search(r"^\s*readonly K3S_VERSION=(\S+)$", nc.inputs["spec"]["userData"], re.M).group(1)
    return found


def test_servers_first_plan_installs_the_new_minor_on_servers_only():
    run = variants_run(
        "dev", {"cluster.k3s.version": V136, "cluster.k3s.deployedVersion": V135, "cluster.k3s.agents.version": V135}
    )
    versions = installed_versions(run)
    assert versions.pop("k3s-server-bootstrap") == V136
    assert versions and set(versions.values()) == {V135}, versions  # ASG agents and Karpenter nodes
    assert run.outputs["k3sVersion"] == V136
    # The cloud controller is never newer than the API servers: it stays on 1.35 until they all run 1.36.
    assert ccm_image_tag(run) == CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS["1.35"]


def ccm_image_tag(run) -> str:
    ccm = next(r for r in run.of_type("kubernetes:helm.sh/v3:Release") if "cloud-controller" in r.name)
    return ccm.inputs["values"]["image"]["tag"]


def test_agents_follow_once_the_servers_run_the_new_minor():
    run = variants_run("dev", {"cluster.k3s.version": V136, "cluster.k3s.deployedVersion": V136})
    assert set(installed_versions(run).values()) == {V136}
    assert ccm_image_tag(run) == CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS["1.36"]
