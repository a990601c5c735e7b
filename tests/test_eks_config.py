"""`cluster.eks` config: every default, and every refusal with the key it names and what is allowed."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_stack_config
from components.core.pins import ADDON_VERSIONS
from tests.conftest import DELETE

ADMIN = "arn:aws:iam::222222222222:role/platform-admin"


def problems_for(raw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_stack_config(raw)
    return info.value.problems


def minimal_eks(mutate_config, **overrides):
    """Prod with only the one required EKS key (an admin role): everything else from defaults."""
    raw = mutate_config("prod", "cluster.eks", {"access": {"adminRoleArns": [ADMIN]}, **overrides})
    return raw


def test_defaults(mutate_config):
    eks = parse_stack_config(minimal_eks(mutate_config)).cluster.eks
    assert eks.version == "1.35"
    assert eks.authentication_mode == "API"
    assert eks.endpoint.private_access is True
    assert eks.endpoint.public_access is False
    assert eks.endpoint.public_access_cidrs == []
    assert eks.log_types == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    assert eks.log_retention_days == 90
    assert eks.upgrade_policy.support_type == "STANDARD"
    assert eks.resolve_conflicts_on_update == "PRESERVE"
    assert eks.addon_versions == {}
    assert eks.access.break_glass_role_arn is None
    assert eks.access.read_only_role_arns == [] and eks.access.namespace_grants == []
    ng = eks.system_node_group
    assert ng.instance_types == ["m7i.large", "m6i.large"]
    assert (ng.min_size, ng.desired_size, ng.max_size, ng.disk_size_gib) == (2, 3, 4, 50)


def test_default_version_has_pinned_addons():
    assert "1.35" in ADDON_VERSIONS


def test_shipped_prod_eks_section():
    from tests.conftest import shipped_config

    eks = parse_stack_config(shipped_config("prod")).cluster.eks
    assert eks.access.admin_role_arns == [ADMIN]
    assert eks.access.break_glass_role_arn.startswith("arn:aws:iam::222222222222:role/")
    assert eks.system_node_group.disk_size_gib == 50


def test_api_and_config_map_is_allowed_for_migrations(mutate_config):
    eks = parse_stack_config(minimal_eks(mutate_config, authenticationMode="API_AND_CONFIG_MAP")).cluster.eks
    assert eks.authentication_mode == "API_AND_CONFIG_MAP"


def test_public_cidrs_allowed_when_listed(mutate_config):
    raw = minimal_eks(mutate_config, endpoint={"publicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]})
    assert parse_stack_config(raw).cluster.eks.endpoint.public_access_cidrs == ["203.0.113.0/24"]


def test_open_endpoint_is_only_refused_in_prod(mutate_config):
    raw = minimal_eks(mutate_config, endpoint={"publicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]})
    raw["k8s-platform:environment"] = "staging"
    assert parse_stack_config(raw).cluster.eks.endpoint.public_access_cidrs == ["0.0.0.0/0"]


def test_eks_section_is_not_required_for_k3s(mutate_config):
    raw = mutate_config("prod", "cluster.eks", DELETE)
    raw["k8s-platform:cluster"]["kind"] = "k3s"
    raw["k8s-platform:environment"] = "staging"
    try:
        cfg = parse_stack_config(raw)
    except ConfigError as exc:  # other sections may require k3s keys; none may be about cluster.eks
        assert not [p for p in exc.problems if "cluster.eks" in p], exc.problems
    else:
        assert cfg.cluster.eks.access.admin_role_arns == []


P = "k8s-platform:cluster.eks"


@pytest.mark.parametrize(
    ("eks", "expected_key", "expected_text"),
    [
        ({"authenticationMode": "CONFIG_MAP"}, f"{P}.authenticationMode", "CONFIG_MAP is refused"),
        ({"authenticationMode": "CONFIG_MAP"}, f"{P}.authenticationMode", "use API"),
        ({"authenticationMode": "IAM"}, f"{P}.authenticationMode", "allowed: API, API_AND_CONFIG_MAP"),
        (
            {"endpoint": {"publicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}},
            f"{P}.endpoint.publicAccessCidrs",
            "0.0.0.0/0 opens the prod API server to the internet",
        ),
        ({"endpoint": {"publicAccess": True}}, f"{P}.endpoint.publicAccessCidrs", "needs explicit CIDRs"),
        (
            {"endpoint": {"publicAccessCidrs": ["203.0.113.0/24"]}},
            f"{P}.endpoint.publicAccessCidrs",
            "publicAccess is false",
        ),
        (
            {"endpoint": {"publicAccess": True, "publicAccessCidrs": ["203.0.113.7/24"]}},
            f"{P}.endpoint.publicAccessCidrs",
            "not a valid IPv4 CIDR",
        ),
        ({"endpoint": {"privateAccess": False}}, f"{P}.endpoint.privateAccess", "must be true"),
        ({"version": "1.29"}, f"{P}.version", "allowed: 1.33, 1.34, 1.35, 1.36"),
        ({"logTypes": ["api", "authenticator"]}, f"{P}.logTypes", "audit must stay enabled"),
        ({"logTypes": ["api", "audit", "authenticator", "kubelet"]}, f"{P}.logTypes[3]", "'scheduler'"),
        ({"logRetentionDays": 10}, f"{P}.logRetentionDays", "14"),
        ({"upgradePolicy": {"supportType": "FOREVER"}}, f"{P}.upgradePolicy.supportType", "'STANDARD' or 'EXTENDED'"),
        ({"access": {"adminRoleArns": []}}, f"{P}.access.adminRoleArns", "at least one admin role"),
        (
            {"access": {"adminRoleArns": ["arn:aws:iam::222222222222:user/bob"]}},
            f"{P}.access.adminRoleArns",
            "not an IAM role ARN",
        ),
        (
            {"access": {"adminRoleArns": [ADMIN], "readOnlyRoleArns": [ADMIN]}},
            f"{P}.access.readOnlyRoleArns",
            "already listed in adminRoleArns",
        ),
        (
            {
                "access": {
                    "adminRoleArns": [ADMIN],
                    "namespaceGrants": [
                        {"roleArn": "arn:aws:iam::222222222222:role/dev", "namespaces": [], "policy": "edit"}
                    ],
                }
            },
            f"{P}.access.namespaceGrants[0].namespaces",
            "at least one namespace",
        ),
        (
            {
                "access": {
                    "adminRoleArns": [ADMIN],
                    "namespaceGrants": [
                        {"roleArn": "arn:aws:iam::222222222222:role/dev", "namespaces": ["apps"], "policy": "admin"}
                    ],
                }
            },
            f"{P}.access.namespaceGrants[0].policy",
            "'view' or 'edit'",
        ),
        (
            {
                "access": {
                    "adminRoleArns": [ADMIN],
                    "namespaceGrants": [
                        {"roleArn": "arn:aws:iam::222222222222:role/dev", "namespaces": ["Apps"], "policy": "view"}
                    ],
                }
            },
            f"{P}.access.namespaceGrants[0].namespaces",
            "DNS-safe",
        ),
        (
            {"systemNodeGroup": {"instanceTypes": ["x9.mega"]}},
            f"{P}.systemNodeGroup.instanceTypes",
            "x9.mega: no ENI data",
        ),
        (
            {"systemNodeGroup": {"instanceTypes": ["m7g.large", "m7i.large"]}},
            f"{P}.systemNodeGroup.instanceTypes",
            "mixes arm64",
        ),
        # EKS appends its own maxPods (prefix delegation, no custom networking) to managed nodes: t3.small
        # would get 110 although its two pod ENIs address only 98 pods.
        (
            {"systemNodeGroup": {"instanceTypes": ["m7i.large", "t3.small"]}},
            f"{P}.systemNodeGroup.instanceTypes",
            "t3.small: EKS managed node groups set the kubelet's maxPods themselves",
        ),
        (
            {"systemNodeGroup": {"minSize": 3, "desiredSize": 2}},
            f"{P}.systemNodeGroup.desiredSize",
            "minSize <= desiredSize",
        ),
        ({"systemNodeGroup": {"diskSizeGiB": 10}}, f"{P}.systemNodeGroup.diskSizeGiB", "greater than or equal to 20"),
        ({"addonVersions": {"metrics-server": "v0.8.0-eksbuild.1"}}, f"{P}.addonVersions", "not an installed add-on"),
        ({"addonVersions": {"coredns": "latest"}}, f"{P}.addonVersions", "not an exact add-on version"),
        ({"resolveConflictsOnUpdate": "MERGE"}, f"{P}.resolveConflictsOnUpdate", "'PRESERVE'"),
        ({"bootstrapCreatorAdmin": True}, f"{P}.bootstrapCreatorAdmin", "not a known key"),
    ],
)
def test_each_refusal_names_its_key(mutate_config, eks, expected_key, expected_text):
    eks = {"access": {"adminRoleArns": [ADMIN]}, **eks}
    problems = problems_for(mutate_config("prod", "cluster.eks", eks))
    matching = [p for p in problems if p.startswith(expected_key + ":")]
    assert matching, problems
    assert expected_text in matching[0], matching[0]


def test_managed_node_group_overcommit_check_matches_the_max_pods_table():
    from components.config.eks import managed_node_group_overcommits

    # Custom networking costs these small types addresses below what EKS configures (prefix delegation only).
    assert managed_node_group_overcommits(["t3.micro", "t3.small", "t3.medium", "m7i.large", "m7g.large"]) == [
        "t3.micro",
        "t3.small",
    ]
