"""ClusterAddons in the offline plans of the shipped stacks: releases, identities, defaults, toggles."""

from __future__ import annotations

import base64
import json
import re

import pytest
from cryptography import x509

from components.addons.values import (
    CCM_CLOUD_CONFIG_MAP,
    EBS_CSI_CONTROLLER_SERVICE_ACCOUNT,
    LB_CONTROLLER_SERVICE_ACCOUNT,
    LB_WEBHOOK_SERVICE,
)
from components.core.pins import CHARTS
from programs.offline import OfflineRun, Secret, reveal, run_offline

RELEASE = "kubernetes:helm.sh/v3:Release"
EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")


def release(run: OfflineRun, name: str):
    found = [r for r in run.of_type(RELEASE) if r.inputs.get("name") == name]
    assert len(found) == 1, f"expected one Helm release {name}, found {len(found)}"
    return found[0]


def addon_resources(run: OfflineRun) -> set[tuple[str, str]]:
    return {(r.type, r.name) for r in run.resources}


# ------------------------------------------------------------------------------------- pins
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_helm_release_pins_an_exact_chart_version_and_its_repository(stack, request):
    run = request.getfixturevalue(f"{stack}_run")
    releases = run.of_type(RELEASE)
    assert releases, "no Helm release in the plan"
    pinned = {(c.chart, c.version, c.repo) for c in CHARTS.values()}
    for r in releases:  # every release of every component, not only the add-ons'
        chart, version = r.inputs["chart"], r.inputs.get("version", "")
        assert EXACT_VERSION.match(version), f"{r.name}: chart {chart} version {version!r} is not exact"
        repo = (r.inputs.get("repositoryOpts") or {}).get("repo")
        if chart.startswith("oci://"):
            assert repo is None, f"{r.name}: an oci:// chart carries its registry in the chart reference"
        else:
            assert repo and repo.startswith("https://"), f"{r.name}: chart {chart} has no https repository"
        assert (chart, version, repo) in pinned, (
            f"{r.name}: {chart} {version} is not the pin in components/core/pins.py"
        )


# ------------------------------------------------------------------------ enabled add-ons
def test_prod_holds_each_enabled_addon_with_its_pod_identity(prod_run):
    assert {r.inputs["name"] for r in prod_run.of_type(RELEASE)} >= {"aws-load-balancer-controller", "metrics-server"}
    # EKS: the managed EBS CSI add-on (eks_addons.py), never a second driver from a chart.
    assert not [r for r in prod_run.of_type(RELEASE) if r.inputs["chart"] == "aws-ebs-csi-driver"]
    ebs = [a for a in prod_run.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "aws-ebs-csi-driver"]
    assert len(ebs) == 1
    associations = {
        (a.inputs["namespace"], a.inputs["serviceAccount"]): a
        for a in prod_run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    }
    for sa in (LB_CONTROLLER_SERVICE_ACCOUNT, EBS_CSI_CONTROLLER_SERVICE_ACCOUNT):
        assert ("kube-system", sa) in associations, f"no Pod Identity association for kube-system/{sa}"
    # The release waits for its association: Pod Identity injects credentials at pod creation.
    lb = release(prod_run, "aws-load-balancer-controller")
    assert associations[("kube-system", LB_CONTROLLER_SERVICE_ACCOUNT)].urn in lb.dependencies
    assert lb.inputs["values"]["serviceAccount"]["annotations"] == {}  # Pod Identity needs no annotation


def test_prod_lb_controller_role_trusts_pod_identity_for_its_service_account_only(prod_run):
    association = next(
        a
        for a in prod_run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a.inputs["serviceAccount"] == LB_CONTROLLER_SERVICE_ACCOUNT
    )
    role_urn = next(u for u in association.property_dependencies.get("roleArn", []) if "iam/role:Role" in u)
    role = prod_run.by_urn()[role_urn]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    stmt = trust["Statement"][0]
    assert stmt["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert "sts:TagSession" in stmt["Action"]
    equals = stmt["Condition"]["StringEquals"]
    assert equals["aws:SourceAccount"] == prod_run.config.account_id
    # Where the trust also pins the session tags, they name exactly this ServiceAccount.
    assert (
        equals.get("aws:RequestTag/kubernetes-service-account", LB_CONTROLLER_SERVICE_ACCOUNT)
        == LB_CONTROLLER_SERVICE_ACCOUNT
    )
    assert equals.get("aws:RequestTag/kubernetes-namespace", "kube-system") == "kube-system"


def test_lb_controller_policy_in_the_plan_is_scoped_to_this_cluster_and_vpc(prod_run):
    policies = [
        p
        for p in prod_run.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.name == "addons-aws-load-balancer-controller-policy"
    ]
    assert len(policies) == 1
    doc = json.loads(policies[0].inputs["policy"])
    text = json.dumps(doc)
    assert '"aws:ResourceTag/elbv2.k8s.aws/cluster": "prod-eks"' in text
    assert f"vpc/{prod_run.outputs['vpcId']}" in text


def test_load_balancer_defaults_in_the_plan(prod_run):
    values = release(prod_run, "aws-load-balancer-controller").inputs["values"]
    assert values["clusterName"] == "prod-eks" and values["region"] == "us-east-1"
    assert values["vpcId"] == prod_run.outputs["vpcId"]
    assert values["defaultTargetType"] == "ip"
    assert values["replicaCount"] == 2 and values["podDisruptionBudget"] == {"maxUnavailable": 1}
    ingress_class = prod_run.one("kubernetes:networking.k8s.io/v1:IngressClass")
    assert ingress_class.inputs["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"
    params = prod_run.one("kubernetes:elbv2.k8s.aws/v1beta1:IngressClassParams")
    assert ingress_class.inputs["spec"]["parameters"]["name"] == params.inputs["metadata"]["name"]
    assert params.inputs["spec"]["group"] == {"name": "shared"}
    assert params.inputs["spec"]["targetType"] == "ip" and params.inputs["spec"]["scheme"] == "internal"
    # The CRD comes with the chart: parameters and class follow the release.
    lb = release(prod_run, "aws-load-balancer-controller")
    assert lb.urn in params.dependencies and lb.urn in ingress_class.dependencies


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_default_storage_class_is_encrypted_gp3_waiting_for_first_consumer(stack, request):
    run = request.getfixturevalue(f"{stack}_run")
    sc = run.one("kubernetes:storage.k8s.io/v1:StorageClass")
    assert sc.inputs["provisioner"] == "ebs.csi.aws.com"
    assert sc.inputs["parameters"]["type"] == "gp3" and sc.inputs["parameters"]["encrypted"] == "true"
    assert sc.inputs["volumeBindingMode"] == "WaitForFirstConsumer" and sc.inputs["allowVolumeExpansion"] is True
    assert sc.inputs["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"


def test_lb_webhook_certificate_chains_to_its_ca_and_names_the_webhook_service(prod_run):
    tls = release(prod_run, "aws-load-balancer-controller").inputs["values"]["webhookTLS"]
    assert isinstance(tls["key"], Secret), "the webhook private key must stay a Pulumi secret"
    ca = x509.load_pem_x509_certificate(tls["caCert"].encode())
    cert = x509.load_pem_x509_certificate(tls["cert"].encode())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert f"{LB_WEBHOOK_SERVICE}.kube-system.svc" in names


def test_metrics_server_serves_a_minted_certificate_its_apiservice_verifies(prod_run):
    values = release(prod_run, "metrics-server").inputs["values"]
    assert values["apiService"]["insecureSkipTLSVerify"] is False
    secret = next(
        s
        for s in prod_run.of_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"]["name"] == values["tls"]["existingSecret"]["name"]
    )
    data = reveal(secret.inputs["stringData"])
    x509.load_pem_x509_certificate(data["tls.crt"].encode()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(values["apiService"]["caBundle"].encode())
    )
    assert isinstance(secret.inputs["stringData"], Secret) or isinstance(secret.inputs["stringData"]["tls.key"], Secret)


# ---------------------------------------------------------------------------- switching off
def _removed(base: OfflineRun, stack: str, mutate_config, key: str) -> tuple[set, set, OfflineRun]:
    run = run_offline(stack, mutate_config(stack, key, False))
    before, after = addon_resources(base), addon_resources(run)
    return before - after, after - before, run


@pytest.mark.parametrize(
    "key,gone",
    [
        (
            "addons.awsLoadBalancerController.enabled",
            {
                (RELEASE, "addons-aws-load-balancer-controller"),
                ("aws:iam/role:Role", "addons-aws-load-balancer-controller-role"),
                ("aws:iam/rolePolicy:RolePolicy", "addons-aws-load-balancer-controller-policy"),
                (
                    "aws:eks/podIdentityAssociation:PodIdentityAssociation",
                    "addons-aws-load-balancer-controller-association",
                ),
                ("kubernetes:networking.k8s.io/v1:IngressClass", "addons-ingress-class"),
                ("kubernetes:elbv2.k8s.aws/v1beta1:IngressClassParams", "addons-ingress-class-params"),
            },
        ),
        (
            "addons.metricsServer.enabled",
            {(RELEASE, "addons-metrics-server"), ("kubernetes:core/v1:Secret", "addons-metrics-server-certs-tls")},
        ),
        (
            "addons.ebsCsi.enabled",
            {
                ("kubernetes:storage.k8s.io/v1:StorageClass", "addons-gp3"),
                ("aws:eks/addon:Addon", "eks-workload-aws-ebs-csi-driver"),
                ("aws:iam/role:Role", "eks-workload-ebs-csi-role"),
                ("aws:eks/podIdentityAssociation:PodIdentityAssociation", "eks-workload-ebs-csi-association"),
            },
        ),
    ],
)
def test_switching_an_addon_off_in_prod_removes_it_with_its_iam(key, gone, prod_run, mutate_config):
    removed, added, run = _removed(prod_run, "prod", mutate_config, key)
    assert gone <= removed, f"still planned: {sorted(gone - removed)}"
    assert not added, f"switching {key} off added {sorted(added)}"
    # Nothing of the other add-ons goes with it.
    prefixes = {
        "addons.awsLoadBalancerController.enabled": (
            "addons-aws-load-balancer-controller",
            "addons-lb-webhook-certs",
            "addons-ingress-class",
        ),
        "addons.metricsServer.enabled": ("addons-metrics-server",),
        "addons.ebsCsi.enabled": ("addons-gp3", "eks-workload-ebs-csi", "eks-workload-aws-ebs-csi-driver"),
    }[key]
    assert all(name.startswith(prefixes) for _, name in removed), sorted(removed)


# ----------------------------------------------------------------------------------- K3s (dev)
def _role_for(run: OfflineRun, dependent) -> dict:
    """The trust policy of the IAM role whose ARN `dependent` consumes (its property dependency)."""
    by_urn = run.by_urn()
    roles = [by_urn[u] for u in dependent.dependencies if by_urn.get(u) and by_urn[u].type == "aws:iam/role:Role"]
    return {r.name: json.loads(r.inputs["assumeRolePolicy"]) for r in roles}


@pytest.mark.parametrize(
    "release_name,service_account",
    [
        ("aws-load-balancer-controller", LB_CONTROLLER_SERVICE_ACCOUNT),
        ("aws-ebs-csi-driver", EBS_CSI_CONTROLLER_SERVICE_ACCOUNT),
    ],
)
def test_dev_controllers_bind_irsa_roles_trusting_exactly_their_service_account(release_name, service_account, dev_run):
    rel = release(dev_run, release_name)
    values = rel.inputs["values"]
    sa = values["serviceAccount"] if "serviceAccount" in values else values["controller"]["serviceAccount"]
    assert sa["name"] == service_account
    role_arn = sa["annotations"]["eks.amazonaws.com/role-arn"]
    own = [
        (name, trust) for name, trust in _role_for(dev_run, rel).items() if role_arn.rsplit("/", 1)[-1].startswith(name)
    ]
    assert len(own) == 1, f"no role of the plan matches the annotation {role_arn}"
    stmt = own[0][1]["Statement"][0]
    assert stmt["Action"] == "sts:AssumeRoleWithWebIdentity"
    issuer = dev_run.outputs["oidcIssuerUrl"].removeprefix("https://")
    assert stmt["Condition"]["StringEquals"][f"{issuer}:sub"] == f"system:serviceaccount:kube-system:{service_account}"
    assert stmt["Condition"]["StringEquals"][f"{issuer}:aud"] == "sts.amazonaws.com"
    assert not [r for r in dev_run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")]


def test_dev_cloud_controller_runs_first_with_projected_irsa_credentials(dev_run):
    ccm = release(dev_run, "aws-cloud-controller-manager")
    env = {e["name"]: e["value"] for e in ccm.inputs["values"]["env"]}
    roles = _role_for(dev_run, ccm)
    assert len(roles) == 1
    ((role_name, trust),) = roles.items()
    assert env["AWS_ROLE_ARN"].rsplit("/", 1)[-1].startswith(role_name)
    assert (
        trust["Statement"][0]["Condition"]["StringEquals"][
            f"{dev_run.outputs['oidcIssuerUrl'].removeprefix('https://')}:sub"
        ]
        == "system:serviceaccount:kube-system:cloud-controller-manager"
    )
    # Nothing that needs an initialised node is scheduled before it: webhook, Karpenter, add-ons.
    webhook = next(r for r in dev_run.of_type("kubernetes:apps/v1:Deployment") if "pod-identity-webhook" in r.name)
    assert ccm.urn in webhook.dependencies
    for other in dev_run.of_type(RELEASE):
        if other is not ccm:
            assert ccm.urn in other.dependencies, f"{other.name} may start before nodes are initialised"


def test_dev_cloud_controller_config_names_this_vpc_and_a_private_subnet(dev_run):
    ccm = release(dev_run, "aws-cloud-controller-manager")
    config_map = next(
        r
        for r in dev_run.of_type("kubernetes:core/v1:ConfigMap")
        if r.inputs["metadata"]["name"] == CCM_CLOUD_CONFIG_MAP
    )
    assert config_map.urn in ccm.dependencies
    assert config_map.inputs["metadata"]["namespace"] == "kube-system"
    text = config_map.inputs["data"]["cloud.conf"]
    fields = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    assert fields == {
        "Region": "us-east-1",
        "VPC": dev_run.outputs["vpcId"],
        "KubernetesClusterID": "dev-k3s",
        "SubnetID": fields["SubnetID"],
    }
    assert fields["SubnetID"] in dev_run.outputs["privateSubnetIds"].values()


def test_dev_load_balancer_uses_instance_targets_on_flannel(dev_run):
    values = release(dev_run, "aws-load-balancer-controller").inputs["values"]
    assert values["defaultTargetType"] == "instance"
    params = dev_run.one("kubernetes:elbv2.k8s.aws/v1beta1:IngressClassParams")
    assert params.inputs["spec"]["targetType"] == "instance"
    node_sg = next(
        sg
        for sg in dev_run.of_type("aws:ec2/securityGroup:SecurityGroup")
        if sg.inputs.get("tags", {}).get("karpenter.sh/discovery") == "dev-k3s"
    )
    assert node_sg.inputs["tags"]["kubernetes.io/cluster/dev-k3s"] == "owned"


@pytest.mark.parametrize(
    "key,gone",
    [
        (
            "addons.cloudControllerManager.enabled",
            {
                (RELEASE, "cloud-controller-manager-release"),
                ("aws:iam/role:Role", "cloud-controller-manager-identity-role"),
                ("aws:iam/rolePolicy:RolePolicy", "cloud-controller-manager-identity-policy"),
                ("kubernetes:core/v1:ConfigMap", "cloud-controller-manager-cloud-config"),
            },
        ),
        (
            "addons.ebsCsi.enabled",
            {
                (RELEASE, "addons-aws-ebs-csi-driver"),
                ("aws:iam/role:Role", "addons-ebs-csi-role"),
                ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "addons-ebs-csi-managed-0"),
                ("kubernetes:storage.k8s.io/v1:StorageClass", "addons-gp3"),
            },
        ),
        (
            "addons.awsLoadBalancerController.enabled",
            {
                (RELEASE, "addons-aws-load-balancer-controller"),
                ("aws:iam/role:Role", "addons-aws-load-balancer-controller-role"),
                ("aws:iam/rolePolicy:RolePolicy", "addons-aws-load-balancer-controller-policy"),
                ("kubernetes:networking.k8s.io/v1:IngressClass", "addons-ingress-class"),
            },
        ),
    ],
)
def test_switching_an_addon_off_in_dev_removes_it_with_its_iam(key, gone, dev_run, mutate_config):
    removed, added, run = _removed(dev_run, "dev", mutate_config, key)
    assert gone <= removed, f"still planned: {sorted(gone - removed)}"
    assert not added, f"switching {key} off added {sorted(added)}"
    assert not [r for r in removed if r[1].startswith("pod-identity-webhook") or r[1].startswith("k3s-")]
    if key == "addons.cloudControllerManager.enabled":
        # K3s's own cloud controller then initialises the nodes.
        user_data = " ".join(
            base64.b64decode(lt.inputs["userData"]).decode()
            for lt in run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
            if isinstance(lt.inputs.get("userData"), str)
        )
        assert "disable-cloud-controller: false" in user_data


def test_a_customer_managed_volume_key_reaches_the_storage_class_and_the_driver_role(mutate_config):
    key = "arn:aws:kms:us-east-1:222222222222:key/0b5c6a43-1e8f-4c9a-9d1e-0123456789ab"
    run = run_offline("prod", mutate_config("prod", "addons.ebsCsi.kmsKeyArn", key))
    assert run.one("kubernetes:storage.k8s.io/v1:StorageClass").inputs["parameters"]["kmsKeyId"] == key
    association = next(
        a
        for a in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a.inputs["serviceAccount"] == EBS_CSI_CONTROLLER_SERVICE_ACCOUNT
    )
    role_urn = next(u for u in association.property_dependencies.get("roleArn", []) if "iam/role:Role" in u)
    role_policies = [
        p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.parent == run.by_urn()[role_urn].parent
    ]
    assert len(role_policies) == 1
    statements = json.loads(role_policies[0].inputs["policy"])["Statement"]
    assert all(s["Resource"] == key for s in statements)
    assert any(s.get("Condition") == {"Bool": {"kms:GrantIsForAWSResource": "true"}} for s in statements)
