"""Fargate profiles (EKS): a prod variant that previews clean, with the pod execution role's trust and
policy, the profiles' selectors and private subnets, and the config refusals users need to read
(Pod Identity workloads cannot run on Fargate; the IRSA alternative is named)."""

from __future__ import annotations

import json

import pytest

from components.config import ConfigError, parse_stack_config
from components.core.iam_documents import EKS_FARGATE_POD_EXECUTION_POLICY_ARN
from components.eks.fargate import pod_execution_trust
from policy.registry import BY_ID
from programs.plan import build_plan
from programs.platformctl.policy_gate import apply_policies
from tests.conftest import mutated_config, variant_run

PROFILE = "aws:eks/fargateProfile:FargateProfile"
KEY = "cluster.eks.fargateProfiles"
# `billing` holds an IRSA workload (allowed on Fargate); `batch` holds none.
PROFILES = [
    {"name": "batch", "selectors": [{"namespace": "batch"}]},
    {"name": "billing-jobs", "selectors": [{"namespace": "billing", "labels": {"compute": "fargate"}}]},
]


@pytest.fixture(scope="module")
def fargate_run():
    return variant_run("prod", KEY, PROFILES)


def test_variant_previews_with_no_mandatory_violation(fargate_run):
    plan = apply_policies(build_plan(fargate_run), fargate_run, "prod")
    mandatory = [v for v in plan["policy"]["violations"] if v["level"] == "mandatory"]
    assert mandatory == [], mandatory
    # The guardrail ran on these profiles (and would block public subnets: tests/test_policy_rules.py).
    assert "eks-fargate-private-subnets" in BY_ID


def test_pod_execution_role_trusts_fargate_for_this_clusters_profiles_only(fargate_run):
    role = fargate_run.one("aws:iam/role:Role", "fargate-pod-execution")
    (stmt,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert stmt["Principal"] == {"Service": "eks-fargate-pods.amazonaws.com"}
    assert stmt["Action"] == "sts:AssumeRole"
    assert stmt["Condition"] == {
        "ArnLike": {"aws:SourceArn": "arn:aws:eks:us-east-1:222222222222:fargateprofile/prod-eks/*"}
    }
    [attachment] = [
        a
        for a in fargate_run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name == "fargate-pod-execution-policy"
    ]
    assert attachment.inputs == {"policyArn": EKS_FARGATE_POD_EXECUTION_POLICY_ARN, "role": role.inputs["name"]}
    assert fargate_run.outputs["fargate"]["podExecutionRoleArn"].endswith(":role/prod-eks-fargate-pod-execution")


def test_profiles_select_their_pods_in_the_private_subnets(fargate_run):
    profiles = {p.inputs["fargateProfileName"]: p for p in fargate_run.of_type(PROFILE)}
    assert sorted(profiles) == ["batch", "billing-jobs"]
    private = sorted(fargate_run.outputs["privateSubnetIds"].values())
    for p in profiles.values():
        assert sorted(p.inputs["subnetIds"]) == private
        assert p.inputs["clusterName"] == "prod-eks"
        assert p.inputs["podExecutionRoleArn"].endswith(":role/prod-eks-fargate-pod-execution")
    assert profiles["batch"].inputs["selectors"] == [{"namespace": "batch"}]
    assert profiles["billing-jobs"].inputs["selectors"] == [{"namespace": "billing", "labels": {"compute": "fargate"}}]
    # EKS creates one profile at a time per cluster: the second waits for the first.
    assert profiles["batch"].urn in profiles["billing-jobs"].dependencies
    # The role has its policy before any profile can start pods.
    policy = fargate_run.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "fargate-pod-execution-policy")
    assert policy.urn in profiles["batch"].dependencies


def test_shipped_prod_has_no_fargate(prod_run):
    assert prod_run.of_type(PROFILE) == [] and "fargate" not in prod_run.outputs


def test_trust_renderer_is_scoped_to_one_cluster():
    doc = pod_execution_trust("eu-west-1", "123456789012", "blue")
    assert doc["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"] == (
        "arn:aws:eks:eu-west-1:123456789012:fargateprofile/blue/*"
    )


# ------------------------------------------------------------------------------------- config
def problems(profiles, stack="prod") -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(mutated_config(stack, KEY, profiles))
    return err.value.problems


def test_a_profile_selecting_a_pod_identity_workload_is_refused_with_the_irsa_alternative():
    found = problems([{"name": "orders", "selectors": [{"namespace": "orders", "labels": {"tier": "batch"}}]}])
    [line] = [p for p in found if p.startswith(f"k8s-platform:{KEY}[0].selectors[0].namespace:")]
    assert "orders-api" in line and "Pod Identity" in line and "method: irsa" in line


def test_kube_system_and_instance_profile_workloads_are_refused():
    found = problems([{"name": "system", "selectors": [{"namespace": "kube-system"}]}])
    assert any(p.startswith(f"k8s-platform:{KEY}[0].selectors[0].namespace:") and "kube-system" in p for p in found)
    raw = mutated_config("prod", KEY, [{"name": "jobs", "selectors": [{"namespace": "jobs"}]}])
    raw["k8s-platform:workloads"].append(
        {
            "name": "jobs",
            "namespace": "jobs",
            "serviceAccount": "runner",
            "method": "instance-profile",
            "policies": {"statements": [{"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::b/*"]}]},
        }
    )
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    assert any("instance profile" in p and "method: irsa" in p for p in err.value.problems), err.value.problems


@pytest.mark.parametrize(
    "profiles,where,expected",
    [
        ([{"name": "a", "selectors": []}], "[0].selectors", "1 to 5"),
        ([{"name": "a", "selectors": [{"namespace": f"n{i}"} for i in range(6)]}], "[0].selectors", "1 to 5"),
        ([{"name": "a", "selectors": [{"namespace": "n"}, {"namespace": "n"}]}], "[0].selectors", "distinct"),
        ([{"name": "a", "selectors": [{"namespace": "team-*"}]}], "[0].selectors[0].namespace", "DNS-safe"),
        (
            [{"name": "a", "selectors": [{"namespace": "n", "labels": {f"k{i}": "v" for i in range(6)}}]}],
            "[0].selectors[0].labels",
            "at most 5",
        ),
        ([{"name": "a", "selectors": [{"namespace": "n"}]}] * 2, "[1].name", "defined twice"),
        ([{"name": f"p{i}", "selectors": [{"namespace": f"n{i}"}]} for i in range(11)], "", "at most 10"),
    ],
)
def test_bad_profiles_are_refused_naming_their_key(profiles, where, expected):
    found = problems(profiles)
    assert any(p.startswith(f"k8s-platform:{KEY}{where}:") and expected in p for p in found), found


def test_fargate_on_k3s_is_refused():
    raw = mutated_config("dev", "cluster.eks", {"fargateProfiles": [{"name": "a", "selectors": [{"namespace": "n"}]}]})
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    assert any(p.startswith("k8s-platform:cluster.eks:") and "kind eks" in p for p in err.value.problems)
