"""Karpenter in the offline plans of the shipped stacks: dev (K3s) and prod (EKS)."""

from __future__ import annotations

import json

import pytest

from components.core.pins import CHARTS
from components.karpenter.interruption import INTERRUPTION_EVENTS
from components.karpenter.specs import node_class_max_pods_from_config
from programs.offline import OfflineRun, Secret, reveal
from tests.karpenter_crd_validation import assert_valid

RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


@pytest.fixture(params=["dev", "prod"])
def run(request) -> OfflineRun:
    return request.getfixturevalue(f"{request.param}_run")


def karpenter_component(run: OfflineRun):
    return run.one("k8s-platform:karpenter:Karpenter", "karpenter")


def descendants(run: OfflineRun, urn: str) -> list:
    out, frontier = [], [urn]
    while frontier:
        children = run.children_of(frontier.pop())
        out += children
        frontier += [c.urn for c in children]
    return out


def own(run: OfflineRun, typ: str) -> list:
    return [r for r in descendants(run, karpenter_component(run).urn) if r.type == typ]


def one_own(run: OfflineRun, typ: str, name: str):
    (found,) = [r for r in own(run, typ) if r.name == name]
    return found


def cluster(run: OfflineRun) -> str:
    return run.config.cluster_name


def manifest(resource) -> dict:
    inputs = reveal(resource.inputs)
    return {k: inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")}


# ------------------------------------------------------------------------------- controller
def test_controller_identity_is_pod_identity_on_eks(prod_run):
    role = one_own(prod_run, "aws:iam/role:Role", "karpenter-controller-role")
    assert role.inputs["name"] == "prod-eks-karpenter-controller"
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    association = one_own(
        prod_run, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "karpenter-controller-association"
    )
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == ("kube-system", "karpenter")
    release = one_own(prod_run, RELEASE, "karpenter-chart")
    assert release.inputs["values"]["serviceAccount"]["name"] == "karpenter"
    assert "annotations" not in release.inputs["values"]["serviceAccount"]  # Pod Identity needs none


def test_controller_identity_is_irsa_through_the_k3s_issuer(dev_run):
    role = one_own(dev_run, "aws:iam/role:Role", "karpenter-controller-role")
    statements = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    providers = {
        r.inputs["url"].removeprefix("https://")
        for r in dev_run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    }
    assert statements and providers
    for stmt in statements:
        host = stmt["Principal"]["Federated"].split(":oidc-provider/", 1)[1]
        assert host in providers  # the K3s cluster's own issuers, served by this stack
        assert stmt["Condition"]["StringEquals"] == {
            f"{host}:sub": "system:serviceaccount:kube-system:karpenter",
            f"{host}:aud": "sts.amazonaws.com",
        }
    # The chart gets the role and a projected token explicitly (no webhook in the path of the controller).
    values = one_own(dev_run, RELEASE, "karpenter-chart").inputs["values"]
    env = {e["name"]: e["value"] for e in values["controller"]["env"]}
    assert env["AWS_ROLE_ARN"] == "arn:aws:iam::111111111111:role/dev-k3s-karpenter-controller"
    assert env["AWS_REGION"] == "us-east-1"
    (volume,) = values["extraVolumes"]
    assert volume["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "sts.amazonaws.com"


def test_controller_policy_is_scoped_to_this_clusters_queue_and_node_role(run):
    doc = json.loads(one_own(run, "aws:iam/rolePolicy:RolePolicy", "karpenter-controller-policy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    account, name = run.config.account_id, cluster(run)
    assert by_sid["AllowPassingInstanceRole"]["Resource"] == f"arn:aws:iam::{account}:role/{name}-karpenter-node"
    assert (
        by_sid["AllowInterruptionQueueActions"]["Resource"]
        == f"arn:aws:sqs:us-east-1:{account}:{name}-karpenter-interruption"
    )
    assert by_sid["AllowScopedDeletion"]["Condition"]["StringEquals"] == {
        f"aws:ResourceTag/kubernetes.io/cluster/{name}": "owned"
    }
    assert ("AllowAPIServerEndpointDiscovery" in by_sid) == (run.config.cluster.kind == "eks")


# ------------------------------------------------------------------------------ interruption
def test_queue_and_its_five_rules_with_targets(run):
    queue = one_own(run, "aws:sqs/queue:Queue", "karpenter-interruption-queue")
    assert queue.inputs["messageRetentionSeconds"] == 300 and queue.inputs["sqsManagedSseEnabled"] is True
    queue_arn = f"arn:aws:sqs:us-east-1:{run.config.account_id}:{queue.inputs['name']}"
    rules = own(run, "aws:cloudwatch/eventRule:EventRule")
    patterns = {
        (tuple(p["source"]), tuple(p["detail-type"])) for p in (json.loads(r.inputs["eventPattern"]) for r in rules)
    }
    assert patterns == {((e.source,), (e.detail_type,)) for e in INTERRUPTION_EVENTS} and len(rules) == 5
    targets = own(run, "aws:cloudwatch/eventTarget:EventTarget")
    assert sorted(t.inputs["rule"] for t in targets) == sorted(r.inputs["name"] for r in rules)
    assert {t.inputs["arn"] for t in targets} == {queue_arn}
    policy = json.loads(
        one_own(run, "aws:sqs/queuePolicy:QueuePolicy", "karpenter-interruption-policy").inputs["policy"]
    )
    events = [s for s in policy["Statement"] if s.get("Principal") == {"Service": "events.amazonaws.com"}][0]
    assert len(events["Condition"]["ArnEquals"]["aws:SourceArn"]) == 5


# ------------------------------------------------------------------------------- node role
def test_node_role_instance_profile_and_join_path(run):
    name = cluster(run)
    role = one_own(run, "aws:iam/role:Role", "karpenter-node")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    attached = {
        a.inputs["policyArn"].rsplit("/", 1)[1] for a in own(run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    profile = one_own(run, "aws:iam/instanceProfile:InstanceProfile", "karpenter-node")
    assert profile.inputs["role"] == f"{name}-karpenter-node"
    if run.config.cluster.kind == "eks":
        assert attached == {
            "AmazonEKSWorkerNodePolicy",
            "AmazonEC2ContainerRegistryPullOnly",
            "AmazonSSMManagedInstanceCore",
        }
        entry = one_own(run, "aws:eks/accessEntry:AccessEntry", "karpenter-node")
        assert entry.inputs["type"] == "EC2_LINUX"
        assert entry.inputs["principalArn"] == f"arn:aws:iam::{run.config.account_id}:role/{name}-karpenter-node"
    else:
        assert attached == {"AmazonEC2ContainerRegistryPullOnly", "AmazonSSMManagedInstanceCore"}
        join = json.loads(one_own(run, "aws:iam/rolePolicy:RolePolicy", "karpenter-node-join").inputs["policy"])
        token = [s for s in join["Statement"] if s["Action"] == "ssm:GetParameter"][0]
        assert token["Resource"].endswith(f":parameter/k8s-platform/{name}/k3s/agent-token")
        assert not own(run, "aws:eks/accessEntry:AccessEntry")


def test_discovery_tags_select_node_subnets_and_security_group(run):
    tag = {"karpenter.sh/discovery": cluster(run)}
    tagged = lambda typ: [
        r
        for r in run.of_type(typ)
        if (r.inputs.get("tags") or {}).get("karpenter.sh/discovery") == tag["karpenter.sh/discovery"]
    ]
    assert len(tagged("aws:ec2/subnet:Subnet")) == len(run.config.network.availability_zones)
    assert len(tagged("aws:ec2/securityGroup:SecurityGroup")) == 1


# ----------------------------------------------------------------------------------- chart
def test_chart_is_pinned_and_configured(run):
    release = one_own(run, RELEASE, "karpenter-chart")
    inputs = release.inputs
    assert inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert inputs["version"] == CHARTS["karpenter"].version and inputs["version"].count(".") == 2
    assert inputs["namespace"] == "kube-system"
    settings = inputs["values"]["settings"]
    assert settings["clusterName"] == cluster(run)
    assert settings["clusterEndpoint"] == run.outputs["clusterEndpoint"]
    assert settings["interruptionQueue"] == f"{cluster(run)}-karpenter-interruption"
    prod = run.config.is_prod
    assert inputs["values"]["replicas"] == (2 if prod else 1)
    assert inputs["values"]["podDisruptionBudget"] == {"name": "karpenter", "maxUnavailable": 1}


def test_crds_come_from_their_own_chart_at_the_controller_version(run):
    # Helm never upgrades a chart's crds/ directory: without the CRD chart a version bump keeps the old CRDs.
    crds = one_own(run, RELEASE, "karpenter-crd-chart")
    controller = one_own(run, RELEASE, "karpenter-chart")
    assert crds.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter-crd"
    assert crds.inputs["version"] == controller.inputs["version"] == CHARTS["karpenter"].version
    assert crds.inputs["namespace"] == controller.inputs["namespace"]
    assert controller.inputs["skipCrds"] is True
    assert crds.urn in controller.dependencies


def test_chart_runs_on_system_capacity_after_identity_and_queue(run):
    release = one_own(run, RELEASE, "karpenter-chart")
    values = release.inputs["values"]
    if run.config.cluster.kind == "eks":
        node_group = run.one("aws:eks/nodeGroup:NodeGroup")
        taints = node_group.inputs.get("taints") or []
        assert values["nodeSelector"].items() <= (node_group.inputs.get("labels") or {}).items()
        assert all(any(t["key"] == tol["key"] for tol in values["tolerations"]) for t in taints)
        assert node_group.urn in release.dependencies
    else:
        assert values["nodeSelector"] == {"node-role.kubernetes.io/control-plane": "true"}
        assert {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoExecute"} in values["tolerations"]
        assert any(r.type == "aws:autoscaling/group:Group" for r in run.resources if r.urn in release.dependencies)
    deps = set(release.dependencies)
    assert one_own(run, "aws:iam/rolePolicy:RolePolicy", "karpenter-controller-policy").urn in deps
    assert one_own(run, "aws:sqs/queue:Queue", "karpenter-interruption-queue").urn in deps


# --------------------------------------------------------------------- NodePools / classes
def test_plan_has_node_classes_and_two_pools_that_validate_against_the_crds(run):
    classes, pools = own(run, NODE_CLASS), own(run, NODE_POOL)
    assert len(classes) >= 1 and len(pools) >= 2
    release = one_own(run, RELEASE, "karpenter-chart")
    class_urns = {r.inputs["metadata"]["name"]: r.urn for r in classes}
    for resource in classes + pools:
        assert_valid(manifest(resource))
        assert release.urn in resource.dependencies  # the CRDs come with the chart
        assert resource.provider is not None
    for pool in pools:
        assert class_urns[pool.inputs["spec"]["template"]["spec"]["nodeClassRef"]["name"]] in pool.dependencies


def test_node_classes_in_the_plan(run):
    kind = run.config.cluster.kind
    for resource in own(run, NODE_CLASS):
        spec = reveal(resource.inputs)["spec"]
        nc = [c for c in run.config.karpenter.node_classes if c.name == resource.inputs["metadata"]["name"]][0]
        assert spec["kubelet"]["maxPods"] == node_class_max_pods_from_config(run.config.karpenter, nc, kind)
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert all(b["ebs"]["encrypted"] and b["ebs"]["volumeType"] == "gp3" for b in spec["blockDeviceMappings"])
        assert spec["instanceProfile"] == f"{cluster(run)}-karpenter-node"
        if kind == "eks":
            assert spec["amiSelectorTerms"] == [{"alias": nc.ami_alias}] and "userData" not in spec
        else:
            assert spec["amiFamily"] == "Custom"
            assert all("ssmParameter" in t for t in spec["amiSelectorTerms"])


def test_k3s_node_user_data_joins_with_taint_provider_id_and_max_pods_but_no_secret(dev_run):
    (resource,) = own(dev_run, NODE_CLASS)
    spec = reveal(resource.inputs)["spec"]
    user_data = spec["userData"]
    assert "karpenter.sh/unregistered:NoExecute" in user_data
    assert f"max-pods={spec['kubelet']['maxPods']}" in user_data
    assert "provider-id=aws:///${az}/${instance_id}" in user_data
    assert "/k8s-platform/dev-k3s/k3s/agent-token" in user_data
    assert dev_run.outputs["clusterEndpoint"] in user_data  # joins through the API load balancer
    tokens = [
        p.inputs["value"]
        for p in dev_run.of_type("aws:ssm/parameter:Parameter")
        if isinstance(p.inputs.get("value"), Secret)
    ]
    assert tokens
    assert not any(reveal(t) in user_data for t in tokens)
    assert "PRIVATE KEY" not in user_data


def test_node_pools_in_the_plan_are_wide_with_limits_and_disruption(run):
    for resource in own(run, NODE_POOL):
        spec = resource.inputs["spec"]
        reqs = {r["key"]: r for r in spec["template"]["spec"]["requirements"]}
        assert reqs["kubernetes.io/arch"]["values"] == ["amd64", "arm64"]
        assert reqs["karpenter.k8s.aws/instance-generation"] == {
            "key": "karpenter.k8s.aws/instance-generation",
            "operator": "Gt",
            "values": ["5"],
        }
        assert set(spec["limits"]) == {"cpu", "memory"}
        assert spec["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
        assert spec["disruption"]["consolidateAfter"] and spec["disruption"]["budgets"]
        assert spec["template"]["spec"]["expireAfter"]
    by_name = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in own(run, NODE_POOL)}
    capacity = lambda pool: next(
        r for r in pool["template"]["spec"]["requirements"] if r["key"] == "karpenter.sh/capacity-type"
    )
    assert capacity(by_name["general"])["values"] == ["spot", "on-demand"]
    assert capacity(by_name["stateful"])["values"] == ["on-demand"]
