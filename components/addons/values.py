"""Pure renderers: Helm values and Kubernetes specs of the cluster add-ons.

Values that are only known at deploy time (VPC id, role ARNs, certificates) are placed as given:
a renderer never inspects them, so the component may pass `pulumi.Output`s and the tests plain
strings. Chart value names follow each chart's values.yaml at the version pinned in
`components/core/pins.py`.
"""

from __future__ import annotations

from typing import Any

from components.core.cluster_handle import SystemScheduling
from components.core.trust_policies import STS_AUDIENCE

KUBE_SYSTEM = "kube-system"

LB_CONTROLLER_RELEASE = "aws-load-balancer-controller"
LB_CONTROLLER_SERVICE_ACCOUNT = "aws-load-balancer-controller"
# The chart names its webhook Service `<chart name without -controller>-webhook-service`.
LB_WEBHOOK_SERVICE = "aws-load-balancer-webhook-service"
INGRESS_CONTROLLER = "ingress.k8s.aws/alb"
INGRESS_CLASS = "alb"
DEFAULT_INGRESS_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"

METRICS_SERVER_RELEASE = "metrics-server"
METRICS_SERVER_TLS_SECRET = "metrics-server-tls"

EBS_CSI_RELEASE = "aws-ebs-csi-driver"
EBS_CSI_CONTROLLER_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
# EKS Auto Mode's block storage capability (EKS User Guide, "Create a storage class"): it creates no
# StorageClass itself.
AUTO_MODE_EBS_PROVISIONER = "ebs.csi.eks.amazonaws.com"
# EKS Auto Mode's load balancing capability (EKS User Guide, "Create an IngressClass to configure an ALB").
AUTO_MODE_INGRESS_CONTROLLER = "eks.amazonaws.com/alb"
AUTO_MODE_INGRESS_PARAMS_API_VERSION = "eks.amazonaws.com/v1"
STORAGE_CLASS = "gp3"
DEFAULT_STORAGE_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"

CCM_RELEASE = "aws-cloud-controller-manager"
CCM_SERVICE_ACCOUNT = "cloud-controller-manager"
CCM_IMAGE = "registry.k8s.io/provider-aws/cloud-controller-manager"
# Not the chart's own `aws-cloud-config` (its optional cloudConfig values): the component owns this one.
CCM_CLOUD_CONFIG_MAP = "k8s-platform-aws-cloud-config"
CCM_CLOUD_CONFIG_DIR = "/etc/kubernetes/aws-cloud-config"
CCM_CLOUD_CONFIG_FILE = "cloud.conf"

IRSA_TOKEN_DIR = "/var/run/secrets/eks.amazonaws.com/serviceaccount"


def replicas(highly_available: bool) -> int:
    """Two controllers where the environment is highly available (leader election, one survives a node
    drain: staging and prod by default); one otherwise."""
    return 2 if highly_available else 1


def scheduling_values(scheduling: SystemScheduling) -> dict[str, Any]:
    """Pin a controller to system capacity (EKS system node group / K3s servers)."""
    return {"nodeSelector": dict(scheduling.node_selector), "tolerations": [dict(t) for t in scheduling.tolerations]}


def ingress_class_params_name(group: str) -> str:
    return f"alb-{group}"


# -------------------------------------------------------------------- AWS Load Balancer Controller
def load_balancer_controller_values(
    *,
    cluster_name: str,
    region: str,
    vpc_id: Any,
    service_account_annotations: Any,
    scheduling: SystemScheduling,
    highly_available: bool,
    webhook_ca: Any,
    webhook_cert: Any,
    webhook_key: Any,
    default_tags: dict[str, str],
    target_type: str = "ip",
    waf_integration: bool = False,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "clusterName": cluster_name,
        # Set explicitly: with IMDS hop limit 1 the controller pod cannot discover them itself.
        "region": region,
        "vpcId": vpc_id,
        "serviceAccount": {
            "create": True,
            "name": LB_CONTROLLER_SERVICE_ACCOUNT,
            "annotations": service_account_annotations,
        },
        "replicaCount": replicas(highly_available),
        **scheduling_values(scheduling),
        "priorityClassName": "system-cluster-critical",
        # The IngressClass and its IngressClassParams are owned by the ClusterAddons component.
        "createIngressClassResource": False,
        "ingressClass": INGRESS_CLASS,
        "ingressClassParams": {"create": False},
        # EKS: pods as targets (VPC addresses from the pod subnets), not NodePorts on every
        # instance: no extra hop, no 502s while a node drains behind an instance target.
        # K3s: `instance` (see LoadBalancerControllerConfig.target_type).
        "defaultTargetType": target_type,
        # New `type: LoadBalancer` Services get the controller's loadBalancerClass (NLB, ip targets)
        # instead of the legacy cloud-provider ELB.
        "enableServiceMutatorWebhook": True,
        # Webhook serving certificate minted by Pulumi (see README "Certificates").
        "webhookTLS": {"caCert": webhook_ca, "cert": webhook_cert, "key": webhook_key},
        "defaultTags": dict(default_tags),
        # The chart defaults all three on: the controller would then call WAF and Shield on every
        # reconcile, with permissions it only has under wafIntegration.
        "enableWaf": waf_integration,
        "enableWafv2": waf_integration,
        "enableShield": waf_integration,
    }
    if highly_available:
        values["podDisruptionBudget"] = {"maxUnavailable": 1}
        values["topologySpreadConstraints"] = [_zone_spread({"app.kubernetes.io/name": "aws-load-balancer-controller"})]
    return values


def ingress_class_params_spec(group: str, scheme: str, tags: dict[str, str], target_type: str = "ip") -> dict[str, Any]:
    """IngressClassParams of the default class: every Ingress joins one IngressGroup (one ALB)."""
    return {
        "group": {"name": group},
        "scheme": scheme,
        "targetType": target_type,
        "ipAddressType": "ipv4",
        "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
    }


def ingress_class_manifest(params_name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": INGRESS_CLASS, "annotations": {DEFAULT_INGRESS_CLASS_ANNOTATION: "true"}},
        "spec": {
            "controller": INGRESS_CONTROLLER,
            "parameters": {"apiGroup": "elbv2.k8s.aws", "kind": "IngressClassParams", "name": params_name},
        },
    }


def auto_mode_ingress_class_params_spec(group: str, scheme: str) -> dict[str, Any]:
    """Auto Mode's IngressClassParams (eks.amazonaws.com/v1): one shared IngressGroup, like the self-managed
    class. No tags: Auto Mode's managed policies do not permit user tags on load balancers."""
    return {"group": {"name": group}, "scheme": scheme, "ipAddressType": "ipv4"}


def auto_mode_ingress_class_manifest(params_name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": INGRESS_CLASS, "annotations": {DEFAULT_INGRESS_CLASS_ANNOTATION: "true"}},
        "spec": {
            "controller": AUTO_MODE_INGRESS_CONTROLLER,
            "parameters": {"apiGroup": "eks.amazonaws.com", "kind": "IngressClassParams", "name": params_name},
        },
    }


# --------------------------------------------------------------------------------- metrics-server
def metrics_server_values(*, scheduling: SystemScheduling, highly_available: bool, ca_bundle: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "replicas": replicas(highly_available),
        **scheduling_values(scheduling),
        "priorityClassName": "system-cluster-critical",
        # Serving certificate minted by Pulumi, stored in a Secret the component creates; the API
        # server verifies it (no insecureSkipTLSVerify on the APIService).
        "tls": {"type": "existingSecret", "existingSecret": {"name": METRICS_SERVER_TLS_SECRET, "lookup": False}},
        "apiService": {"create": True, "insecureSkipTLSVerify": False, "caBundle": ca_bundle},
    }
    if highly_available:
        values["podDisruptionBudget"] = {"enabled": True, "maxUnavailable": 1}
    return values


# ------------------------------------------------------------------------------- EBS CSI (K3s)
def ebs_csi_values(
    *,
    cluster_name: str,
    region: str,
    service_account_annotations: Any,
    scheduling: SystemScheduling,
    highly_available: bool,
    volume_tags: dict[str, str],
) -> dict[str, Any]:
    return {
        "controller": {
            "region": region,
            "replicaCount": replicas(highly_available),
            **scheduling_values(scheduling),
            "serviceAccount": {
                "create": True,
                "name": EBS_CSI_CONTROLLER_SERVICE_ACCOUNT,
                "annotations": service_account_annotations,
            },
            # The chart's PDB (maxUnavailable 1) would block every drain with one replica.
            "podDisruptionBudget": {"enabled": highly_available},
            # Volumes carry the cluster tag and the platform's tags like every other resource.
            "k8sTagClusterId": cluster_name,
            "extraVolumeTags": dict(volume_tags),
        },
        # The node plugin must run wherever pods mount volumes, including tainted system nodes.
        "node": {"tolerateAllTaints": True},
        # The default StorageClass is owned by the ClusterAddons component.
        "storageClasses": [],
    }


def storage_class_manifest(kms_key_arn: str | None, provisioner: str = EBS_CSI_PROVISIONER) -> dict[str, Any]:
    """Default gp3 class: encrypted, bound where the pod lands (a volume is zonal), expandable. The
    provisioner is the EBS CSI driver's, or Auto Mode's (`AUTO_MODE_EBS_PROVISIONER`, same parameters)."""
    parameters = {"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"}
    if kms_key_arn:
        parameters["kmsKeyId"] = kms_key_arn
    return {
        "metadata": {"name": STORAGE_CLASS, "annotations": {DEFAULT_STORAGE_CLASS_ANNOTATION: "true"}},
        "provisioner": provisioner,
        "parameters": parameters,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


# ------------------------------------------------------------------ AWS cloud controller (K3s)
def ccm_controllers(manages_load_balancers: bool) -> list[str]:
    """Routes stay off (flannel's overlay needs none); the service controller only without the LB controller."""
    controllers = ["cloud-node", "cloud-node-lifecycle"]
    return controllers + ["service"] if manages_load_balancers else controllers


def irsa_token_projection(role_arn: Any, region: str) -> dict[str, Any]:
    """IRSA without the pod-identity webhook: the projected token and the SDK variables, explicitly.

    The cloud controller must run before any node is initialised, i.e. before the webhook can be
    scheduled; it cannot wait for the webhook to inject its credentials.
    """
    return {
        "env": [
            {"name": "AWS_ROLE_ARN", "value": role_arn},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": f"{IRSA_TOKEN_DIR}/token"},
            {"name": "AWS_REGION", "value": region},
            {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
        ],
        "extraVolumes": [
            {
                "name": "aws-iam-token",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"audience": STS_AUDIENCE, "expirationSeconds": 86400, "path": "token"}}
                    ]
                },
            }
        ],
        "extraVolumeMounts": [{"name": "aws-iam-token", "mountPath": IRSA_TOKEN_DIR, "readOnly": True}],
    }


def ccm_cloud_config(*, region: str, vpc_id: str, subnet_id: str, cluster_name: str) -> str:
    """The provider's `--cloud-config` (gcfg INI): everything it would otherwise ask IMDS for.

    Without Region, and without VPC + SubnetID + KubernetesClusterID together, cloud-provider-aws
    reads the region and its "own" instance (VPC, subnet) from IMDS at start-up and exits when IMDS
    is unreachable, as it is from a pod network with hop limit 1. With all four it runs
    IMDS-free (upstream `newAWSCloud2`: the "master-dummy" self instance); nodes are then looked
    up by their provider ID (`aws:///<az>/<instance-id>`, set by the K3s kubelet).
    """
    return "\n".join(
        [
            "[Global]",
            f"Region = {region}",
            f"VPC = {vpc_id}",
            f"SubnetID = {subnet_id}",
            f"KubernetesClusterID = {cluster_name}",
            "",
        ]
    )


def cloud_controller_manager_values(
    *,
    cluster_name: str,
    region: str,
    image_tag: str,
    role_arn: Any,
    scheduling: SystemScheduling,
    manages_load_balancers: bool,
) -> dict[str, Any]:
    values = scheduling_values(scheduling)
    # Nodes start tainted until this controller initialises them; it must tolerate that taint.
    values["tolerations"] = values["tolerations"] + [
        {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"},
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
    ]
    result = {
        "image": {"repository": CCM_IMAGE, "tag": image_tag},
        "args": [
            "--v=2",
            "--cloud-provider=aws",
            f"--cluster-name={cluster_name}",
            "--configure-cloud-routes=false",
            f"--controllers={','.join(ccm_controllers(manages_load_balancers))}",
            f"--cloud-config={CCM_CLOUD_CONFIG_DIR}/{CCM_CLOUD_CONFIG_FILE}",
        ],
        **values,
        # Not on the host network: with IMDS hop limit 1 the pod cannot borrow the server's
        # instance role (and needs no IMDS: see `ccm_cloud_config`). DNS through the node's
        # resolver: CoreDNS cannot schedule before the nodes are initialised by this very controller.
        "hostNetworking": False,
        "dnsPolicy": "Default",
        "serviceAccountName": CCM_SERVICE_ACCOUNT,
    }
    projection = irsa_token_projection(role_arn, region)
    cloud_config = "aws-cloud-config"
    return {
        **result,
        "env": projection["env"],
        "extraVolumes": [
            *projection["extraVolumes"],
            {"name": cloud_config, "configMap": {"name": CCM_CLOUD_CONFIG_MAP}},
        ],
        "extraVolumeMounts": [
            *projection["extraVolumeMounts"],
            {"name": cloud_config, "mountPath": CCM_CLOUD_CONFIG_DIR, "readOnly": True},
        ],
    }


def _zone_spread(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": labels},
    }
