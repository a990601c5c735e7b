"""WorkloadIdentity on the shipped stacks: each binding admits exactly its own workload.

Trust policies are evaluated (tests/iam_eval.py) against the request STS would see: for IRSA the
claims of a token as K3s/EKS mints it, for Pod Identity the session tags EKS sets. A policy is
right when its own ServiceAccount gets in and no other ServiceAccount, issuer or audience does.
"""

from __future__ import annotations

import json

import pulumi
import pytest

from programs.offline import reveal, run_offline
from tests.conftest import shipped_config
from tests.iam_eval import allows, web_identity_request

ROLE = "aws:iam/role:Role"
SA = "kubernetes:core/v1:ServiceAccount"
PRIMARY_URL = "https://dev-k3s-oidc-111111111111.s3.us-east-1.amazonaws.com"
EDGE_URL = "https://oidc.dev-k3s.platform.example.com"


def trust(run, workload: str) -> dict:
    return json.loads(run.one(ROLE, f"wl-{workload}-role").inputs["assumeRolePolicy"])


def identity_policy(run, workload: str) -> dict:
    return json.loads(run.one("aws:iam/rolePolicy:RolePolicy", f"wl-{workload}-policy").inputs["policy"])


def claims(issuer: str, namespace: str, service_account: str, aud: str = "sts.amazonaws.com") -> dict:
    return {"iss": issuer, "sub": f"system:serviceaccount:{namespace}:{service_account}", "aud": [aud]}


def provider_arns(run) -> dict[str, str]:
    """issuer URL -> IAM OIDC provider ARN, from the stack's outputs."""
    return {v["issuerUrl"]: v["oidcProviderArn"] for v in reveal(run.outputs["oidcIssuers"]).values()}


def admits(
    run, workload: str, issuer: str, namespace: str, service_account: str, aud: str = "sts.amazonaws.com"
) -> bool:
    provider = provider_arns(run)[issuer]
    return allows(
        trust(run, workload), **web_identity_request(provider, claims(issuer, namespace, service_account, aud))
    )


# ------------------------------------------------------------------------------------ IRSA on K3s
def test_irsa_via_s3_public_admits_exactly_its_service_account(dev_run):
    assert admits(dev_run, "reports-writer", PRIMARY_URL, "reports", "reports-writer")
    assert not admits(dev_run, "reports-writer", PRIMARY_URL, "reports", "default")
    assert not admits(dev_run, "reports-writer", PRIMARY_URL, "events", "consumer")  # another workload
    assert not admits(dev_run, "reports-writer", PRIMARY_URL, "reports", "reports-writer", aud="kubernetes.default.svc")
    # It lists only the S3 issuer: a token of the CloudFront issuer does not get in.
    assert not admits(dev_run, "reports-writer", EDGE_URL, "reports", "reports-writer")


def test_irsa_via_cloudfront_admits_its_service_account_through_either_issuer(dev_run):
    for issuer in (PRIMARY_URL, EDGE_URL):
        assert admits(dev_run, "events-consumer", issuer, "events", "consumer")
        assert not admits(dev_run, "events-consumer", issuer, "events", "producer")
        assert not admits(dev_run, "events-consumer", issuer, "reports", "reports-writer")
    federated = {s["Principal"]["Federated"] for s in trust(dev_run, "events-consumer")["Statement"]}
    assert federated == set(provider_arns(dev_run).values())


def test_a_forged_provider_is_not_trusted(dev_run):
    forged = "arn:aws:iam::999999999999:oidc-provider/" + PRIMARY_URL.removeprefix("https://")
    request = web_identity_request(forged, claims(PRIMARY_URL, "reports", "reports-writer"))
    assert not allows(trust(dev_run, "reports-writer"), **request)


def test_irsa_service_accounts_are_annotated_with_their_own_role(dev_run):
    identities = reveal(dev_run.outputs["workloadIdentities"])
    for workload, (namespace, name) in {
        "reports-writer": ("reports", "reports-writer"),
        "events-consumer": ("events", "consumer"),
    }.items():
        meta = dev_run.one(SA, f"wl-{workload}-sa").inputs["metadata"]
        assert (meta["namespace"], meta["name"]) == (namespace, name)
        assert meta["annotations"] == {"eks.amazonaws.com/role-arn": identities[workload]["roleArn"]}


def test_each_workload_has_its_own_least_privilege_role(dev_run):
    identities = reveal(dev_run.outputs["workloadIdentities"])
    assert len({i["roleArn"] for i in identities.values()}) == len(identities) == 3
    policy = identity_policy(dev_run, "reports-writer")
    assert allows(policy, "s3:PutObject", "arn:aws:s3:::dev-k3s-reports-111111111111/reports/2026/x.csv")
    assert not allows(policy, "s3:PutObject", "arn:aws:s3:::dev-k3s-reports-111111111111/other/x.csv")
    assert not allows(policy, "s3:GetObject", "arn:aws:s3:::dev-k3s-reports-111111111111/reports/x.csv")
    assert not allows(policy, "sts:AssumeRole", "arn:aws:iam::333333333333:role/anything")


def test_controllers_on_k3s_also_trust_the_standby_issuer(dev_run):
    """ClusterHandle.standby_oidc_issuers: promoting the CloudFront issuer breaks no IRSA role."""
    federated_sets = [
        {
            s["Principal"]["Federated"]
            for s in json.loads(r.inputs["assumeRolePolicy"])["Statement"]
            if "Federated" in s.get("Principal", {})
        }
        for r in dev_run.of_type(ROLE)
        if not r.name.startswith("wl-")
    ]
    irsa = [f for f in federated_sets if f]
    assert irsa, "no controller role uses IRSA on K3s"
    assert all(f == set(provider_arns(dev_run).values()) for f in irsa)


# ------------------------------------------------------------------------------- EKS (prod stack)
def test_pod_identity_trust_admits_only_its_association_tags(prod_run):
    policy = trust(prod_run, "orders-api")
    tags = {
        "aws:SourceAccount": "222222222222",
        "aws:RequestTag/eks-cluster-name": "prod-eks",
        "aws:RequestTag/kubernetes-namespace": "orders",
        "aws:RequestTag/kubernetes-service-account": "orders-api",
    }
    agent = ("Service", "pods.eks.amazonaws.com")
    for action in ("sts:AssumeRole", "sts:TagSession"):
        assert allows(policy, action, context=tags, principal=agent)
    for key, other in (
        ("aws:RequestTag/kubernetes-service-account", "default"),
        ("aws:RequestTag/kubernetes-namespace", "billing"),
        ("aws:RequestTag/eks-cluster-name", "staging-eks"),
        ("aws:SourceAccount", "999999999999"),
    ):
        assert not allows(policy, "sts:AssumeRole", context={**tags, key: other}, principal=agent)
    assert not allows(policy, "sts:AssumeRole", context=tags, principal=("Service", "ec2.amazonaws.com"))


def test_pod_identity_binding_is_one_association_and_no_annotation(prod_run):
    [assoc] = [
        a
        for a in prod_run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a.name == "wl-orders-api-association"
    ]
    assert (assoc.inputs["clusterName"], assoc.inputs["namespace"], assoc.inputs["serviceAccount"]) == (
        "prod-eks",
        "orders",
        "orders-api",
    )
    assert assoc.inputs["roleArn"] == reveal(prod_run.outputs["workloadIdentities"])["orders-api"]["roleArn"]
    assert prod_run.one(SA, "wl-orders-api-sa").inputs["metadata"]["annotations"] == {}


def test_irsa_on_eks_trusts_the_clusters_own_issuer(prod_run):
    provider = prod_run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "eks-oidc")
    issuer = provider.inputs["url"]
    provider_arn = "arn:aws:iam::222222222222:oidc-provider/" + issuer.removeprefix("https://")
    policy = trust(prod_run, "billing-export")
    assert allows(policy, **web_identity_request(provider_arn, claims(issuer, "billing", "exporter")))
    assert not allows(policy, **web_identity_request(provider_arn, claims(issuer, "billing", "default")))
    assert not allows(policy, **web_identity_request(provider_arn, claims(issuer, "orders", "orders-api")))


def test_cross_account_chain(prod_run):
    target = "arn:aws:iam::333333333333:role/shared-catalog-reader"
    policy = identity_policy(prod_run, "orders-api")
    assert allows(policy, "sts:AssumeRole", target)
    assert not allows(policy, "sts:AssumeRole", "arn:aws:iam::333333333333:role/admin")
    [hop] = reveal(prod_run.outputs["workloadIdentities"])["orders-api"]["crossAccount"]
    role_arn = reveal(prod_run.outputs["workloadIdentities"])["orders-api"]["roleArn"]
    assert hop["targetRoleArn"] == target
    target_trust = json.loads(hop["targetTrustPolicy"])
    for action in ("sts:AssumeRole", "sts:TagSession"):  # Pod Identity session tags are transitive
        assert allows(target_trust, action, principal=("AWS", role_arn))
    assert not allows(
        target_trust, "sts:AssumeRole", principal=("AWS", "arn:aws:iam::222222222222:role/prod-eks-wl-billing-export")
    )
    assert (
        hop["expectedCallerIdentity"]
        == "arn:aws:sts::333333333333:assumed-role/shared-catalog-reader/<session-name-passed-to-AssumeRole>"
    )


def test_expected_caller_identities(dev_run, prod_run):
    dev = reveal(dev_run.outputs["workloadIdentities"])
    prod = reveal(prod_run.outputs["workloadIdentities"])
    assert (
        prod["orders-api"]["expectedCallerIdentity"]
        == "arn:aws:sts::222222222222:assumed-role/prod-eks-wl-orders-api/eks-prod-eks-<pod-name>-<uuid>"
    )
    assert (
        prod["billing-export"]["expectedCallerIdentity"]
        == "arn:aws:sts::222222222222:assumed-role/prod-eks-wl-billing-export/<sdk-session-name>"
    )
    assert (
        dev["edge-agent"]["expectedCallerIdentity"]
        == "arn:aws:sts::111111111111:assumed-role/dev-k3s-wl-edge-agent/edge-agent"
    )
    assert {w: i["method"] for w, i in {**dev, **prod}.items()} == {
        "reports-writer": "irsa",
        "events-consumer": "irsa",
        "edge-agent": "roles-anywhere",
        "orders-api": "pod-identity",
        "billing-export": "irsa",
    }


# ---------------------------------------------------------------------------- instance-profile
def test_instance_profile_lands_on_the_node_roles_with_a_warning(monkeypatch):
    warnings: list[str] = []
    real_warn = pulumi.log.warn
    monkeypatch.setattr(pulumi.log, "warn", lambda msg, *a, **kw: (warnings.append(msg), real_warn(msg, *a, **kw)))
    raw = shipped_config("dev")
    raw["k8s-platform:workloads"] = [
        *raw["k8s-platform:workloads"],
        {
            "name": "legacy-batch",
            "namespace": "batch",
            "serviceAccount": "batch",
            "method": "instance-profile",
            "policies": {"statements": [{"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::dev-inputs/*"]}]},
        },
    ]
    run = run_offline("dev", raw)
    roles = {r.urn: r for r in run.of_type(ROLE)}
    node_policies = [
        p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.startswith("wl-legacy-batch-node-policy")
    ]
    targets = {roles[u].name for p in node_policies for u in p.property_dependencies.get("role", [])}
    assert targets == {"k3s-agent", "karpenter-node"}  # every node workloads run on; not the servers
    for p in node_policies:
        assert allows(json.loads(p.inputs["policy"]), "s3:GetObject", "arn:aws:s3:::dev-inputs/x")
    assert not [r for r in run.of_type(ROLE) if r.name == "wl-legacy-batch-role"]  # no role of its own
    assert any("legacy-batch" in w and "EVERY pod" in w for w in warnings)
    identity = reveal(run.outputs["workloadIdentities"])["legacy-batch"]
    assert identity["expectedCallerIdentity"].endswith("/<instance-id>")
    assert identity["roleArn"].startswith("arn:aws:iam::111111111111:role/")
    assert run.one(SA, "wl-legacy-batch-sa").inputs["metadata"]["annotations"] == {}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_workload_namespaces_exist_before_their_service_accounts(stack, dev_run, prod_run):
    run = {"dev": dev_run, "prod": prod_run}[stack]
    namespaces = {
        n.inputs["metadata"]["name"]: n.urn
        for n in run.of_type("kubernetes:core/v1:Namespace")
        if n.name.startswith("wl-namespace-")
    }
    for sa in (s for s in run.of_type(SA) if s.name.startswith("wl-")):
        assert namespaces[sa.inputs["metadata"]["namespace"]] in sa.dependencies
