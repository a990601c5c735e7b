"""`k8s-platform:workloads` validation: refused before any resource, with the key and what is allowed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.config import ConfigError, parse_stack_config
from tests.conftest import shipped_config

S3_WRITE = {"statements": [{"actions": ["s3:PutObject"], "resources": ["arn:aws:s3:::b/*"]}]}


def with_workloads(stack: str, *workloads: dict[str, Any], keep: bool = True) -> dict[str, Any]:
    raw = copy.deepcopy(shipped_config(stack))
    existing = raw.get("k8s-platform:workloads", []) if keep else []
    raw["k8s-platform:workloads"] = [*existing, *workloads]
    return raw


def workload(name: str, namespace: str, sa: str, method: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "serviceAccount": sa, "method": method, "policies": S3_WRITE, **extra}


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    return err.value.problems


def test_shipped_stacks_hold_the_required_methods():
    dev = {w.method for w in parse_stack_config(shipped_config("dev")).workloads}
    prod = {w.method for w in parse_stack_config(shipped_config("prod")).workloads}
    assert dev == {"irsa", "roles-anywhere"} and prod == {"pod-identity", "irsa"}


def test_pod_identity_on_k3s_is_refused_naming_the_key():
    [p] = problems(with_workloads("dev", workload("api", "api", "api", "pod-identity"), keep=False))
    assert p.startswith("k8s-platform:workloads[0].method: pod-identity needs EKS")
    assert "irsa or roles-anywhere" in p


def test_two_bindings_for_one_service_account_are_refused():
    raw = with_workloads("prod", workload("orders-api-2", "orders", "orders-api", "pod-identity"))
    [p] = problems(raw)
    assert p.startswith(
        "k8s-platform:workloads[2].serviceAccount: system:serviceaccount:orders:orders-api is already bound by "
        "workloads[0]"
    )


def test_same_service_account_with_two_methods_is_refused_too():
    raw = with_workloads("prod", workload("orders-irsa", "orders", "orders-api", "irsa"))
    assert "workloads[2].serviceAccount" in problems(raw)[0]


@pytest.mark.parametrize("stack,method", [("prod", "pod-identity"), ("dev", "irsa")])
def test_a_platform_controllers_service_account_cannot_be_bound_again(stack, method):
    from components.addons import values as addon_values
    from components.config.identity_rules import CONTROLLER_SERVICE_ACCOUNTS
    from components.karpenter import controller as karpenter

    # The reserved set names exactly the ServiceAccounts the controllers are bound through.
    assert {
        ("kube-system", addon_values.LB_CONTROLLER_SERVICE_ACCOUNT),
        ("kube-system", addon_values.EBS_CSI_CONTROLLER_SERVICE_ACCOUNT),
        ("kube-system", addon_values.CCM_SERVICE_ACCOUNT),
        (karpenter.NAMESPACE, karpenter.SERVICE_ACCOUNT),
    } <= CONTROLLER_SERVICE_ACCOUNTS
    raw = with_workloads(stack, workload("hijack", "kube-system", "aws-load-balancer-controller", method))
    [p] = problems(raw)
    assert (
        p.startswith("k8s-platform:workloads[")
        and ".serviceAccount: system:serviceaccount:kube-system:"
        "aws-load-balancer-controller is a platform controller's ServiceAccount"
        in p
    )


def test_duplicate_workload_names_are_refused():
    raw = with_workloads("prod", workload("orders-api", "other", "other", "irsa"))
    assert problems(raw)[0].startswith("k8s-platform:workloads[2].name: 'orders-api' is already")


def test_unknown_method_lists_the_allowed_ones():
    [p] = problems(with_workloads("prod", workload("x", "x", "x", "iam-user"), keep=False))
    assert p.startswith("k8s-platform:workloads[0].method: got 'iam-user'")
    for allowed in ("pod-identity", "irsa", "roles-anywhere", "instance-profile"):
        assert allowed in p


def test_irsa_issuers_must_exist_and_include_the_active_one():
    [p] = problems(with_workloads("dev", workload("x", "x", "x", "irsa", issuers=["nope"]), keep=False))
    assert p.startswith("k8s-platform:workloads[0].issuers: nope not in identity.issuers; allowed: primary, edge")
    [p] = problems(with_workloads("dev", workload("x", "x", "x", "irsa", issuers=["edge"]), keep=False))
    assert "must include the active issuer 'primary'" in p
    [p] = problems(with_workloads("prod", workload("x", "x", "x", "irsa", issuers=["primary"]), keep=False))
    assert p.startswith("k8s-platform:workloads[0].issuers: applies to method irsa on k3s only")


def test_a_workload_without_permissions_is_refused():
    raw = with_workloads("dev", {"name": "x", "namespace": "x", "serviceAccount": "x", "method": "irsa"}, keep=False)
    assert problems(raw)[0].startswith("k8s-platform:workloads[0].policies: the workload gets no permission")


def test_cross_account_targets_must_be_role_arns_in_other_accounts():
    [p] = problems(
        with_workloads(
            "prod",
            workload("x", "x", "x", "pod-identity", crossAccountRoleArns=["arn:aws:iam::222222222222:role/local"]),
            keep=False,
        )
    )
    assert p.startswith("k8s-platform:workloads[0].crossAccountRoleArns:") and "this account" in p
    [p] = problems(
        with_workloads("prod", workload("x", "x", "x", "pod-identity", crossAccountRoleArns=["role/x"]), keep=False)
    )
    assert "workloads[0].crossAccountRoleArns" in p and "IAM role ARN" in p


@pytest.mark.parametrize(
    "statement,fragment",
    [
        ({"actions": ["*"], "resources": ["*"]}, "'*' is refused"),
        ({"actions": ["s3:*"], "resources": ["*"]}, "not least privilege"),
        ({"actions": ["s3:GetObject"], "resources": []}, "at least one ARN"),
    ],
)
def test_overbroad_statements_are_refused(statement, fragment):
    raw = with_workloads(
        "dev", {**workload("x", "x", "x", "irsa"), "policies": {"statements": [statement]}}, keep=False
    )
    [p] = problems(raw)
    assert p.startswith("k8s-platform:workloads[0].policies.statements[0]") and fragment in p


def test_admin_managed_policies_are_refused():
    raw = with_workloads(
        "dev",
        {
            **workload("x", "x", "x", "irsa"),
            "policies": {"managedArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]},
        },
        keep=False,
    )
    assert "least privilege" in problems(raw)[0]


def test_workload_name_length_is_bounded_by_the_role_name():
    [p] = problems(with_workloads("dev", workload("a" * 25, "x", "x", "irsa"), keep=False))
    assert p.startswith("k8s-platform:workloads[0].name:") and "at most 24" in p


def test_instance_profile_on_eks_needs_karpenter_nodes():
    raw = with_workloads("prod", workload("legacy", "legacy", "legacy", "instance-profile"), keep=False)
    assert parse_stack_config(raw).workloads[0].method == "instance-profile"
    raw["k8s-platform:karpenter"] = {**raw["k8s-platform:karpenter"], "enabled": False}
    [p] = [p for p in problems(raw) if "workloads" in p]
    assert p.startswith("k8s-platform:workloads[0].method: instance-profile on EKS attaches to Karpenter's node role")
