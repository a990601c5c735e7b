"""EKS resilience settings: node auto repair and the node monitoring agent, deletion protection from
the environment's safeguards (with its explicit override), the provisioned control-plane tier and
zonal shift; checked on the shipped stacks, on one-key variants, and against the installed SDK."""

from __future__ import annotations

import copy
import inspect
import re
from typing import Any, get_args

import pulumi_aws as aws
import pytest

from components.config import ConfigError, ControlPlaneTier, parse_stack_config
from components.core.pins import ADDON_VERSIONS, NODE_MONITORING_AGENT, UNCONFIRMED_PINS
from policy.offline_runner import CONFIG_DIR, evaluate, load_pack_config, reconcile
from programs.plan import resources_from_run
from tests.conftest import offline_run, shipped_config, variant_run

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
PROD = reconcile(load_pack_config(CONFIG_DIR / "prod.json"))


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    return err.value.problems


def with_eks(stack: str, **keys: Any) -> dict[str, Any]:
    raw = copy.deepcopy(shipped_config(stack))
    raw["k8s-platform:cluster"]["eks"].update(keys)
    return raw


def policy_hits(run, policy_id: str):
    return [v for v in evaluate(resources_from_run(run), PROD) if v.policy == policy_id]


# ------------------------------------------------------------------------------ shipped stacks
def test_shipped_prod_system_nodes_repair_and_cluster_is_deletion_protected(prod_run):
    group = prod_run.one(NODE_GROUP).inputs
    assert group["nodeRepairConfig"] == {"enabled": True}
    assert prod_run.one(CLUSTER).inputs["deletionProtection"] is True


def test_shipped_staging_cluster_is_deletion_protected_too():
    assert offline_run("staging").one(CLUSTER).inputs["deletionProtection"] is True


def test_node_monitoring_agent_is_pinned_and_follows_the_system_nodes(prod_run):
    [agent] = [a for a in prod_run.of_type(ADDON) if a.inputs["addonName"] == NODE_MONITORING_AGENT]
    assert agent.inputs["addonVersion"] == ADDON_VERSIONS["1.35"][NODE_MONITORING_AGENT]
    assert prod_run.one(NODE_GROUP).urn in agent.dependencies
    # No build of it could be confirmed offline: listed for every minor.
    assert all(NODE_MONITORING_AGENT in UNCONFIRMED_PINS[minor] for minor in ADDON_VERSIONS)
    assert "configurationValues" not in agent.inputs  # its DaemonSet tolerates every taint by default


def test_shipped_prod_sends_no_tier_and_no_zonal_shift(prod_run):
    cluster = prod_run.one(CLUSTER).inputs
    assert "controlPlaneScalingConfig" not in cluster and "zonalShiftConfig" not in cluster


# ------------------------------------------------------------------------------ deletion protection
def test_turning_deletion_protection_off_in_prod_is_refused_naming_the_override():
    [p] = problems(with_eks("prod", deletionProtection=False))
    assert p.startswith("k8s-platform:cluster.eks.deletionProtection: prod clusters keep deletion protection")
    assert "cluster.eks.allowDeletionUnprotected: true" in p


def test_the_explicit_override_turns_it_off_and_the_pack_still_asks_for_its_own_knob():
    raw = with_eks("prod", deletionProtection=False, allowDeletionUnprotected=True)
    cfg = parse_stack_config(raw)
    assert cfg.cluster.eks.deletion_protection is False
    run = variant_run("prod", "cluster.eks", raw["k8s-platform:cluster"]["eks"])
    assert run.one(CLUSTER).inputs["deletionProtection"] is False
    [hit] = policy_hits(run, "eks-cluster-deletion-protection")
    assert hit.level == "mandatory" and hit.urn == run.one(CLUSTER).urn
    knob = reconcile(
        {
            **load_pack_config(CONFIG_DIR / "prod.json"),
            "eks-cluster-deletion-protection": (None, {"allowUnprotected": True}),
        }
    )
    assert [v for v in evaluate(resources_from_run(run), knob) if v.policy == "eks-cluster-deletion-protection"] == []


def test_the_override_alone_is_refused():
    [p] = problems(with_eks("prod", allowDeletionUnprotected=True))
    assert p.startswith("k8s-platform:cluster.eks.allowDeletionUnprotected: only applies with")


def test_a_stack_cannot_loosen_the_environments_deletion_protection():
    raw = copy.deepcopy(shipped_config("prod"))
    raw["k8s-platform:safeguards"] = {"clusterDeletionProtection": False}
    [p] = problems(raw)
    assert p.startswith("k8s-platform:safeguards.clusterDeletionProtection: False is looser than prod's True")


# ------------------------------------------------------------------------------ node repair
def test_node_repair_off_is_reported_by_the_prod_pack():
    run = variant_run("prod", "cluster.eks.systemNodeGroup.nodeRepairConfig", {"enabled": False})
    assert run.one(NODE_GROUP).inputs["nodeRepairConfig"] == {"enabled": False}
    [hit] = policy_hits(run, "eks-nodegroup-auto-repair")
    assert hit.level == "mandatory" and hit.urn == run.one(NODE_GROUP).urn


def test_parallel_repairs_are_bounded_and_validated():
    run = variant_run(
        "prod", "cluster.eks.systemNodeGroup.nodeRepairConfig", {"enabled": True, "maxParallelNodesRepairedCount": 1}
    )
    assert run.one(NODE_GROUP).inputs["nodeRepairConfig"] == {"enabled": True, "maxParallelNodesRepairedCount": 1}
    raw = copy.deepcopy(shipped_config("prod"))
    raw["k8s-platform:cluster"]["eks"]["systemNodeGroup"]["nodeRepairConfig"] = {"maxParallelNodesRepairedCount": 0}
    [p] = problems(raw)
    assert p.startswith("k8s-platform:cluster.eks.systemNodeGroup.nodeRepairConfig.maxParallelNodesRepairedCount:")


# ------------------------------------------------------------------------------ tier and zonal shift
def test_control_plane_tier_and_zonal_shift_reach_the_cluster():
    eks = copy.deepcopy(shipped_config("prod")["k8s-platform:cluster"]["eks"])
    eks.update(controlPlaneScalingConfig={"tier": "tier-xl"}, zonalShiftConfig={"enabled": True})
    run = variant_run("prod", "cluster.eks", eks)
    cluster = run.one(CLUSTER).inputs
    assert cluster["controlPlaneScalingConfig"] == {"tier": "tier-xl"}
    assert cluster["zonalShiftConfig"] == {"enabled": True}
    assert [v for v in evaluate(resources_from_run(run), PROD) if v.level == "mandatory"] == []


def test_an_unknown_tier_is_refused_with_the_allowed_ones():
    [p] = problems(with_eks("prod", controlPlaneScalingConfig={"tier": "tier-16xl"}))
    assert p.startswith("k8s-platform:cluster.eks.controlPlaneScalingConfig.tier:")
    assert "tier-8xl" in p


# ------------------------------------------------------------------------------ installed SDK contract
def test_the_installed_pulumi_aws_has_every_field_used():
    def params(cls) -> set[str]:
        return set(inspect.signature(cls._internal_init).parameters)

    assert {"deletion_protection", "control_plane_scaling_config", "zonal_shift_config"} <= params(aws.eks.Cluster)
    assert "node_repair_config" in params(aws.eks.NodeGroup)
    assert {"target_role_arn", "disable_session_tags", "policy"} <= params(aws.eks.PodIdentityAssociation)
    assert isinstance(inspect.getattr_static(aws.eks.PodIdentityAssociation, "external_id"), property)
    repair = set(inspect.signature(aws.eks.NodeGroupNodeRepairConfigArgs.__init__).parameters)
    assert {"enabled", "max_parallel_nodes_repaired_count"} <= repair
    assert set(inspect.signature(aws.eks.ClusterZonalShiftConfigArgs.__init__).parameters) >= {"enabled"}


def test_the_tier_values_are_the_ones_the_sdk_documents():
    doc = inspect.getdoc(aws.eks.ClusterControlPlaneScalingConfigArgs.__init__) or ""
    documented = set(re.findall(r"`((?:standard|tier-[0-9]*xl))`", doc))
    assert documented == set(get_args(ControlPlaneTier))
