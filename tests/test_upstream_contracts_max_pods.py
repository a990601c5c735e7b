"""Upstream contract of the maxPods data: components/data/instance_network_limits.json against the
published ENI data (../shared/reference/eni-instance-info.jsonl, amazon-eks-ami), published max-pods
figures reproduced, and NodePools of families the old 102-row table refused (GPU, Graviton).
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import pytest

from components.config import parse_stack_config
from components.config.karpenter_rules import pool_shape, uses_custom_networking
from components.core.max_pods import _DATA_FILE, INSTANCE_LIMITS, max_pods, max_pods_for
from components.core.pool_capacity import admitted_instance_types, pool_pod_capacity
from components.karpenter.specs import node_class_max_pods_from_config, node_pool_from_config
from tests.conftest import shipped_config
from tests.karpenter_crd_validation import assert_valid
from tests.upstream_reference import reference_file


def published_rows() -> dict[str, dict]:
    lines = reference_file("eni-instance-info.jsonl").read_text().splitlines()
    return {r["instanceType"]: r for r in (json.loads(line) for line in lines if line.strip())}


# ------------------------------------------------------------------------- the table vs upstream
def test_table_has_every_published_type_with_the_published_figures():
    published = published_rows()
    omitted = set(json.loads(_DATA_FILE.read_text())["_source"]["omitted"])
    assert len(published) > 1300
    assert sorted(set(published) - set(INSTANCE_LIMITS) - omitted) == []
    assert sorted(set(INSTANCE_LIMITS) - set(published)) == []  # nothing but published types
    assert len(omitted) <= 3  # types without a vCPU figure: keep this list tiny
    for name, limits in INSTANCE_LIMITS.items():
        row = published[name]
        assert (limits.max_enis, limits.ipv4_per_eni) == (row["defaultMaxENIs"], row["ipv4AddressesPerInterface"]), name


def test_table_vcpus_agree_with_ec2_describe_instance_types():
    import moto

    data = json.loads(
        gzip.decompress((Path(moto.__file__).parent / "ec2/resources/instance_types.json.gz").read_bytes())
    )
    checked = 0
    for name, limits in INSTANCE_LIMITS.items():
        if name in data:
            assert limits.vcpus == data[name]["VCpuInfo"]["DefaultVCpus"], name
            checked += 1
    assert checked > 1300


def test_table_names_its_source_and_generator():
    source = json.loads(_DATA_FILE.read_text())["_source"]
    assert "amazon-eks-ami" in source["enis"] and "eni-instance-info.jsonl" in source["enis"]
    assert "moto" in source["vcpus"] and "scripts/generate_instance_network_limits.py" in source["generator"]


def test_the_generator_reproduces_the_table(tmp_path):
    from scripts.generate_instance_network_limits import main

    out = tmp_path / "limits.json"
    assert main(["--eni-data", str(reference_file("eni-instance-info.jsonl")), "--output", str(out)]) == 0
    # The rows, not the header: that names the moto version the vCPUs were read from.
    regenerated, shipped = json.loads(out.read_text()), json.loads(_DATA_FILE.read_text())
    assert regenerated["instances"] == shipped["instances"]
    assert regenerated["_source"]["omitted"] == shipped["_source"]["omitted"]


# ------------------------------------------------------------------ published max-pods figures
# amazon-eks-ami eni-max-pods.txt (secondary-IP mode, uncapped there): one or two per family.
PUBLISHED_ENI_MAX_PODS = {
    "m5.large": 29,
    "m5.4xlarge": 234,
    "m5.24xlarge": 737,
    "c5.18xlarge": 737,
    "t3.medium": 17,
    "a1.large": 29,
    "a1.4xlarge": 234,
    "g4dn.xlarge": 29,
    "g5.xlarge": 58,
    "p5.48xlarge": 100,
    "p4d.24xlarge": 737,
    "i4i.large": 29,
    "c7gn.large": 29,
    "inf1.xlarge": 38,
    "hpc6id.32xlarge": 51,
    "x1.32xlarge": 234,
    "m7g.large": 29,
}


@pytest.mark.parametrize("instance_type, published", sorted(PUBLISHED_ENI_MAX_PODS.items()))
def test_published_eni_max_pods_reproduced(instance_type, published):
    limits = INSTANCE_LIMITS[instance_type]
    assert limits.max_enis * (limits.ipv4_per_eni - 1) + 2 == published
    # The calculator caps by vCPUs (110 below 30, else 250).
    assert max_pods(limits, prefix_delegation=False) == min(published, 110 if limits.vcpus < 30 else 250)


@pytest.mark.parametrize(
    "instance_type, prefix_delegation, custom_networking, expected",
    [
        # max-pods-calculator.sh figures (EKS User Guide examples and their arithmetic).
        ("m5.large", True, False, 110),
        ("m5.large", False, True, 20),  # (3 - 1) ENIs x 9 + 2
        ("m5.large", True, True, 110),
        ("t3.micro", True, False, 34),  # 2 x 1 x 16 + 2
        ("g5.48xlarge", False, False, 250),  # 345 uncapped, 192 vCPUs
        ("p5.48xlarge", False, True, 51),  # 1 pod ENI x 49 + 2
        ("hpc6id.32xlarge", True, True, 2),  # one ENI: nothing left for pods under custom networking
        ("c7gn.16xlarge", True, True, 250),
    ],
)
def test_calculator_figures(instance_type, prefix_delegation, custom_networking, expected):
    assert (
        max_pods_for(instance_type, prefix_delegation=prefix_delegation, custom_networking=custom_networking)
        == expected
    )


# ---------------------------------------------------------------- pools the old table refused
def with_pool(stack: str, pool: dict) -> dict:
    raw = copy.deepcopy(shipped_config(stack))
    raw["k8s-platform:karpenter"]["nodePools"].append(pool)
    return raw


GPU_POOL = {
    "name": "gpu",
    "capacityTypes": ["on-demand"],
    "architectures": ["amd64"],
    "instanceCategories": ["g"],
    "instanceGenerationGreaterThan": 4,
    "instanceFamilies": ["g5", "g6"],
    "limits": {"cpu": "256", "memory": "1024Gi"},
    "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
}
GRAVITON_POOL = {
    "name": "graviton",
    "architectures": ["arm64"],
    "instanceCategories": ["c", "m"],
    "instanceGenerationGreaterThan": 6,
    "instanceFamilies": ["c7g", "m7g"],
    "limits": {"cpu": "256", "memory": "1024Gi"},
}


@pytest.mark.parametrize("stack", ["prod", "dev"])
@pytest.mark.parametrize("pool, families", [(GPU_POOL, {"g5", "g6"}), (GRAVITON_POOL, {"c7g", "m7g"})])
def test_gpu_and_graviton_pools_are_accepted_with_max_pods_verified(stack, pool, families):
    raw = with_pool(stack, pool)
    if stack == "dev" and pool is GRAVITON_POOL:
        raw["k8s-platform:karpenter"]["nodeClasses"][0]["amiSsmParameters"] = {
            "amd64": "/k8s-platform/k3s/ami/amd64",
            "arm64": "/k8s-platform/k3s/ami/arm64",
        }
    cfg = parse_stack_config(raw)  # refused before, "matches no instance type with ENI data"
    parsed = next(p for p in cfg.karpenter.node_pools if p.name == pool["name"])
    admitted = admitted_instance_types(pool_shape(parsed))
    assert {r.instance_type.split(".")[0] for r in admitted} == families
    assert len(admitted) >= 8
    node_class = next(nc for nc in cfg.karpenter.node_classes if nc.name == parsed.node_class)
    custom = uses_custom_networking(cfg.cluster.kind)
    capacity = pool_pod_capacity(pool_shape(parsed), custom_networking=custom)
    for row in admitted:  # every admitted type holds the class's maxPods
        assert max_pods(row, prefix_delegation=True, custom_networking=custom) >= node_class.max_pods, row
    assert capacity.max_pods >= node_class.max_pods
    assert node_class_max_pods_from_config(cfg.karpenter, node_class, cfg.cluster.kind) == node_class.max_pods
    manifest = node_pool_from_config(parsed).manifest()
    assert_valid(manifest)
    (family_requirement,) = [
        r
        for r in manifest["spec"]["template"]["spec"]["requirements"]
        if r["key"] == "karpenter.k8s.aws/instance-family"
    ]
    assert sorted(family_requirement["values"]) == sorted(families)


def test_a_family_the_other_requirements_exclude_is_refused_naming_the_key():
    from components.config import ConfigError

    bad = {**GRAVITON_POOL, "instanceFamilies": ["c7g", "m7i"]}
    with pytest.raises(ConfigError) as err:
        parse_stack_config(with_pool("prod", bad))
    assert "karpenter.nodePools[2].instanceFamilies: pool 'graviton': family 'm7i'" in str(err.value)
