"""Cross-account workload identity, both ways: the `native` Pod Identity target role (the
association's `targetRoleArn`, EKS chains the role) and the `manual` chain (the app assumes the role).

The exported target trust policies are evaluated (tests/iam_eval.py) against the request STS sees
on the hop: the source role as principal, and for a native target the association's external id.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from components.config import ConfigError, parse_stack_config
from policy.offline_runner import CONFIG_DIR, evaluate, load_pack_config, reconcile
from programs.offline import reveal
from programs.plan import resources_from_run
from tests.conftest import shipped_config, variant_run
from tests.iam_eval import allows

ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ROLE = "aws:iam/role:Role"
TARGET = "k8s-platform:identity:CrossAccountTarget"
PROD = reconcile(load_pack_config(CONFIG_DIR / "prod.json"))
CATALOG_WRITER = "arn:aws:iam::333333333333:role/catalog-writer"
SOURCE = "arn:aws:iam::222222222222:role/prod-eks-wl-catalog-sync"
EXTERNAL_ID = "us-east-1/222222222222/prod-eks/catalog/catalog-sync"
READ_ORDERS = [{"sid": "ReadOrders", "actions": ["dynamodb:GetItem"], "resources": ["arn:aws:dynamodb:*:*:table/o"]}]


def native_workload(**cross: Any) -> dict[str, Any]:
    return {
        "name": "catalog-sync",
        "namespace": "catalog",
        "serviceAccount": "catalog-sync",
        "method": "pod-identity",
        "crossAccount": {"mode": "native", "roleArns": [CATALOG_WRITER], **cross},
    }


def with_workload(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [*copy.deepcopy(shipped_config("prod")["k8s-platform:workloads"]), *extra]


@pytest.fixture(scope="module")
def native_run():
    return variant_run("prod", "workloads", with_workload(native_workload()))


@pytest.fixture(scope="module")
def untagged_run():
    return variant_run(
        "prod", "workloads", with_workload(native_workload(disableSessionTags=True, sessionPolicy=READ_ORDERS))
    )


def association(run, workload: str):
    return run.one(ASSOCIATION, f"wl-{workload}-association")


def identity(run, workload: str) -> dict[str, Any]:
    return reveal(run.outputs["workloadIdentities"])[workload]


# ------------------------------------------------------------------------------------------- native
def test_native_target_is_the_associations_target_role(native_run):
    a = association(native_run, "catalog-sync").inputs
    assert a["targetRoleArn"] == CATALOG_WRITER
    assert a["roleArn"] == SOURCE
    assert (a["namespace"], a["serviceAccount"]) == ("catalog", "catalog-sync")
    assert "disableSessionTags" not in a and "policy" not in a  # session tags on: EKS's default


def test_native_target_trust_admits_exactly_the_source_role_with_the_external_id(native_run):
    [hop] = identity(native_run, "catalog-sync")["crossAccount"]
    assert hop["mode"] == "native" and hop["sourceRoleArn"] == SOURCE and hop["externalId"] == EXTERNAL_ID
    trust = json.loads(hop["targetTrustPolicy"])
    on_hop = {"sts:ExternalId": EXTERNAL_ID}
    assert allows(trust, "sts:AssumeRole", context=on_hop, principal=("AWS", SOURCE))
    assert allows(trust, "sts:TagSession", context=on_hop, principal=("AWS", SOURCE))  # EKS passes session tags
    # Without the association's external id (the source role assuming it itself, another association) or
    # from any other principal of the source account: refused.
    assert not allows(trust, "sts:AssumeRole", context={}, principal=("AWS", SOURCE))
    assert not allows(
        trust,
        "sts:AssumeRole",
        context={"sts:ExternalId": "us-east-1/222222222222/prod-eks/orders/orders-api"},
        principal=("AWS", SOURCE),
    )
    for other in ("arn:aws:iam::222222222222:root", "arn:aws:iam::222222222222:role/prod-eks-wl-orders-api"):
        assert not allows(trust, "sts:AssumeRole", context=on_hop, principal=("AWS", other))
    principals = {json.dumps(s["Principal"]) for s in trust["Statement"]}
    assert principals == {json.dumps({"AWS": SOURCE})}


def test_native_pod_credentials_are_the_target_roles_session(native_run):
    out = identity(native_run, "catalog-sync")
    assert out["podCredentials"]["roleArn"] == CATALOG_WRITER
    assert out["podCredentials"]["appMustAssumeRole"] is False
    assert out["podCredentials"]["deliveredBy"] == "eks-pod-identity-agent"
    assert out["expectedCallerIdentity"].startswith("arn:aws:sts::333333333333:assumed-role/catalog-writer/")


def test_native_source_role_may_chain_to_the_target_and_trusts_only_its_service_account(native_run):
    policy = json.loads(native_run.one("aws:iam/rolePolicy:RolePolicy", "wl-catalog-sync-policy").inputs["policy"])
    assert allows(policy, "sts:AssumeRole", CATALOG_WRITER) and allows(policy, "sts:TagSession", CATALOG_WRITER)
    assert not allows(policy, "sts:AssumeRole", "arn:aws:iam::333333333333:role/admin")
    trust = json.loads(native_run.one(ROLE, "wl-catalog-sync-role").inputs["assumeRolePolicy"])
    tags = {
        "aws:SourceAccount": "222222222222",
        "aws:RequestTag/eks-cluster-name": "prod-eks",
        "aws:RequestTag/kubernetes-namespace": "catalog",
        "aws:RequestTag/kubernetes-service-account": "catalog-sync",
    }
    assert allows(trust, "sts:AssumeRole", context=tags, principal=("Service", "pods.eks.amazonaws.com"))
    other = {**tags, "aws:RequestTag/kubernetes-service-account": "default"}
    assert not allows(trust, "sts:AssumeRole", context=other, principal=("Service", "pods.eks.amazonaws.com"))


def test_native_variant_passes_the_pack_and_exposes_the_trust_to_it(native_run):
    resources = resources_from_run(native_run)
    assert [v for v in evaluate(resources, PROD) if v.level == "mandatory"] == []
    target = next(r for r in resources if r.type == TARGET and r.name == "wl-catalog-sync-target-0")
    assert target.inputs["mode"] == "native" and target.inputs["externalId"] == EXTERNAL_ID
    # The pack would refuse the same trust if it admitted the whole source account.
    doc = json.loads(target.inputs["targetTrustPolicy"])
    doc["Statement"][0]["Principal"] = {"AWS": "arn:aws:iam::222222222222:root"}
    target.inputs["targetTrustPolicy"] = json.dumps(doc)
    hits = [v for v in evaluate(resources, PROD) if v.policy == "cross-account-target-trust-shape"]
    assert hits and hits[0].level == "mandatory" and hits[0].urn == target.urn


def test_untagged_native_association_carries_the_session_policy(untagged_run):
    a = association(untagged_run, "catalog-sync").inputs
    assert a["disableSessionTags"] is True
    session = json.loads(a["policy"])
    assert session["Statement"][0]["Action"] == "dynamodb:GetItem"
    # No session tags arrive: the source trust cannot pin them (it would never match) and the target
    # trust needs no TagSession.
    trust = json.loads(untagged_run.one(ROLE, "wl-catalog-sync-role").inputs["assumeRolePolicy"])
    assert "RequestTag" not in json.dumps(trust)
    assert allows(
        trust,
        "sts:AssumeRole",
        context={"aws:SourceAccount": "222222222222"},
        principal=("Service", "pods.eks.amazonaws.com"),
    )
    [hop] = identity(untagged_run, "catalog-sync")["crossAccount"]
    target_trust = json.loads(hop["targetTrustPolicy"])
    assert not allows(
        target_trust, "sts:TagSession", context={"sts:ExternalId": EXTERNAL_ID}, principal=("AWS", SOURCE)
    )
    assert allows(target_trust, "sts:AssumeRole", context={"sts:ExternalId": EXTERNAL_ID}, principal=("AWS", SOURCE))
    assert [v for v in evaluate(resources_from_run(untagged_run), PROD) if v.level == "mandatory"] == []


# ------------------------------------------------------------------------------------------- manual
def test_manual_chain_keeps_the_workload_role_and_exports_a_trust_without_external_id(prod_run):
    out = identity(prod_run, "orders-api")
    assert out["podCredentials"]["roleArn"] == out["roleArn"]
    assert out["podCredentials"]["appMustAssumeRole"] is True
    [hop] = out["crossAccount"]
    assert hop["mode"] == "manual" and "externalId" not in hop
    assert hop["podCredentials"]["appMustAssumeRole"] is True
    target = prod_run.one(TARGET, "wl-orders-api-target-0")
    assert target.inputs["targetTrustPolicy"] == hop["targetTrustPolicy"]
    assert target.inputs["sourceRoleArn"] == out["roleArn"]
    # Pod Identity's session tags are transitive: the hop needs TagSession too.
    trust = json.loads(hop["targetTrustPolicy"])
    assert allows(trust, "sts:TagSession", principal=("AWS", out["roleArn"]))
    # The association of a manual chain names no target role: the pod gets the workload role.
    assert "targetRoleArn" not in association(prod_run, "orders-api").inputs


def test_crossaccount_manual_mode_is_the_same_as_the_shorthand():
    raw = copy.deepcopy(shipped_config("prod"))
    wl = raw["k8s-platform:workloads"][0]
    targets = wl.pop("crossAccountRoleArns")
    wl["crossAccount"] = {"mode": "manual", "roleArns": targets}
    cfg = parse_stack_config(raw)
    assert cfg.workloads[0].cross_account_targets == targets and cfg.workloads[0].cross_account_mode == "manual"


# ------------------------------------------------------------------------------------------- config
def problems(*extra: dict[str, Any]) -> list[str]:
    raw = copy.deepcopy(shipped_config("prod"))
    raw["k8s-platform:workloads"] = with_workload(*extra)
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    return err.value.problems


@pytest.mark.parametrize(
    "change,key,words",
    [
        ({"method": "irsa"}, "workloads[2].crossAccount.mode", "native needs method pod-identity"),
        (
            {"crossAccount": {"mode": "native", "roleArns": [CATALOG_WRITER, "arn:aws:iam::333333333333:role/b"]}},
            "workloads[2].crossAccount.roleArns",
            "exactly one target role",
        ),
        ({"policies": {"statements": READ_ORDERS}}, "workloads[2].policies", "would never reach it"),
        (
            {"crossAccount": {"mode": "native", "roleArns": [CATALOG_WRITER], "sessionPolicy": READ_ORDERS}},
            "workloads[2].crossAccount.sessionPolicy",
            "disableSessionTags: true",
        ),
        (
            {"crossAccount": {"mode": "manual", "roleArns": [CATALOG_WRITER], "disableSessionTags": True}},
            "workloads[2].crossAccount.disableSessionTags",
            "mode native only",
        ),
        (
            {"crossAccount": {"mode": "manual", "roleArns": [CATALOG_WRITER], "sessionPolicy": READ_ORDERS}},
            "workloads[2].crossAccount.sessionPolicy",
            "mode native only",
        ),
        ({"crossAccountRoleArns": [CATALOG_WRITER]}, "workloads[2].crossAccountRoleArns", "not both"),
        (
            {"crossAccount": {"mode": "native", "roleArns": ["arn:aws:iam::222222222222:role/local"]}},
            "workloads[2].crossAccount.roleArns",
            "is in this account",
        ),
        (
            {
                "crossAccount": {
                    "mode": "native",
                    "roleArns": [CATALOG_WRITER],
                    "disableSessionTags": True,
                    "sessionPolicy": [
                        {
                            "actions": ["s3:GetObject"],
                            "resources": [f"arn:aws:s3:::bucket-{i:04d}/*" for i in range(90)],
                        }
                    ],
                }
            },
            "workloads[2].crossAccount.sessionPolicy",
            "at most 2048",
        ),
        ({"crossAccount": {"mode": "native", "roleArns": []}}, "workloads[2].crossAccount.roleArns", "at least one"),
        ({"crossAccount": {"mode": "chained", "roleArns": [CATALOG_WRITER]}}, "workloads[2].crossAccount.mode", ""),
    ],
    ids=[
        "native-needs-pod-identity",
        "native-one-target",
        "native-no-own-policies",
        "session-policy-needs-untagged",
        "manual-no-session-tags-knob",
        "manual-no-session-policy",
        "both-keys",
        "same-account",
        "session-policy-too-long",
        "no-targets",
        "unknown-mode",
    ],
)
def test_cross_account_config_is_refused_naming_the_key(change, key, words):
    found = problems({**native_workload(), **change})
    hits = [p for p in found if p.startswith(f"k8s-platform:{key}:")]
    assert hits, found
    assert words in hits[0]
