"""The K3s control plane in its start-up order: PKI -> OIDC issuer(s) -> servers -> AWS cloud
controller -> pod-identity webhook.

The order is the control plane's own concern, so it lives here, not in the program:
- the PKI first: the service-account signing key is what the issuers publish;
- the issuers before the servers: the active issuer's URL (derived from config, never read back
  from a server) is a kube-apiserver flag, and its JWKS comes from the Pulumi-minted public key;
- the cloud controller first on the servers: K3s nodes stay `uninitialized` (nothing schedules,
  not even the webhook) until it has initialised them;
- the webhook before anything that runs IRSA pods: Karpenter, add-ons and workloads all wait on
  the returned handle's `ready`.

No ComponentResource is added here: every resource keeps the URN it had when the program
assembled this sequence itself.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

import pulumi

from components.addons import (
    CloudControllerManager,
    CloudControllerManagerArgs,
    PodIdentityWebhook,
    PodIdentityWebhookArgs,
)
from components.config import StackConfig
from components.config.identity_rules import effective_issuers
from components.config.k3s import K3S_INTERNAL_RANGES
from components.core.cluster_handle import ClusterHandle
from components.identity import NamedIssuer, OidcIssuer, OidcIssuerArgs
from components.k3s.access_logs import AccessLogBucket, AccessLogBucketArgs
from components.k3s.cluster import API_PORT, K3sCluster, K3sClusterArgs
from components.k3s.pki import K3sPki, K3sPkiArgs
from components.network import Network


@dataclass(frozen=True)
class K3sControlPlane:
    cluster: K3sCluster
    # Complete: standby issuers, the agents' role, and the cloud controller and webhook in `ready`.
    handle: ClusterHandle
    # The published service-account issuers, active first.
    issuers: tuple[NamedIssuer, ...]


def k3s_control_plane(cfg: StackConfig, network: Network, providers: pulumi.ResourceOptions) -> K3sControlPlane:
    protect = cfg.safeguards_in_force.protect_stateful_resources
    # Protected where the environment protects stateful resources (inherited by every key and CA):
    # the service-account key is what every published JWKS and every IRSA token depends on; a
    # replaced key breaks all IRSA pods at once.
    pki = K3sPki(
        "k3s-pki",
        K3sPkiArgs.from_stack(cfg),
        opts=pulumi.ResourceOptions.merge(providers, pulumi.ResourceOptions(protect=protect)),
    )
    issuers = [
        OidcIssuer(
            f"oidc-{issuer.name}",
            OidcIssuerArgs.from_stack(cfg, issuer, public_key_pems=[pki.service_account_public_key_pem]),
            opts=providers,
        )
        for issuer in effective_issuers(cfg)
    ]
    active = issuers[0]
    k3s = K3sCluster(
        "k3s",
        K3sClusterArgs.from_stack(
            cfg,
            network,
            pki,
            active.issuer_url,
            service_account_jwks_uri=active.jwks_url,
            extra_service_account_issuers=[i.issuer_url for i in issuers[1:]],
            oidc_provider_arn=active.oidc_provider_arn,
        ),
        opts=providers,
    )
    # Who read or wrote the snapshots (every Secret) and the issuer documents (workload identity).
    access_logs = AccessLogBucket("access-logs", AccessLogBucketArgs.from_stack(cfg), opts=providers)
    for issuer, component_name in zip(issuers, [f"oidc-{i.name}" for i in effective_issuers(cfg)], strict=True):
        access_logs.log(f"{component_name}-access-logging", issuer.bucket, issuer.bucket_name, parent=issuer)
    if k3s.snapshot_bucket is not None:  # embedded etcd only
        access_logs.log(
            "k3s-etcd-snapshots-access-logging", k3s.snapshot_bucket, k3s.snapshot_bucket.bucket, parent=k3s
        )
    # IRSA roles also trust the standby issuers, so promoting one to active breaks no pod.
    handle = dataclasses.replace(
        k3s.handle, standby_oidc_issuers=tuple((i.oidc_provider_arn, i.issuer_url) for i in issuers[1:])
    )
    if cfg.addons.cloud_controller_manager_enabled("k3s"):
        ccm = CloudControllerManager(
            "cloud-controller-manager",
            CloudControllerManagerArgs.from_stack(
                cfg, handle, vpc_id=network.vpc_id, subnet_id=network.private_subnet_ids[network.azs[0]]
            ),
            opts=providers,
        )
        handle = dataclasses.replace(handle, ready=(*handle.ready, ccm))
    cluster_cidr, service_cidr = K3S_INTERNAL_RANGES
    webhook = PodIdentityWebhook(
        "pod-identity-webhook",
        PodIdentityWebhookArgs.from_stack(
            cfg,
            handle,
            api_server_cidrs=(network.vpc_cidr,),
            api_server_port=API_PORT,
            api_service_ip=str(ipaddress.ip_network(service_cidr)[1]),
            tunnel_cidrs=(cluster_cidr,),
        ),
        opts=providers,
    )
    handle = dataclasses.replace(handle, ready=(*handle.ready, webhook))
    named = tuple(NamedIssuer(i.issuer_name, i.oidc_provider_arn, i.issuer_url) for i in issuers)
    return K3sControlPlane(cluster=k3s, handle=handle, issuers=named)
