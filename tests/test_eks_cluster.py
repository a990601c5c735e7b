"""The EKS control plane on the prod offline plan: cluster settings, KMS, logs, OIDC, access, kubeconfig."""

from __future__ import annotations

import json

import pulumi
import pytest
import yaml

from components.eks.access import CLUSTER_ADMIN_POLICY, EDIT_POLICY, VIEW_POLICY
from components.eks.cluster import EksCluster, EksClusterArgs, service_cidr_for
from components.network.vpc import Network, NetworkArgs
from programs.offline import Secret, run_offline
from tests.conftest import shipped_config

CLUSTER = "aws:eks/cluster:Cluster"


def test_exactly_one_cluster_with_the_issue_settings(prod_run):
    [cluster] = prod_run.of_type(CLUSTER)
    i = cluster.inputs
    eks = prod_run.config.cluster.eks
    assert i["name"] == "prod-eks"
    assert i["version"] == "1.35"
    assert i["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    assert i["bootstrapSelfManagedAddons"] is False
    assert i["enabledClusterLogTypes"] == list(eks.log_types)
    assert {"api", "audit", "authenticator"} <= set(i["enabledClusterLogTypes"])
    assert i["vpcConfig"]["endpointPrivateAccess"] is True
    assert i["vpcConfig"]["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in i["vpcConfig"]
    assert i["upgradePolicy"] == {"supportType": "STANDARD"}
    assert i["kubernetesNetworkConfig"] == {"ipFamily": "ipv4", "serviceIpv4Cidr": "172.20.0.0/16"}
    # Control plane ENIs in the private node subnets, one per zone.
    assert sorted(i["vpcConfig"]["subnetIds"]) == sorted(prod_run.outputs["privateSubnetIds"].values())


def test_secrets_encrypted_with_a_rotating_protected_kms_key(prod_run):
    cluster = prod_run.one(CLUSTER)
    key = prod_run.one("aws:kms/key:Key", "eks-secrets")
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    key_arn = cluster.inputs["encryptionConfig"]["provider"]["keyArn"]
    assert key.urn in cluster.dependencies and key_arn.startswith("arn:aws:kms:us-east-1:222222222222:key/")
    assert key.inputs["enableKeyRotation"] is True
    # The cluster role may use exactly that key.
    role_policy = json.loads(prod_run.one("aws:iam/rolePolicy:RolePolicy", "eks-cluster-kms").inputs["policy"])
    assert role_policy["Statement"][0]["Resource"] == key_arn


def test_prod_protects_cluster_kms_keys_and_oidc_provider(prod_run):
    assert prod_run.one(CLUSTER).protect is True
    assert prod_run.one(CLUSTER).inputs["deletionProtection"] is True
    assert prod_run.one("aws:kms/key:Key", "eks-secrets").protect is True
    assert prod_run.one("aws:kms/key:Key", "eks-system-ebs").protect is True
    assert prod_run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").protect is True


def test_control_plane_logs_go_to_a_retained_encrypted_group_created_first(prod_run):
    cluster = prod_run.one(CLUSTER)
    group = prod_run.one("aws:cloudwatch/logGroup:LogGroup", "eks-control-plane-logs")
    assert group.inputs["name"] == "/aws/eks/prod-eks/cluster"  # the name EKS writes to
    assert group.inputs["retentionInDays"] == prod_run.config.cluster.eks.log_retention_days == 365
    assert group.inputs["kmsKeyId"] == cluster.inputs["encryptionConfig"]["provider"]["keyArn"]
    assert group.urn in cluster.dependencies


def test_cluster_role_trusts_only_eks_and_has_the_cluster_policy(prod_run):
    role = prod_run.one("aws:iam/role:Role", "eks-cluster-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "eks.amazonaws.com"}]
    attach = prod_run.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "eks-cluster-policy")
    assert attach.inputs["policyArn"] == "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
    assert prod_run.one(CLUSTER).inputs["roleArn"].endswith(":role/" + role.inputs["name"])


def test_oidc_provider_for_irsa_uses_the_cluster_issuer(prod_run):
    oidc = prod_run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert oidc.inputs["url"].startswith("https://oidc.eks.us-east-1.amazonaws.com/id/")
    assert prod_run.one(CLUSTER).urn in oidc.dependencies


def test_kubeconfig_is_a_secret_using_aws_eks_get_token(prod_run):
    out = prod_run.outputs["kubeconfig"]
    assert isinstance(out, Secret)
    doc = yaml.safe_load(out.value)
    assert doc["clusters"][0]["cluster"]["server"] == prod_run.outputs["clusterEndpoint"]
    user = doc["users"][0]["user"]
    assert "token" not in user and "client-key-data" not in user
    assert user["exec"]["command"] == "aws"
    assert user["exec"]["args"][:4] == ["eks", "get-token", "--cluster-name", "prod-eks"]
    provider = prod_run.one("pulumi:providers:kubernetes")
    assert isinstance(provider.inputs["kubeconfig"], Secret)


def _entries(run):
    return {e.inputs["principalArn"]: e for e in run.of_type("aws:eks/accessEntry:AccessEntry")}


def _associations(run):
    out: dict[str, list[dict]] = {}
    for a in run.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        out.setdefault(a.inputs["principalArn"], []).append(a.inputs)
    return out


def test_access_entries_from_config(prod_run):
    access = prod_run.config.cluster.eks.access
    entries, assoc = _entries(prod_run), _associations(prod_run)
    for arn in [*access.admin_role_arns, access.break_glass_role_arn]:
        assert entries[arn].inputs["type"] == "STANDARD"
        assert [(a["policyArn"], a["accessScope"]) for a in assoc[arn]] == [(CLUSTER_ADMIN_POLICY, {"type": "cluster"})]
    assert entries[access.break_glass_role_arn].inputs["tags"]["k8s-platform/access"] == "break-glass"
    for arn in access.read_only_role_arns:
        assert [(a["policyArn"], a["accessScope"]) for a in assoc[arn]] == [(VIEW_POLICY, {"type": "cluster"})]
    grant = access.namespace_grants[0]
    assert [(a["policyArn"], a["accessScope"]) for a in assoc[grant.role_arn]] == [
        (EDIT_POLICY, {"type": "namespace", "namespaces": ["payments"]})
    ]


def test_only_configured_principals_and_the_node_role_have_access(prod_run):
    access = prod_run.config.cluster.eks.access
    configured = {
        *access.admin_role_arns,
        access.break_glass_role_arn,
        *access.read_only_role_arns,
        *(g.role_arn for g in access.namespace_grants),
    }
    entries = _entries(prod_run)
    node_role = prod_run.one("aws:iam/role:Role", "eks-system-node-role")
    node_arn = f"arn:aws:iam::222222222222:role/{node_role.inputs['name']}"
    standard = {arn for arn, e in entries.items() if e.inputs["type"] == "STANDARD"}
    assert standard == configured
    assert entries[node_arn].inputs["type"] == "EC2_LINUX"
    # Every other entry (this node group, Karpenter's nodes) is a node entry without any access policy.
    node_entries = set(entries) - configured
    assert node_arn in node_entries
    assert all(entries[arn].inputs["type"] == "EC2_LINUX" for arn in node_entries)
    assert not node_entries & set(_associations(prod_run))


def test_kubernetes_provider_waits_for_the_admin_grant(prod_run):
    provider = prod_run.one("pulumi:providers:kubernetes")
    admin = [
        a
        for a in prod_run.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if a.inputs["principalArn"] in prod_run.config.cluster.eks.access.admin_role_arns
    ]
    assert admin and all(a.urn in provider.dependencies for a in admin)


def test_node_security_group_is_karpenter_discoverable(prod_run):
    sg = prod_run.one("aws:ec2/securityGroup:SecurityGroup", "eks-node-sg")
    assert sg.inputs["tags"]["karpenter.sh/discovery"] == "prod-eks"
    assert sg.inputs["tags"]["owner"] and sg.inputs["tags"]["cost-center"]


def test_stack_outputs(prod_run):
    assert (
        prod_run.outputs["clusterEndpoint"].startswith("https://")
        and ".eks.amazonaws.com" in prod_run.outputs["clusterEndpoint"]
    )


def test_service_cidr_avoids_the_vpc():
    assert service_cidr_for("10.30.0.0/16", "100.64.0.0/16") == "172.20.0.0/16"
    assert service_cidr_for("172.20.0.0/16", "100.64.0.0/16") == "10.100.0.0/16"


@pytest.fixture(scope="module")
def public_endpoint_run():
    raw = shipped_config("prod")
    raw["k8s-platform:cluster"]["eks"]["endpoint"] = {"publicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}
    raw["k8s-platform:cluster"]["eks"]["authenticationMode"] = "API_AND_CONFIG_MAP"
    return run_offline("prod", raw)


def test_public_endpoint_limited_to_configured_cidrs(public_endpoint_run):
    i = public_endpoint_run.one(CLUSTER).inputs
    assert i["vpcConfig"]["endpointPublicAccess"] is True
    assert i["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert i["accessConfig"]["authenticationMode"] == "API_AND_CONFIG_MAP"
    assert i["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is False


def test_cluster_handle_is_filled():
    """The handle Karpenter and add-ons build on, read back from a program that exposes it."""
    seen = {}

    def program(cfg):
        net = Network(
            "network",
            NetworkArgs(
                config=cfg.network,
                cluster_name=cfg.cluster_name,
                region=cfg.region,
                account_id=cfg.account_id,
                tags=cfg.resource_tags(),
            ),
        )
        eks = EksCluster("eks", EksClusterArgs(config=cfg, network=net))
        h = eks.handle
        seen["handle"] = h
        return {
            "endpoint": h.endpoint,
            "kubeconfig": h.kubeconfig,
            "sg": h.node_security_group_id,
            "oidcArn": h.oidc_provider_arn,
            "issuer": h.oidc_issuer_url,
            "clusterName": h.eks_cluster.name,
        }

    run = run_offline("prod", shipped_config("prod"), program=program)
    h = seen["handle"]
    assert h.kind == "eks" and h.name == "prod-eks" and h.supports_pod_identity
    assert isinstance(run.outputs["kubeconfig"], Secret)
    assert run.outputs["sg"].startswith("sg-")
    assert run.outputs["oidcArn"] == "arn:aws:iam::222222222222:oidc-provider/" + run.outputs["issuer"].removeprefix(
        "https://"
    )
    assert run.outputs["clusterName"] == "prod-eks"
    assert [r for r in h.ready if isinstance(r, pulumi.Resource)] and len(h.ready) == 1
    assert h.system_scheduling.node_selector == {"k8s-platform/node-pool": "system"}
    ng = run.one("aws:eks/nodeGroup:NodeGroup")
    assert ng.inputs["labels"] == h.system_scheduling.node_selector
    [taint] = ng.inputs["taints"]
    [tol] = h.system_scheduling.tolerations
    assert (
        tol == {"key": taint["key"], "operator": "Exists", "effect": "NoSchedule"} and taint["effect"] == "NO_SCHEDULE"
    )
