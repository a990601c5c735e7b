"""Pure rendering of access entries from `cluster.eks.access`."""

from __future__ import annotations

from components.config import EksAccessConfig
from components.eks.access import (
    CLUSTER_ADMIN_POLICY,
    EDIT_POLICY,
    VIEW_POLICY,
    PolicyGrant,
    node_access_entry,
    render_access_entries,
)

A = "arn:aws:iam::222222222222:role/"


def access(**kw) -> EksAccessConfig:
    return EksAccessConfig.model_validate(kw)


def test_levels_map_to_policies_and_scopes():
    specs = render_access_entries(
        access(
            adminRoleArns=[A + "admin"],
            breakGlassRoleArn=A + "bg",
            readOnlyRoleArns=[A + "ro"],
            namespaceGrants=[
                {"roleArn": A + "dev", "namespaces": ["a", "b"], "policy": "view"},
                {"roleArn": A + "ops", "namespaces": ["c"], "policy": "edit"},
            ],
        )
    )
    by_arn = {s.principal_arn: s for s in specs}
    assert by_arn[A + "admin"].grants == (PolicyGrant(CLUSTER_ADMIN_POLICY, "cluster"),)
    assert by_arn[A + "bg"].level == "break-glass" and by_arn[A + "bg"].is_admin
    assert by_arn[A + "ro"].grants == (PolicyGrant(VIEW_POLICY, "cluster"),) and not by_arn[A + "ro"].is_admin
    assert by_arn[A + "dev"].grants == (PolicyGrant(VIEW_POLICY, "namespace", ("a", "b")),)
    assert by_arn[A + "ops"].grants == (PolicyGrant(EDIT_POLICY, "namespace", ("c",)),)
    assert all(s.entry_type == "STANDARD" for s in specs)
    assert specs[0].level == "admin"  # admins first


def test_no_config_means_no_access():
    assert render_access_entries(access()) == []


def test_keys_are_unique_even_for_same_role_names_in_different_paths():
    specs = render_access_entries(access(adminRoleArns=[A + "team-a/admin", A + "team-b/admin"]))
    keys = [s.key for s in specs]
    assert len(set(keys)) == 2 and all(k.startswith("admin-admin-") for k in keys)


def test_node_entries_are_ec2_linux_without_policies():
    spec = node_access_entry("karpenter-nodes", A + "karpenter-node")
    assert spec.entry_type == "EC2_LINUX" and spec.grants == () and spec.level == "node"
