"""Pure renderers of the add-ons' Helm values and Kubernetes specs."""

from __future__ import annotations

import pytest

from components.addons import values as v
from components.config import AddonsConfig, kubernetes_minor
from components.core.cluster_handle import SystemScheduling

SYSTEM = SystemScheduling(
    node_selector={"k8s-platform/node-pool": "system"},
    tolerations=[{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}],
)
TAGS = {"owner": "platform-team", "cost-center": "cc-1234"}


def lb_values(highly_available: bool) -> dict:
    return v.load_balancer_controller_values(
        cluster_name="prod-eks",
        region="us-east-1",
        vpc_id="vpc-0abc",
        service_account_annotations={"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/lb"},
        scheduling=SYSTEM,
        highly_available=highly_available,
        webhook_ca="CA",
        webhook_cert="CERT",
        webhook_key="KEY",
        default_tags=TAGS,
    )


def test_lb_controller_knows_its_cluster_without_imds():
    values = lb_values(True)
    assert (values["clusterName"], values["region"], values["vpcId"]) == ("prod-eks", "us-east-1", "vpc-0abc")


def test_lb_controller_defaults_to_ip_targets_and_owns_no_ingress_class():
    values = lb_values(True)
    assert values["defaultTargetType"] == "ip"
    assert values["createIngressClassResource"] is False and values["ingressClassParams"] == {"create": False}
    assert values["enableServiceMutatorWebhook"] is True


def test_lb_controller_service_account_carries_the_identity_annotations():
    sa = lb_values(False)["serviceAccount"]
    assert sa == {
        "create": True,
        "name": "aws-load-balancer-controller",
        "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/lb"},
    }


def test_lb_controller_webhook_uses_the_given_certificates():
    assert lb_values(False)["webhookTLS"] == {"caCert": "CA", "cert": "CERT", "key": "KEY"}


@pytest.mark.parametrize(
    "render",
    [
        lambda p: lb_values(p),
        lambda p: v.metrics_server_values(scheduling=SYSTEM, highly_available=p, ca_bundle="CA"),
        lambda p: v.ebs_csi_values(
            cluster_name="c",
            region="us-east-1",
            service_account_annotations={},
            scheduling=SYSTEM,
            highly_available=p,
            volume_tags=TAGS,
        )["controller"],
    ],
)
def test_controllers_run_on_system_capacity(render):
    for highly_available in (True, False):
        values = render(highly_available)
        assert values["nodeSelector"] == {"k8s-platform/node-pool": "system"}
        assert values["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]


def test_prod_runs_two_replicas_with_a_disruption_budget_dev_one_without():
    assert lb_values(True)["replicaCount"] == 2 and lb_values(True)["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert lb_values(False)["replicaCount"] == 1 and "podDisruptionBudget" not in lb_values(False)
    ms_prod = v.metrics_server_values(scheduling=SYSTEM, highly_available=True, ca_bundle="CA")
    ms_dev = v.metrics_server_values(scheduling=SYSTEM, highly_available=False, ca_bundle="CA")
    assert ms_prod["replicas"] == 2 and ms_prod["podDisruptionBudget"]["enabled"] is True
    assert ms_dev["replicas"] == 1 and "podDisruptionBudget" not in ms_dev
    ebs = lambda p: v.ebs_csi_values(
        cluster_name="c",
        region="r",
        service_account_annotations={},  # noqa: E731
        scheduling=SYSTEM,
        highly_available=p,
        volume_tags=TAGS,
    )["controller"]
    assert ebs(True)["replicaCount"] == 2 and ebs(True)["podDisruptionBudget"] == {"enabled": True}
    # The chart's PDB is on by default; with one replica it would block every node drain.
    assert ebs(False)["replicaCount"] == 1 and ebs(False)["podDisruptionBudget"] == {"enabled": False}


def test_metrics_server_apiservice_is_verified_against_the_minted_ca():
    values = v.metrics_server_values(scheduling=SYSTEM, highly_available=False, ca_bundle="-----BEGIN CERTIFICATE-----")
    assert values["apiService"]["insecureSkipTLSVerify"] is False
    assert values["apiService"]["caBundle"] == "-----BEGIN CERTIFICATE-----"
    assert (
        values["tls"]["type"] == "existingSecret"
        and values["tls"]["existingSecret"]["name"] == v.METRICS_SERVER_TLS_SECRET
    )


def test_default_ingress_class_shares_one_ingress_group_with_ip_targets():
    params = v.ingress_class_params_spec("shared", "internal", TAGS)
    assert params["group"] == {"name": "shared"}
    assert params["targetType"] == "ip" and params["scheme"] == "internal"
    assert {"key": "owner", "value": "platform-team"} in params["tags"]
    ic = v.ingress_class_manifest(v.ingress_class_params_name("shared"))
    assert ic["metadata"]["annotations"] == {"ingressclass.kubernetes.io/is-default-class": "true"}
    assert ic["spec"]["controller"] == "ingress.k8s.aws/alb"
    assert ic["spec"]["parameters"] == {"apiGroup": "elbv2.k8s.aws", "kind": "IngressClassParams", "name": "alb-shared"}


def test_storage_class_is_default_encrypted_gp3_bound_on_first_consumer():
    sc = v.storage_class_manifest(None)
    assert sc["provisioner"] == "ebs.csi.aws.com"
    assert sc["parameters"]["type"] == "gp3" and sc["parameters"]["encrypted"] == "true"
    assert "kmsKeyId" not in sc["parameters"]
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer" and sc["allowVolumeExpansion"] is True
    assert sc["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}


def test_storage_class_uses_a_configured_kms_key():
    key = "arn:aws:kms:us-east-1:111111111111:key/0b5c6a43-1e8f-4c9a-9d1e-0123456789ab"
    assert v.storage_class_manifest(key)["parameters"]["kmsKeyId"] == key


def test_ebs_csi_tags_volumes_and_owns_no_storage_class():
    values = v.ebs_csi_values(
        cluster_name="dev-k3s",
        region="us-east-1",
        service_account_annotations={"a": "b"},
        scheduling=SYSTEM,
        highly_available=False,
        volume_tags=TAGS,
    )
    assert values["controller"]["k8sTagClusterId"] == "dev-k3s"
    assert values["controller"]["extraVolumeTags"] == TAGS
    assert values["controller"]["serviceAccount"]["annotations"] == {"a": "b"}
    assert values["storageClasses"] == [] and values["node"]["tolerateAllTaints"] is True


def ccm(manages_lbs: bool) -> dict:
    return v.cloud_controller_manager_values(
        cluster_name="dev-k3s",
        region="us-east-1",
        image_tag="v1.35.0",
        role_arn="arn:aws:iam::1:role/ccm",
        scheduling=SYSTEM,
        manages_load_balancers=manages_lbs,
    )


def test_cloud_controller_runs_only_node_controllers_next_to_the_lb_controller():
    args = ccm(False)["args"]
    assert "--controllers=cloud-node,cloud-node-lifecycle" in args
    assert "--configure-cloud-routes=false" in args and "--cluster-name=dev-k3s" in args
    assert "--controllers=cloud-node,cloud-node-lifecycle,service" in ccm(True)["args"]


def test_cloud_controller_gets_irsa_credentials_without_the_webhook():
    values = ccm(False)
    env = {e["name"]: e["value"] for e in values["env"]}
    assert env["AWS_ROLE_ARN"] == "arn:aws:iam::1:role/ccm"
    mount = values["extraVolumeMounts"][0]
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == mount["mountPath"] + "/token"
    token = values["extraVolumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == "sts.amazonaws.com" and token["path"] == "token"
    assert values["hostNetworking"] is False  # no path to the server's instance role through IMDS


def test_cloud_controller_needs_no_imds_from_its_pod_network():
    # cloud-provider-aws asks IMDS for its region and its own instance (VPC, subnet) at start-up
    # unless the cloud config names Region and VPC + SubnetID + a cluster id; off the host network
    # with hop limit 1, IMDS is unreachable, so without them the controller exits and no node is
    # ever initialised.
    values = ccm(False)
    flag = next(a for a in values["args"] if a.startswith("--cloud-config="))
    path = flag.split("=", 1)[1]
    mount = next(m for m in values["extraVolumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(vol for vol in values["extraVolumes"] if vol["name"] == mount["name"])
    assert volume["configMap"]["name"] == v.CCM_CLOUD_CONFIG_MAP
    assert path.rsplit("/", 1)[1] == v.CCM_CLOUD_CONFIG_FILE
    import configparser

    parsed = configparser.ConfigParser()
    parsed.read_string(
        v.ccm_cloud_config(region="us-east-1", vpc_id="vpc-0abc", subnet_id="subnet-0def", cluster_name="dev-k3s")
    )
    assert dict(parsed["Global"]) == {
        "region": "us-east-1",
        "vpc": "vpc-0abc",
        "subnetid": "subnet-0def",
        "kubernetesclusterid": "dev-k3s",
    }


def test_cloud_controller_tolerates_uninitialised_nodes_on_system_capacity():
    values = ccm(False)
    assert values["nodeSelector"] == SYSTEM.node_selector
    assert {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"} in values[
        "tolerations"
    ]
    assert values["image"] == {"repository": "registry.k8s.io/provider-aws/cloud-controller-manager", "tag": "v1.35.0"}


def test_k3s_packaged_components_replaced_by_enabled_addons_are_disabled():
    assert AddonsConfig().k3s_disabled_components() == ["servicelb", "traefik", "local-storage", "metrics-server"]
    only_lb = AddonsConfig.model_validate({"ebsCsi": {"enabled": False}, "metricsServer": {"enabled": False}})
    assert only_lb.k3s_disabled_components() == ["servicelb", "traefik"]
    none = AddonsConfig.model_validate(
        {
            "awsLoadBalancerController": {"enabled": False},
            "ebsCsi": {"enabled": False},
            "metricsServer": {"enabled": False},
        }
    )
    assert none.k3s_disabled_components() == []


def test_kubernetes_minor():
    assert kubernetes_minor("v1.35.1+k3s1") == "1.35" and kubernetes_minor("1.35") == "1.35"


def test_target_type_reaches_the_controller_default_and_the_ingress_class():
    values = v.load_balancer_controller_values(
        cluster_name="dev-k3s",
        region="us-east-1",
        vpc_id="vpc-1",
        service_account_annotations={},
        scheduling=SYSTEM,
        highly_available=False,
        webhook_ca="CA",
        webhook_cert="C",
        webhook_key="K",
        default_tags=TAGS,
        target_type="instance",
    )
    assert values["defaultTargetType"] == "instance"
    assert v.ingress_class_params_spec("shared", "internal", TAGS, "instance")["targetType"] == "instance"
