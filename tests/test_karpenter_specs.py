"""The pure NodePool / EC2NodeClass builders, checked directly and against the vendored v1 CRDs."""

from __future__ import annotations

import copy

import pytest

from components.config import (
    KarpenterConfig,
    KarpenterLimits,
    KarpenterNodeClassConfig,
    KarpenterNodePoolConfig,
    parse_stack_config,
)
from components.core.max_pods import max_pods_for
from components.core.pool_capacity import SMALL_SIZES, PoolShape, parse_instance_type, pool_pod_capacity
from components.karpenter.specs import (
    UNREGISTERED_TAINT,
    AmiSelection,
    EC2NodeClassSpec,
    RootVolume,
    node_class_from_config,
    node_class_max_pods_from_config,
    node_pool_from_config,
)
from tests.conftest import shipped_config
from tests.karpenter_crd_validation import assert_valid, validation_errors

TAGS = {"owner": "platform-team", "cost-center": "cc-1234", "environment": "dev"}


def requirement(manifest: dict, key: str) -> dict:
    (found,) = [r for r in manifest["spec"]["template"]["spec"]["requirements"] if r["key"] == key]
    return found


def default_pool(**overrides) -> KarpenterNodePoolConfig:
    return KarpenterNodePoolConfig(name="general", limits=KarpenterLimits(cpu="100", memory="400Gi"), **overrides)


def eks_node_class(**overrides) -> dict:
    nc = KarpenterNodeClassConfig(ami_alias="al2023@v20260903", **overrides)
    return node_class_from_config(
        nc, kind="eks", cluster_name="prod-eks", instance_profile="prod-eks-karpenter-node", max_pods=110, tags=TAGS
    ).manifest()


def k3s_node_class() -> dict:
    return node_class_from_config(
        KarpenterNodeClassConfig(),
        kind="k3s",
        cluster_name="dev-k3s",
        instance_profile="dev-k3s-karpenter-node",
        max_pods=110,
        tags=TAGS,
        user_data="#cloud-config\n",
    ).manifest()


# --------------------------------------------------------------------------------- NodePool
def test_default_pool_is_wide_and_bounded():
    manifest = node_pool_from_config(default_pool()).manifest()
    assert manifest["apiVersion"] == "karpenter.sh/v1" and manifest["kind"] == "NodePool"
    assert requirement(manifest, "kubernetes.io/arch") == {
        "key": "kubernetes.io/arch",
        "operator": "In",
        "values": ["amd64", "arm64"],
    }
    assert requirement(manifest, "karpenter.sh/capacity-type")["values"] == ["spot", "on-demand"]
    assert requirement(manifest, "karpenter.k8s.aws/instance-category")["values"] == ["c", "m", "r"]
    assert requirement(manifest, "karpenter.k8s.aws/instance-generation") == {
        "key": "karpenter.k8s.aws/instance-generation",
        "operator": "Gt",
        "values": ["5"],
    }
    # Without listed sizes the tiny ones are excluded (they cannot hold the node class's maxPods).
    assert requirement(manifest, "karpenter.k8s.aws/instance-size") == {
        "key": "karpenter.k8s.aws/instance-size",
        "operator": "NotIn",
        "values": list(SMALL_SIZES),
    }
    spec = manifest["spec"]
    assert spec["limits"] == {"cpu": "100", "memory": "400Gi"}
    assert spec["disruption"] == {
        "consolidationPolicy": "WhenEmptyOrUnderutilized",
        "consolidateAfter": "1m",
        "budgets": [{"nodes": "10%"}],
    }
    assert spec["template"]["spec"]["expireAfter"] == "720h"
    assert spec["template"]["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": "default",
    }
    assert_valid(manifest)


def test_pool_sizes_taints_labels_budgets_and_weight_are_rendered():
    pool = default_pool(
        capacity_types=["on-demand"],
        instance_sizes=["large", "xlarge"],
        weight=10,
        taints=[{"key": "workload-class", "value": "stateful", "effect": "NoSchedule"}],
        labels={"workload-class": "stateful"},
        consolidate_after="10m",
        expire_after="Never",
        budgets=[
            {"nodes": "1"},
            {"nodes": "0", "reasons": ["Drifted"], "schedule": "0 9 * * mon-fri", "duration": "8h"},
        ],
    )
    manifest = node_pool_from_config(pool).manifest()
    spec = manifest["spec"]
    assert requirement(manifest, "karpenter.k8s.aws/instance-size") == {
        "key": "karpenter.k8s.aws/instance-size",
        "operator": "In",
        "values": ["large", "xlarge"],
    }
    assert spec["template"]["spec"]["taints"] == [
        {"key": "workload-class", "value": "stateful", "effect": "NoSchedule"}
    ]
    assert spec["template"]["metadata"] == {"labels": {"workload-class": "stateful"}}
    assert spec["disruption"]["budgets"][1] == {
        "nodes": "0",
        "reasons": ["Drifted"],
        "schedule": "0 9 * * mon-fri",
        "duration": "8h",
    }
    assert spec["weight"] == 10 and spec["template"]["spec"]["expireAfter"] == "Never"
    assert_valid(manifest)


# ----------------------------------------------------------------------------- EC2NodeClass
def test_eks_node_class_pins_alias_imds_volume_and_discovery():
    manifest = eks_node_class()
    spec = manifest["spec"]
    assert manifest["apiVersion"] == "karpenter.k8s.aws/v1" and manifest["kind"] == "EC2NodeClass"
    assert spec["amiFamily"] == "AL2023" and spec["amiSelectorTerms"] == [{"alias": "al2023@v20260903"}]
    assert spec["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpProtocolIPv6": "disabled",
        "httpPutResponseHopLimit": 1,
        "httpTokens": "required",
    }
    (root,) = spec["blockDeviceMappings"]
    assert root["rootVolume"] is True
    assert root["ebs"] == {"volumeSize": "50Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}
    discovery = [{"tags": {"karpenter.sh/discovery": "prod-eks"}}]
    assert spec["subnetSelectorTerms"] == discovery and spec["securityGroupSelectorTerms"] == discovery
    assert spec["kubelet"] == {"maxPods": 110}
    assert spec["instanceProfile"] == "prod-eks-karpenter-node" and "role" not in spec
    assert "userData" not in spec  # Karpenter writes the nodeadm config for the alias AMI itself
    assert_valid(manifest)


def test_k3s_node_class_is_custom_with_ssm_amis_per_architecture_and_user_data():
    spec = k3s_node_class()["spec"]
    assert spec["amiFamily"] == "Custom"
    assert spec["amiSelectorTerms"] == [
        {"ssmParameter": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"},
        {"ssmParameter": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"},
    ]
    assert spec["userData"] == "#cloud-config\n"
    assert_valid(k3s_node_class())


def test_node_class_tags_drop_keys_karpenter_owns():
    manifest = node_class_from_config(
        KarpenterNodeClassConfig(ami_alias="al2023@latest"),
        kind="eks",
        cluster_name="c",
        instance_profile="p",
        max_pods=110,
        tags={**TAGS, "kubernetes.io/cluster/c": "owned", "karpenter.sh/nodepool": "x"},
    ).manifest()
    assert manifest["spec"]["tags"] == TAGS
    assert_valid(manifest)


def test_custom_ami_without_user_data_is_refused_by_the_builder():
    with pytest.raises(ValueError, match="needs user-data"):
        EC2NodeClassSpec(
            name="x",
            cluster_name="c",
            instance_profile="p",
            ami=AmiSelection(ssm_parameters=("/aws/service/x",)),
            root_volume=RootVolume(20),
            max_pods=110,
        )
    with pytest.raises(ValueError, match="either an alias or SSM parameters"):
        AmiSelection(alias="al2023@latest", ssm_parameters=("/x",))


# ------------------------------------------------------------------ the validator itself can fail
@pytest.mark.parametrize(
    "break_it, expected",
    [
        (lambda s: s.update(role="r"), "exactly one of ['role', 'instanceProfile']"),
        (lambda s: s.update(amiFamily="Bottlerocket"), "amiFamily must be 'AL2023' or 'Custom'"),
        (lambda s: s["amiSelectorTerms"].append({"id": "ami-123"}), "'alias' is mutually exclusive"),
        (lambda s: s.update(subnetSelectorTerms=[]), "subnetSelectorTerms cannot be empty"),
        (
            lambda s: s["blockDeviceMappings"].append(copy.deepcopy(s["blockDeviceMappings"][0])),
            "only one blockDeviceMappings",
        ),
        (lambda s: s["metadataOptions"].update(httpTokens="maybe"), "httpTokens"),
        (lambda s: s.update(tags={"karpenter.sh/nodepool": "x"}), "restricted tag"),
        (lambda s: s["blockDeviceMappings"][0]["ebs"].update(volumeSize="50GB"), "volumeSize"),
        (lambda s: s.update(unknownField=True), "unknown field"),
    ],
)
def test_crd_validation_catches_broken_node_classes(break_it, expected):
    manifest = eks_node_class()
    break_it(manifest["spec"])
    errors = validation_errors(manifest)
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize(
    "break_it, expected",
    [
        (
            lambda s: s["template"]["spec"]["requirements"].append({"key": "x", "operator": "In", "values": []}),
            "operator 'In' must have a value",
        ),
        (
            lambda s: s["template"]["spec"]["requirements"].append(
                {"key": "x", "operator": "Gt", "values": ["a", "b"]}
            ),
            "single positive integer",
        ),
        (
            lambda s: s["template"].update(metadata={"labels": {"karpenter.k8s.aws/x": "y"}}),
            'label domain "karpenter.k8s.aws"',
        ),
        (
            lambda s: s["disruption"].update(budgets=[{"nodes": "1", "schedule": "@daily"}]),
            "'schedule' must be set with 'duration'",
        ),
        (lambda s: s["disruption"].update(consolidationPolicy="Always"), "consolidationPolicy"),
        (lambda s: s["template"]["spec"].update(expireAfter="30d"), "expireAfter"),
    ],
)
def test_crd_validation_catches_broken_node_pools(break_it, expected):
    manifest = node_pool_from_config(default_pool()).manifest()
    break_it(manifest["spec"])
    errors = validation_errors(manifest)
    assert any(expected in e for e in errors), errors


# --------------------------------------------------------- every shipped and default object
def _stack(stack: str):
    raw = shipped_config(stack)
    return parse_stack_config(raw)


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_every_configured_object_of_the_shipped_stacks_validates(stack):
    cfg = _stack(stack)
    kind = cfg.cluster.kind
    k = cfg.karpenter
    assert len(k.node_pools) >= 2 and len(k.node_classes) >= 1
    for nc in k.node_classes:
        max_pods = node_class_max_pods_from_config(k, nc, kind)
        assert_valid(
            node_class_from_config(
                nc,
                kind=kind,
                cluster_name=cfg.cluster_name,
                instance_profile="p",
                max_pods=max_pods,
                tags=cfg.resource_tags(),
                user_data="#cloud-config\n" if kind == "k3s" else None,
            ).manifest()
        )
    for pool in k.node_pools:
        assert_valid(node_pool_from_config(pool).manifest())


def test_default_karpenter_config_objects_validate():
    k = KarpenterConfig()
    for pool in k.node_pools:
        assert_valid(node_pool_from_config(pool).manifest())


# --------------------------------------------------------------------- maxPods from max_pods
def test_kubelet_max_pods_comes_from_the_max_pods_function():
    # A pool of only 8xlarge and larger (>= 30 vCPUs) may go to the calculator's 250 ceiling...
    big = KarpenterConfig(
        node_classes=[KarpenterNodeClassConfig(ami_alias="al2023@latest", max_pods=250)],
        node_pools=[default_pool(instance_sizes=["8xlarge", "12xlarge", "16xlarge", "24xlarge"])],
    )
    assert node_class_max_pods_from_config(big, big.node_classes[0], "eks") == 250
    # ...while a pool admitting t3.micro (2 ENIs x 1 slot x 16 + 2 = 34 pods with prefix delegation)
    # pulls the class below its configured 110 (config validation refuses such a pool; see test_karpenter_config).
    small = KarpenterConfig(
        node_classes=[KarpenterNodeClassConfig(ami_alias="al2023@latest", max_pods=110)],
        node_pools=[
            default_pool(instance_categories=["t"], instance_generation_greater_than=2, instance_sizes=["micro"])
        ],
    )
    assert (
        node_class_max_pods_from_config(small, small.node_classes[0], "k3s")
        == max_pods_for("t3.micro", prefix_delegation=True)
        == 34
    )


def test_pool_capacity_uses_prefix_delegation_and_custom_networking():
    shape = PoolShape(categories=("t",), generation_greater_than=2, architectures=("amd64",), sizes=("small",))
    # The pool admits t3.small (3 ENIs x 3 slots x 16 + 2 = 146 -> 110 cap) and t3a.small (2 ENIs:
    # 98); the smaller decides. With custom networking one ENI fewer: t3a.small 1 x 3 x 16 + 2 = 50.
    plain = pool_pod_capacity(shape, custom_networking=False)
    assert (plain.instance_type, plain.max_pods, plain.checked) == ("t3a.small", 98, 2)
    assert max_pods_for("t3.small", prefix_delegation=True) == 110
    capacity = pool_pod_capacity(shape, custom_networking=True)
    assert (capacity.instance_type, capacity.max_pods) == ("t3a.small", 50)
    assert capacity.max_pods == max_pods_for("t3a.small", prefix_delegation=True, custom_networking=True)


@pytest.mark.parametrize(
    "name, category, generation, arch, size",
    [
        ("c6g.2xlarge", "c", 6, "arm64", "2xlarge"),
        ("m7i.large", "m", 7, "amd64", "large"),
        ("r6a.xlarge", "r", 6, "amd64", "xlarge"),
        ("c7gn.medium", "c", 7, "arm64", "medium"),
        ("m7i-flex.large", "m", 7, "amd64", "large"),
        ("t3.micro", "t", 3, "amd64", "micro"),
    ],
)
def test_instance_type_names_parse_like_karpenter_labels(name, category, generation, arch, size):
    shape = parse_instance_type(name)
    assert (shape.category, shape.generation, shape.architecture, shape.size) == (category, generation, arch, size)


def test_unregistered_taint_is_karpenters():
    assert UNREGISTERED_TAINT == "karpenter.sh/unregistered:NoExecute"
