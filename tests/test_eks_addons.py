"""Managed add-ons and ENIConfigs on the prod offline plan: order as real dependencies, pins, config."""

from __future__ import annotations

import json

import pytest

from components.core.pins import (
    ADDON_NAMES,
    ADDON_VERSIONS,
    OPTIONAL_ADDON_NAMES,
    SUPPORTED_KUBERNETES_VERSIONS,
    addon_versions,
)
from components.eks.addons import render_eni_config_spec, render_vpc_cni_configuration

ADDON = "aws:eks/addon:Addon"
ENICONFIG = "kubernetes:crd.k8s.amazonaws.com/v1alpha1:ENIConfig"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def addon(run, name):
    [found] = [a for a in run.of_type(ADDON) if a.inputs["addonName"] == name]
    return found


def test_every_addon_once_with_its_pinned_version(prod_run):
    addons = {a.inputs["addonName"]: a.inputs for a in prod_run.of_type(ADDON)}
    # Every add-on but the optional ones (EFS CSI: `addons.efsCsi`, off in the shipped stacks).
    assert sorted(addons) == sorted(set(ADDON_NAMES) - set(OPTIONAL_ADDON_NAMES))
    pins = ADDON_VERSIONS["1.35"]
    for name, inputs in addons.items():
        assert inputs["addonVersion"] == pins[name]
        assert inputs["resolveConflictsOnUpdate"] == "PRESERVE"
        assert inputs["clusterName"] == "prod-eks"


def test_networking_addons_and_every_eniconfig_precede_the_system_node_group(prod_run):
    deps = set(prod_run.one(NODE_GROUP).dependencies)
    for name in ("vpc-cni", "eks-pod-identity-agent", "kube-proxy"):
        assert addon(prod_run, name).urn in deps, name
    eni_configs = prod_run.of_type(ENICONFIG)
    assert eni_configs and all(e.urn in deps for e in eni_configs)


def test_workload_addons_depend_on_the_system_node_group(prod_run):
    node_group = prod_run.one(NODE_GROUP)
    for name in ("coredns", "aws-ebs-csi-driver"):
        assert node_group.urn in addon(prod_run, name).dependencies, name
    # ... and the node group does not wait for them (no cycle, no DEGRADED coredns before nodes).
    assert addon(prod_run, "coredns").urn not in node_group.dependencies


def test_eniconfigs_follow_vpc_cni_which_installs_their_crd(prod_run):
    vpc_cni = addon(prod_run, "vpc-cni")
    for e in prod_run.of_type(ENICONFIG):
        assert vpc_cni.urn in e.dependencies


def test_one_eniconfig_per_zone_pointing_at_that_zones_pod_subnet(prod_run):
    pod_subnets = prod_run.outputs["podSubnetIds"]
    node_sg = prod_run.one("aws:ec2/securityGroup:SecurityGroup", "eks-node-sg")
    node_sg_id = prod_run.one("aws:ec2/launchTemplate:LaunchTemplate", "eks-system-lt").inputs["networkInterfaces"][0][
        "securityGroups"
    ][0]
    by_zone = {e.inputs["metadata"]["name"]: e for e in prod_run.of_type(ENICONFIG)}
    assert sorted(by_zone) == sorted(prod_run.config.network.availability_zones)
    for az, e in by_zone.items():
        assert e.inputs["apiVersion"] == "crd.k8s.amazonaws.com/v1alpha1" and e.inputs["kind"] == "ENIConfig"
        assert e.inputs["spec"]["subnet"] == pod_subnets[az]
        assert e.inputs["spec"]["securityGroups"] == [node_sg_id]
        assert node_sg.urn in e.dependencies
        assert e.provider == prod_run.one("pulumi:providers:kubernetes").name


def test_vpc_cni_configuration_enables_prefix_delegation_and_zone_custom_networking(prod_run):
    values = json.loads(addon(prod_run, "vpc-cni").inputs["configurationValues"])
    env = values["env"]
    assert env["ENABLE_PREFIX_DELEGATION"] == "true"
    assert env["WARM_PREFIX_TARGET"] == "1"
    assert env["AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"] == "true"
    # vpc-cni picks the ENIConfig named after this label's value: the zone names used above.
    assert env["ENI_CONFIG_LABEL_DEF"] == "topology.kubernetes.io/zone"
    assert all(isinstance(v, str) for v in env.values())  # the add-on schema wants strings


def _pod_identity(run, service_account):
    [assoc] = [
        a
        for a in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a.inputs["serviceAccount"] == service_account
    ]
    return assoc


@pytest.mark.parametrize(
    ("addon_name", "service_account", "policy"),
    [
        ("vpc-cni", "aws-node", "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"),
        (
            "aws-ebs-csi-driver",
            "ebs-csi-controller-sa",
            "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy",
        ),
    ],
)
def test_addon_iam_through_pod_identity_before_the_addon(prod_run, addon_name, service_account, policy):
    assoc = _pod_identity(prod_run, service_account)
    assert assoc.inputs["namespace"] == "kube-system" and assoc.inputs["clusterName"] == "prod-eks"
    assert assoc.urn in addon(prod_run, addon_name).dependencies
    role = [r for r in prod_run.of_type("aws:iam/role:Role") if r.parent == assoc.parent][0]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    attached = [
        a.inputs["policyArn"]
        for a in prod_run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.parent == assoc.parent
    ]
    assert attached == [policy]


def test_cni_policy_is_not_on_the_node_role(prod_run):
    node_policies = [
        a.inputs["policyArn"]
        for a in prod_run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith("eks-system-node-")
    ]
    assert not any("CNI" in p for p in node_policies)


# ---------------------------------------------------------------------------------- pure parts
def test_addon_versions_table_is_exact_per_minor():
    for minor, pins in ADDON_VERSIONS.items():
        assert sorted(pins) == sorted(ADDON_NAMES)
        assert pins["kube-proxy"].startswith(f"v{minor}.")  # kube-proxy must match the control plane
        for version in pins.values():
            assert version.startswith("v") and "-eksbuild." in version
    assert SUPPORTED_KUBERNETES_VERSIONS[-1] == "1.36"


def test_addon_overrides_replace_one_pin():
    versions = addon_versions("1.35", {"coredns": "v1.13.2-eksbuild.9"})
    assert versions["coredns"] == "v1.13.2-eksbuild.9"
    assert versions["vpc-cni"] == ADDON_VERSIONS["1.35"]["vpc-cni"]


def test_unpinned_minor_is_refused():
    with pytest.raises(ValueError, match="no add-on pins for Kubernetes 1.20"):
        addon_versions("1.20")


def test_renderers():
    assert render_vpc_cni_configuration("example.com/zone")["env"]["ENI_CONFIG_LABEL_DEF"] == "example.com/zone"
    assert render_eni_config_spec("subnet-1", ["sg-1"]) == {"subnet": "subnet-1", "securityGroups": ["sg-1"]}


def test_addon_version_override_reaches_the_plan(mutate_config):
    from programs.offline import run_offline

    raw = mutate_config("prod", "cluster.eks.addonVersions", {"coredns": "v1.13.2-eksbuild.9"})
    run = run_offline("prod", raw)
    assert addon(run, "coredns").inputs["addonVersion"] == "v1.13.2-eksbuild.9"
