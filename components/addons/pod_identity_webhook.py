"""`PodIdentityWebhook`: amazon-eks-pod-identity-webhook on K3s, so IRSA works as on EKS.

Pods whose ServiceAccount carries `eks.amazonaws.com/role-arn` get a projected service-account
token (audience sts.amazonaws.com, signed by the cluster's key, `iss` = the self-hosted issuer)
plus `AWS_ROLE_ARN`/`AWS_WEB_IDENTITY_TOKEN_FILE`; the SDKs then call AssumeRoleWithWebIdentity.

Certificates come from `WebhookCertificates` (Pulumi-minted; see that module for why), so the
webhook runs with `--in-cluster=false` (certificate files, no CSR API) and needs only read access
to ServiceAccounts.

`failurePolicy: Fail`: a pod of an annotated ServiceAccount admitted without its token would run
without credentials until someone restarts it; refused instead, its ReplicaSet/Job retries until
the webhook answers and the pod then starts correctly. What could deadlock is exempt: the
webhook's own namespace (so it can always be (re)started) and, through a `matchConditions` CEL
rule, pods that already project their own STS token (the AWS cloud controller, Karpenter: they
must run before the webhook can be scheduled on a fresh node). Two replicas, a PDB and
system-cluster-critical keep it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.addons.webhook_certs import WebhookCertificates, WebhookCertificatesArgs
from components.config import StackConfig
from components.core.cluster_handle import ClusterHandle
from components.core.pins import POD_IDENTITY_WEBHOOK_IMAGE_DIGEST, POD_IDENTITY_WEBHOOK_IMAGE_TAG
from components.core.trust_policies import STS_AUDIENCE

# Pinned upstream image (public ECR), by digest: the webhook mutates every pod and fails closed, so
# a re-pushed tag must not change what runs. Tag and digest: components/core/pins.py (where the
# digest comes from and how to confirm it before a rollout).
WEBHOOK_IMAGE_TAG = POD_IDENTITY_WEBHOOK_IMAGE_TAG
WEBHOOK_IMAGE_DIGEST = POD_IDENTITY_WEBHOOK_IMAGE_DIGEST
WEBHOOK_IMAGE = f"public.ecr.aws/eks/amazon-eks-pod-identity-webhook:{WEBHOOK_IMAGE_TAG}@{WEBHOOK_IMAGE_DIGEST}"
NAMESPACE = "pod-identity-webhook"
SERVICE = "pod-identity-webhook"
ANNOTATION_PREFIX = "eks.amazonaws.com"
WEBHOOK_NAME = "pod-identity-webhook.amazonaws.com"
CONTAINER_PORT = 8443
METRICS_PORT = 9999
CERT_DIR = "/etc/webhook/certs"
LABELS = {"app.kubernetes.io/name": SERVICE, "app.kubernetes.io/part-of": "k8s-platform"}


def container_command(region: str) -> list[str]:
    return [
        "/webhook",
        "--in-cluster=false",  # certificates from files (Pulumi-minted), no CSR API
        f"--namespace={NAMESPACE}",
        f"--service-name={SERVICE}",
        f"--annotation-prefix={ANNOTATION_PREFIX}",
        f"--token-audience={STS_AUDIENCE}",
        f"--port={CONTAINER_PORT}",
        f"--metrics-port={METRICS_PORT}",
        f"--tls-cert={CERT_DIR}/tls.crt",
        f"--tls-key={CERT_DIR}/tls.key",
        f"--aws-default-region={region}",
        "--sts-regional-endpoint=true",  # STS through the VPC's regional endpoint, not us-east-1 global
        "--logtostderr",
    ]


def pod_spec(
    region: str, secret_name: str, node_selector: dict[str, str], tolerations: list[dict[str, str]]
) -> dict[str, Any]:
    # v0.6.17 serves /healthz only on the TLS serving port (--port); the metrics port serves /metrics alone.
    probe = {"httpGet": {"path": "/healthz", "port": CONTAINER_PORT, "scheme": "HTTPS"}, "periodSeconds": 10}
    return {
        "serviceAccountName": SERVICE,
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": node_selector,
        "tolerations": tolerations,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": LABELS},
            }
        ],
        "containers": [
            {
                "name": "webhook",
                "image": WEBHOOK_IMAGE,
                "command": container_command(region),
                "ports": [
                    {"name": "https", "containerPort": CONTAINER_PORT},
                    {"name": "metrics", "containerPort": METRICS_PORT},
                ],
                "readinessProbe": probe,
                "livenessProbe": {**probe, "initialDelaySeconds": 10},
                "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "certs", "mountPath": CERT_DIR, "readOnly": True}],
            }
        ],
        "volumes": [{"name": "certs", "secret": {"secretName": secret_name}}],
    }


# True (= call the webhook) unless the pod already mounts a projected token for STS itself.
NOT_SELF_PROJECTED = (
    "!(has(object.spec.volumes) && object.spec.volumes.exists(v, has(v.projected) && has(v.projected.sources) && "
    "v.projected.sources.exists(s, has(s.serviceAccountToken) && has(s.serviceAccountToken.audience) && "
    f"s.serviceAccountToken.audience == '{STS_AUDIENCE}')))"
)


def mutating_webhook(ca_bundle: str) -> dict[str, Any]:
    return {
        "name": WEBHOOK_NAME,
        "admissionReviewVersions": ["v1beta1"],  # what the webhook speaks
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "timeoutSeconds": 10,
        "clientConfig": {
            "service": {"name": SERVICE, "namespace": NAMESPACE, "path": "/mutate", "port": 443},
            "caBundle": ca_bundle,
        },
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [NAMESPACE]},
            ]
        },
        "matchConditions": [{"name": "not-self-projected-sts-token", "expression": NOT_SELF_PROJECTED}],
    }


def network_policy_spec(
    api_server_cidrs: list[str], api_server_port: int, api_service_ip: str, tunnel_cidrs: list[str]
) -> dict[str, Any]:
    """Ingress: the API server to the webhook port only; egress: the API server only (it watches
    ServiceAccounts). The API server runs on the K3s servers' host network: its calls come from the
    servers' VPC addresses, or, to a replica on another server, from that server's flannel
    interface address in the cluster CIDR (`tunnel_cidrs`: the overlay cannot tell it from a pod's
    at CIDR level, so the webhook port, and only it, stays reachable from the overlay). Egress is
    matched after kube-proxy's DNAT (server address:port) and, for policy engines that match
    before it, on the `kubernetes` Service address:443."""
    peers = [{"ipBlock": {"cidr": c}} for c in [*api_server_cidrs, *tunnel_cidrs]]
    return {
        "podSelector": {"matchLabels": LABELS},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": CONTAINER_PORT}]}],
        "egress": [
            {
                "to": [{"ipBlock": {"cidr": c}} for c in api_server_cidrs],
                "ports": [{"protocol": "TCP", "port": api_server_port}],
            },
            {"to": [{"ipBlock": {"cidr": f"{api_service_ip}/32"}}], "ports": [{"protocol": "TCP", "port": 443}]},
        ],
    }


@dataclass(frozen=True)
class PodIdentityWebhookArgs:
    cluster: ClusterHandle
    """The cluster (provider, system scheduling, `ready`): the webhook's pods run on its system capacity."""
    region: str
    """The `AWS_REGION` / regional STS endpoint the webhook injects into IRSA pods."""
    replicas: int = 2
    """Webhook pods (failurePolicy Fail: one must always answer). Default: 2."""
    api_server_cidrs: tuple[str, ...] = ()
    """Where the API server's calls come from and where it listens (`network_policy_spec`). Default
    (empty): no NetworkPolicy (a cluster whose policy engine is off)."""
    api_server_port: int = 6443
    """The port the API server listens on (the NetworkPolicy's egress to it). Default: 6443 (K3s)."""
    api_service_ip: str = "10.43.0.1"
    """The `kubernetes` Service's ClusterIP. Default: K3s's (first address of 10.43.0.0/16)."""
    tunnel_cidrs: tuple[str, ...] = ()
    """The cluster (pod) CIDR: calls to a replica on another server come from that server's flannel
    address in it. Default: none."""

    @classmethod
    def from_stack(
        cls,
        cfg: StackConfig,
        cluster: ClusterHandle,
        *,
        api_server_cidrs: tuple[str, ...] = (),
        api_server_port: int = 6443,
        api_service_ip: str = "10.43.0.1",
        tunnel_cidrs: tuple[str, ...] = (),
    ) -> "PodIdentityWebhookArgs":
        """The control plane knows its own addresses (`api_server_*`, `tunnel_cidrs`); the stack the region."""
        return cls(
            cluster=cluster,
            region=cfg.region,
            api_server_cidrs=tuple(api_server_cidrs),
            api_server_port=api_server_port,
            api_service_ip=api_service_ip,
            tunnel_cidrs=tuple(tunnel_cidrs),
        )


class PodIdentityWebhook(pulumi.ComponentResource):
    webhook_configuration: k8s.admissionregistration.v1.MutatingWebhookConfiguration

    def __init__(self, name: str, args: PodIdentityWebhookArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:identity:PodIdentityWebhook", name, None, opts)
        cluster = args.cluster
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=cluster.k8s_provider, depends_on=list(cluster.ready))
        meta = lambda nm, **kw: k8s.meta.v1.ObjectMetaArgs(name=nm, labels=LABELS, **kw)  # noqa: E731

        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata=meta(NAMESPACE), opts=k8s_opts)
        in_ns = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace]))
        certs = WebhookCertificates(
            f"{name}-certs",
            WebhookCertificatesArgs(
                service_name=SERVICE,
                namespace=NAMESPACE,
                k8s_provider=cluster.k8s_provider,
                labels=LABELS,
                namespace_resource=namespace,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=meta(SERVICE, namespace=NAMESPACE), opts=in_ns)
        # --in-cluster=false: reading ServiceAccounts (their annotations) is all it does.
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-role",
            metadata=meta(f"k8s-platform:{SERVICE}"),
            rules=[{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "watch", "list"]}],
            opts=k8s_opts,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-binding",
            metadata=meta(f"k8s-platform:{SERVICE}"),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role.metadata.name},
            subjects=[{"kind": "ServiceAccount", "name": SERVICE, "namespace": NAMESPACE}],
            opts=k8s_opts,
        )
        spec = pod_spec(
            args.region,
            certs.secret_name,
            cluster.system_scheduling.node_selector,
            cluster.system_scheduling.tolerations,
        )
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta(SERVICE, namespace=NAMESPACE),
            spec={
                "replicas": args.replicas,
                "selector": {"matchLabels": LABELS},
                "template": {"metadata": {"labels": LABELS}, "spec": spec},
            },
            opts=pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(depends_on=[certs])),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta(SERVICE, namespace=NAMESPACE),
            spec={"selector": LABELS, "ports": [{"name": "https", "port": 443, "targetPort": "https"}]},
            opts=in_ns,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=meta(SERVICE, namespace=NAMESPACE),
            spec={"minAvailable": 1, "selector": {"matchLabels": LABELS}},
            opts=in_ns,
        )
        if args.api_server_cidrs:
            k8s.networking.v1.NetworkPolicy(
                f"{name}-network-policy",
                metadata=meta(SERVICE, namespace=NAMESPACE),
                spec=network_policy_spec(
                    list(args.api_server_cidrs), args.api_server_port, args.api_service_ip, list(args.tunnel_cidrs)
                ),
                opts=in_ns,
            )
        # Registered last: the API server calls it (failurePolicy Fail) only once pods can answer.
        self.webhook_configuration = k8s.admissionregistration.v1.MutatingWebhookConfiguration(
            f"{name}-webhook",
            metadata=meta(SERVICE),
            webhooks=[certs.ca_bundle.apply(mutating_webhook)],
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[deployment, service])),
        )
        self.register_outputs({"image": WEBHOOK_IMAGE, "namespace": NAMESPACE})
