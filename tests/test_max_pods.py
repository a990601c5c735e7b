"""maxPods against AWS's published figures and the max-pods calculator's rules."""

from __future__ import annotations

import pytest

from components.core.max_pods import (
    INSTANCE_LIMITS,
    InstanceNetworkLimits,
    max_pods,
    max_pods_for,
    pod_ceiling,
)

# Published secondary-IP figures from amazon-eks-ami's eni-max-pods.txt (uncapped there).
# Each is below its vCPU ceiling, so the calculator's capped result is the same number.
PUBLISHED_SECONDARY_IP = {
    "m5.large": 29,
    "m5.xlarge": 58,
    "m5.2xlarge": 58,
    "t3.nano": 4,
    "t3.micro": 4,
    "t3.small": 11,
    "t3.medium": 17,
    "t3.large": 35,
    "c5.large": 29,
    "r5.large": 29,
    "m6g.large": 29,
    "c7g.xlarge": 58,
    "m7i.2xlarge": 58,
}


@pytest.mark.parametrize("instance_type,expected", sorted(PUBLISHED_SECONDARY_IP.items()))
def test_secondary_ip_mode_matches_published_eni_max_pods(instance_type, expected):
    assert max_pods_for(instance_type, prefix_delegation=False) == expected


def test_m5_large_issue_acceptance_values():
    assert max_pods_for("m5.large", prefix_delegation=False) == 29
    assert max_pods_for("m5.large", prefix_delegation=True) == 110


@pytest.mark.parametrize(
    "instance_type,published_uncapped,vcpus,capped",
    [
        # eni-max-pods.txt lists the raw ENI figure; the calculator caps it by vCPU count.
        ("c5.18xlarge", 737, 72, 250),
        ("m5.24xlarge", 737, 96, 250),
        ("m5.4xlarge", 234, 16, 110),
        ("r6i.8xlarge", 234, 32, 234),  # 32 vCPUs: the 250 ceiling applies and is not reached
    ],
)
def test_large_types_are_capped_by_vcpus(instance_type, published_uncapped, vcpus, capped):
    limits = INSTANCE_LIMITS[instance_type]
    assert limits.vcpus == vcpus
    assert limits.max_enis * (limits.ipv4_per_eni - 1) + 2 == published_uncapped
    assert max_pods_for(instance_type, prefix_delegation=False) == capped


@pytest.mark.parametrize(
    "instance_type,expected",
    [
        ("t3.micro", 34),  # 2 ENIs * 1 slot * 16 + 2: below the cap, prefixes still bounded by slots
        ("t3.small", 110),  # 3 * 3 * 16 + 2 = 146 -> 110 (2 vCPUs)
        ("m5.xlarge", 110),  # 4 * 14 * 16 + 2 = 898 -> 110
        ("c5.9xlarge", 250),  # 36 vCPUs: the high ceiling
        ("c5.18xlarge", 250),
    ],
)
def test_prefix_delegation(instance_type, expected):
    assert max_pods_for(instance_type, prefix_delegation=True) == expected


@pytest.mark.parametrize(
    "instance_type,prefix_delegation,expected",
    [
        # AWS custom-networking docs: m5.large gives (3 - 1) * (10 - 1) + 2 = 20 pods.
        ("m5.large", False, 20),
        ("t3.medium", False, 12),
        ("m5.xlarge", False, 44),
        ("t3.micro", False, 3),
        ("t3.micro", True, 18),  # one pod ENI, one /28
        ("m5.large", True, 110),  # 2 * 9 * 16 + 2 = 290 -> 110
        ("c5.18xlarge", False, 250),  # 14 * 49 + 2 = 688 -> 250
    ],
)
def test_custom_networking_primary_eni_carries_no_pods(instance_type, prefix_delegation, expected):
    assert max_pods_for(instance_type, prefix_delegation=prefix_delegation, custom_networking=True) == expected


def test_custom_networking_never_exceeds_plain_mode():
    for name in INSTANCE_LIMITS:
        for pd in (False, True):
            assert max_pods_for(name, prefix_delegation=pd, custom_networking=True) <= max_pods_for(
                name, prefix_delegation=pd
            )


def test_ceiling_boundary_is_30_vcpus():
    assert pod_ceiling(29) == 110
    assert pod_ceiling(30) == 250
    big_29 = InstanceNetworkLimits("x.test", vcpus=29, max_enis=15, ipv4_per_eni=50)
    big_30 = InstanceNetworkLimits("y.test", vcpus=30, max_enis=15, ipv4_per_eni=50)
    assert max_pods(big_29, prefix_delegation=False) == 110
    assert max_pods(big_30, prefix_delegation=False) == 250


def test_single_eni_instance_cannot_use_custom_networking():
    one_eni = InstanceNetworkLimits("z.test", vcpus=2, max_enis=1, ipv4_per_eni=4)
    assert max_pods(one_eni, prefix_delegation=False) == 5
    # No ENI is left for pods: only the host-network pods fit (the calculator's result).
    assert max_pods(one_eni, prefix_delegation=False, custom_networking=True) == 2
    assert max_pods(one_eni, prefix_delegation=True, custom_networking=True) == 2


def test_unknown_instance_type_is_named():
    with pytest.raises(ValueError, match="unknown instance type 'x9.mega'"):
        max_pods_for("x9.mega", prefix_delegation=True)


def test_table_covers_the_common_families():
    for family in (
        "c5",
        "m5",
        "r5",
        "c6i",
        "m6i",
        "r6i",
        "c6g",
        "m6g",
        "r6g",
        "c7i",
        "m7i",
        "r7i",
        "c7g",
        "m7g",
        "r7g",
    ):
        for size in ("large", "xlarge", "2xlarge", "4xlarge"):
            assert f"{family}.{size}" in INSTANCE_LIMITS
    for size in ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"):
        assert f"t3.{size}" in INSTANCE_LIMITS
    for limits in INSTANCE_LIMITS.values():
        assert limits.vcpus >= 1 and limits.max_enis >= 1 and limits.ipv4_per_eni >= 2
