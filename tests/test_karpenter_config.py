"""The `karpenter` config section: defaults and every refusal, each with the key path it names."""

from __future__ import annotations

import copy

import pytest

from components.config import ConfigError, KarpenterConfig, parse_stack_config
from tests.conftest import shipped_config


def with_karpenter(stack: str, edit) -> dict:
    raw = copy.deepcopy(shipped_config(stack))
    section = raw.setdefault("k8s-platform:karpenter", {})
    edit(section)
    return raw


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    return err.value.problems


def refusal(raw: dict, key: str) -> str:
    found = [p for p in problems(raw) if p.startswith(f"k8s-platform:{key}: ")]
    assert found, f"no problem for {key}: {problems(raw)}"
    return found[0]


def test_shipped_stacks_have_two_pools_and_a_node_class():
    for stack in ("dev", "prod"):
        k = parse_stack_config(shipped_config(stack)).karpenter
        assert k.enabled and len(k.node_pools) >= 2 and len(k.node_classes) >= 1
        by_name = {p.name: p for p in k.node_pools}
        assert by_name["general"].capacity_types == ["spot", "on-demand"]
        assert by_name["stateful"].capacity_types == ["on-demand"]


def test_defaults_are_wide():
    k = KarpenterConfig()
    (pool,) = k.node_pools
    assert pool.capacity_types == ["spot", "on-demand"] and pool.architectures == ["amd64", "arm64"]
    assert pool.instance_categories == ["c", "m", "r"] and pool.instance_generation_greater_than == 5
    assert pool.consolidate_after == "1m" and pool.expire_after == "720h"
    assert [b.nodes for b in pool.budgets] == ["10%"]
    assert k.replica_count(2) == 2 and k.replica_count(1) == 1
    assert k.node_classes[0].max_pods == 110


# ---------------------------------------------------------------------------------- AMI pinning
def test_prod_refuses_latest_alias():
    raw = with_karpenter("prod", lambda k: k["nodeClasses"][0].update(amiAlias="al2023@latest"))
    message = refusal(raw, "karpenter.nodeClasses[0].amiAlias")
    assert "prod nodes must run a pinned AMI release like al2023@v20260903" in message
    assert "al2023@latest is allowed only where safeguards.pinnedAmis is off" in message


def test_prod_refuses_an_unpinned_default_alias():
    raw = with_karpenter("prod", lambda k: k["nodeClasses"][0].pop("amiAlias"))
    assert "not set (defaults to al2023@latest)" in refusal(raw, "karpenter.nodeClasses[0].amiAlias")


def test_latest_alias_is_allowed_only_where_amis_are_not_pinned():
    raw = with_karpenter("prod", lambda k: k["nodeClasses"][0].update(amiAlias="al2023@latest"))
    raw["k8s-platform:environment"] = "dev"
    assert parse_stack_config(raw).karpenter.node_classes[0].ami_alias == "al2023@latest"
    # staging rehearses prod's pins; a dev stack can opt into them
    raw["k8s-platform:environment"] = "staging"
    assert "staging nodes must run a pinned AMI" in refusal(raw, "karpenter.nodeClasses[0].amiAlias")
    raw["k8s-platform:environment"] = "dev"
    raw["k8s-platform:safeguards"] = {"pinnedAmis": True}
    assert "dev nodes must run a pinned AMI" in refusal(raw, "karpenter.nodeClasses[0].amiAlias")


def test_alias_format_is_checked():
    raw = with_karpenter("prod", lambda k: k["nodeClasses"][0].update(amiAlias="bottlerocket@latest"))
    assert "is not an AL2023 alias" in refusal(raw, "karpenter.nodeClasses[0].amiAlias")


def test_k3s_refuses_an_alias_and_eks_refuses_ssm_parameters():
    raw = with_karpenter("dev", lambda k: k["nodeClasses"][0].update(amiAlias="al2023@latest"))
    assert "K3s node classes boot a custom AMI" in refusal(raw, "karpenter.nodeClasses[0].amiAlias")
    raw = with_karpenter("prod", lambda k: k["nodeClasses"][0].update(amiSsmParameters={"amd64": "/x/y"}))
    assert "applies to k3s clusters" in refusal(raw, "karpenter.nodeClasses[0].amiSsmParameters")


def test_k3s_pool_architecture_needs_an_ami():
    raw = with_karpenter("dev", lambda k: k["nodeClasses"][0].update(amiSsmParameters={"amd64": "/golden/k3s-amd64"}))
    message = refusal(raw, "karpenter.nodePools[0].architectures")
    assert "allows arm64 but node class 'default' has no AMI parameter for it" in message


# ------------------------------------------------------------------------- pod capacity (maxPods)
def test_prod_pool_too_small_for_max_pods_is_refused_naming_the_pool():
    def edit(k):
        k["nodePools"][1].update(
            instanceCategories=["t"], instanceGenerationGreaterThan=2, instanceSizes=["small", "large"]
        )

    message = refusal(with_karpenter("prod", edit), "karpenter.nodePools[1].instanceSizes")
    # t3a.small with prefix delegation and custom networking: 1 ENI x 3 slots x 16 + 2 = 50 pods.
    assert "pool 'stateful' allows t3a.small, which holds at most 50 pods" in message
    assert "prefix delegation with custom networking" in message
    assert "below maxPods 110 of node class 'default'" in message


def test_dev_pool_too_small_for_max_pods_is_refused():
    def edit(k):
        k["nodePools"][1].update(instanceCategories=["t"], instanceGenerationGreaterThan=2, instanceSizes=["micro"])

    message = refusal(with_karpenter("dev", edit), "karpenter.nodePools[1].instanceSizes")
    assert "pool 'stateful' allows t3.micro, which holds at most 34 pods under prefix delegation" in message


def test_lower_max_pods_makes_the_small_pool_acceptable():
    def edit(k):
        k["nodeClasses"][0]["maxPods"] = 50
        k["nodePools"][1].update(
            instanceCategories=["t"], instanceGenerationGreaterThan=2, instanceSizes=["small", "large"]
        )

    raw = with_karpenter("prod", edit)
    assert parse_stack_config(raw).karpenter.node_classes[0].max_pods == 50


def test_pool_with_no_known_instance_type_is_refused():
    raw = with_karpenter("prod", lambda k: k["nodePools"][0].update(instanceCategories=["q"]))
    assert "matches no instance type with ENI data" in refusal(raw, "karpenter.nodePools[0].instanceSizes")


# ------------------------------------------------------------------------------ pools and classes
def test_limits_are_required():
    raw = with_karpenter("prod", lambda k: k["nodePools"][0].pop("limits"))
    assert refusal(raw, "karpenter.nodePools[0].limits") == "k8s-platform:karpenter.nodePools[0].limits: is required"


def test_limits_must_be_quantities():
    raw = with_karpenter("prod", lambda k: k["nodePools"][0]["limits"].update(memory="lots"))
    assert "is not a Kubernetes quantity" in refusal(raw, "karpenter.nodePools[0].limits.memory")


def test_pool_must_reference_a_node_class():
    raw = with_karpenter("prod", lambda k: k["nodePools"][0].update(nodeClass="gpu"))
    assert "'gpu' is not a configured node class; defined: default" in refusal(raw, "karpenter.nodePools[0].nodeClass")


def test_duplicate_pool_names_are_refused():
    raw = with_karpenter("prod", lambda k: k["nodePools"][1].update(name="general"))
    assert "defined twice" in refusal(raw, "karpenter.nodePools[1].name")


@pytest.mark.parametrize(
    "field, value, key, expected",
    [
        ("capacityTypes", [], "capacityTypes", "at least one value"),
        ("capacityTypes", ["preemptible"], "capacityTypes[0]", "got 'preemptible'"),
        ("architectures", ["amd64", "amd64"], "architectures", "distinct"),
        ("consolidateAfter", "5 minutes", "consolidateAfter", "is not a duration"),
        ("expireAfter", "30d", "expireAfter", "is not a duration"),
        ("budgets", [{"nodes": "1", "schedule": "@daily"}], "budgets[0]", "schedule and duration go together"),
        ("budgets", [{"nodes": "ten"}], "budgets[0].nodes", "is not a node count or percentage"),
        ("labels", {"karpenter.sh/nodepool": "x"}, "labels", "label domain is reserved"),
        ("taints", [{"key": "dedicated", "effect": "Sometimes"}], "taints[0].effect", "got 'Sometimes'"),
        ("weight", 0, "weight", "greater than or equal to 1"),
        ("instanceSizes", ["huge"], "instanceSizes", "is not an instance size"),
    ],
)
def test_pool_field_refusals(field, value, key, expected):
    raw = with_karpenter("prod", lambda k: k["nodePools"][0].update({field: value}))
    assert expected in refusal(raw, f"karpenter.nodePools[0].{key}")


def test_prod_needs_two_replicas():
    raw = with_karpenter("prod", lambda k: k.update(replicas=1))
    assert "at least 2" in refusal(raw, "karpenter.replicas")


def test_unknown_keys_are_refused():
    raw = with_karpenter("prod", lambda k: k.update(nodePool=[]))
    assert "is not a known key" in refusal(raw, "karpenter.nodePool")


def test_disabled_karpenter_skips_its_rules():
    raw = with_karpenter("prod", lambda k: k.update(enabled=False, replicas=1))
    assert parse_stack_config(raw).karpenter.enabled is False
