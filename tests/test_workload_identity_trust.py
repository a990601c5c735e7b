"""Pure trust renderers and caller identities, and ServiceAccountIdentity on a hand-built ClusterHandle."""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.core.cluster_handle import ClusterHandle, SystemScheduling
from components.core.trust_policies import (
    assume_target_roles_policy,
    cross_account_target_trust,
    irsa_trust,
    pod_identity_trust,
    roles_anywhere_trust,
)
from components.identity.caller_identity import cross_account_caller_identity, expected_caller_identity
from components.identity.service_account import ServiceAccountIdentity, ServiceAccountIdentityArgs
from programs.offline import run_offline
from tests.conftest import shipped_config
from tests.iam_eval import allows, web_identity_request

ISSUER_A = "https://a.example.com"
ISSUER_B = "https://b.example.com"
ARN_A = "arn:aws:iam::111111111111:oidc-provider/a.example.com"
ARN_B = "arn:aws:iam::111111111111:oidc-provider/b.example.com"


def token(iss: str, sub: str = "system:serviceaccount:ns:sa") -> dict:
    return {"iss": iss, "sub": sub, "aud": "sts.amazonaws.com"}


def test_irsa_trust_single_issuer_is_unchanged():
    doc = irsa_trust(ARN_A, ISSUER_A, "ns", "sa")
    assert doc["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Federated": ARN_A},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    "a.example.com:sub": "system:serviceaccount:ns:sa",
                    "a.example.com:aud": "sts.amazonaws.com",
                }
            },
        }
    ]


def test_irsa_trust_with_a_standby_issuer_admits_each_issuers_own_tokens_only():
    doc = irsa_trust(ARN_A, ISSUER_A, "ns", "sa", (ARN_B, ISSUER_B))
    assert allows(doc, **web_identity_request(ARN_A, token(ISSUER_A)))
    assert allows(doc, **web_identity_request(ARN_B, token(ISSUER_B)))
    # A token of issuer B presented through provider A carries B's keys: no statement matches.
    assert not allows(doc, **web_identity_request(ARN_A, token(ISSUER_B)))
    assert not allows(doc, **web_identity_request(ARN_B, token(ISSUER_B, "system:serviceaccount:ns:other")))


def test_pod_identity_trust_defaults_are_backward_compatible():
    assert "Condition" not in pod_identity_trust()["Statement"][0]
    assert pod_identity_trust("111111111111")["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "111111111111"}
    }


def test_roles_anywhere_trust_actions_and_conditions():
    [stmt] = roles_anywhere_trust("arn:ta", "cn", "ca-cn")["Statement"]
    assert stmt["Action"] == ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
    assert stmt["Condition"]["StringEquals"] == {
        "aws:PrincipalTag/x509Subject/CN": "cn",
        "aws:SourceArn": "arn:ta",
        "aws:PrincipalTag/x509Issuer/CN": "ca-cn",
    }


def test_cross_account_renderers():
    targets = ["arn:aws:iam::333333333333:role/b", "arn:aws:iam::333333333333:role/a"]
    [stmt] = assume_target_roles_policy(targets)["Statement"]
    assert stmt["Resource"] == sorted(targets) and "sts:AssumeRole" in stmt["Action"]
    assert cross_account_target_trust("arn:src")["Statement"][0]["Action"] == "sts:AssumeRole"
    assert cross_account_target_trust("arn:src", carries_session_tags=True)["Statement"][0]["Action"] == [
        "sts:AssumeRole",
        "sts:TagSession",
    ]


def test_caller_identities():
    kw = {"account_id": "111111111111", "role_name": "r", "cluster_name": "c", "workload_name": "w"}
    assert expected_caller_identity("roles-anywhere", **kw) == "arn:aws:sts::111111111111:assumed-role/r/w"
    assert (
        expected_caller_identity("pod-identity", **kw)
        == "arn:aws:sts::111111111111:assumed-role/r/eks-c-<pod-name>-<uuid>"
    )
    assert expected_caller_identity("instance-profile", **kw).endswith("/r/<instance-id>")
    assert (
        cross_account_caller_identity("arn:aws:iam::333333333333:role/team/x")
        == "arn:aws:sts::333333333333:assumed-role/x/<session-name-passed-to-AssumeRole>"
    )


# ------------------------------------------------------------ ServiceAccountIdentity, hand-built handle
def _handle(kind: str) -> ClusterHandle:
    provider = k8s.Provider("test-k8s", kubeconfig="{}")
    out = pulumi.Output.from_input
    return ClusterHandle(
        kind=kind,
        name="test",
        endpoint=out("https://api"),
        kubeconfig=pulumi.Output.secret("{}"),
        k8s_provider=provider,
        node_security_group_id=out("sg-1"),
        system_scheduling=SystemScheduling({}, []),
        oidc_provider_arn=out(ARN_A),
        oidc_issuer_url=out(ISSUER_A),
        standby_oidc_issuers=[(out(ARN_B), ISSUER_B)],
    )


def _controller_program(cfg):
    # Exactly how controllers (Karpenter, add-ons) call it: no new arguments.
    sai = ServiceAccountIdentity(
        "ctrl",
        ServiceAccountIdentityArgs(
            cluster=_handle("k3s"),
            namespace="kube-system",
            service_account="ctrl",
            method="irsa",
            account_id="111111111111",
            tags={"owner": "t"},
            inline_policy_json='{"Version":"2012-10-17","Statement":[]}',
        ),
    )
    return {"annotations": sai.service_account_annotations}


def test_service_account_identity_keeps_its_constructor_and_trusts_standby_issuers():
    run = run_offline("dev", shipped_config("dev"), program=_controller_program)
    doc = json.loads(run.one("aws:iam/role:Role", "ctrl-role").inputs["assumeRolePolicy"])
    sa = "system:serviceaccount:kube-system:ctrl"
    assert allows(doc, **web_identity_request(ARN_A, token(ISSUER_A, sa)))
    assert allows(doc, **web_identity_request(ARN_B, token(ISSUER_B, sa)))
    [(key, value)] = run.outputs["annotations"].items()
    assert key == "eks.amazonaws.com/role-arn" and value.startswith("arn:aws:iam::111111111111:role/ctrl-role")


def test_pod_identity_is_refused_without_an_eks_cluster():
    def program(cfg):
        ServiceAccountIdentity(
            "pi",
            ServiceAccountIdentityArgs(
                cluster=_handle("k3s"),
                namespace="ns",
                service_account="sa",
                method="pod-identity",
                account_id="111111111111",
                tags={},
            ),
        )
        return {}

    with pytest.raises(Exception, match="pod-identity needs an EKS cluster"):
        run_offline("dev", shipped_config("dev"), program=program)
