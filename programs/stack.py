"""The Pulumi program: config in, components wired in dependency order, outputs out.

`build_stack` is what `pulumi up` runs (through `programs/__main__.py`) and what
`platformctl preview --offline` runs under mocks; there is no second copy of the wiring.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.cloud_controller_manager import (
    CloudControllerManager,
    CloudControllerManagerArgs,
)
from components.cluster_addons import ClusterAddons, ClusterAddonsArgs
from components.config import (
    ConfigError,
    StackConfig,
    parse_stack_config,
    read_pulumi_config,
)
from components.eks_cluster import EksCluster, EksClusterArgs
from components.identity_rules import effective_issuers
from components.k3s_cluster import K3sCluster, K3sClusterArgs
from components.k3s_pki import K3sPki
from components.karpenter import K3sNodeJoin, Karpenter, KarpenterArgs
from components.network import Network, NetworkArgs
from components.oidc_issuer import OidcIssuer, OidcIssuerArgs
from components.pod_identity_webhook import PodIdentityWebhook, PodIdentityWebhookArgs
from components.workload_identity import (
    NamedIssuer,
    WorkloadIdentity,
    WorkloadIdentityArgs,
)


def build_stack(cfg: StackConfig) -> dict[str, Any]:
    """Register every resource of the stack; return the stack outputs."""
    tags = cfg.resource_tags()
    # One explicit provider: pinned region, and refusal to touch any account but the configured one.
    aws_provider = aws.Provider("aws", region=cfg.region, allowed_account_ids=[cfg.account_id])
    providers = pulumi.ResourceOptions(providers={"aws": aws_provider})

    network = Network(
        "network",
        NetworkArgs(config=cfg.network, cluster_name=cfg.cluster_name, region=cfg.region,
                    account_id=cfg.account_id, tags=tags, protect=cfg.safeguards_in_force.protect_stateful_resources),
        opts=providers,
    )
    # Control plane -> a ClusterHandle (components/cluster_handle.py) that everything above builds on.
    #   kind eks: EksCluster (components/eks_*.py)
    #   kind k3s: K3sPki -> OidcIssuer (self-hosted IRSA issuer) -> K3sCluster (components/k3s_*.py)
    # Then, in this order: Karpenter, workload identities, cluster add-ons.
    k3s: K3sCluster | None = None
    named_issuers: list[NamedIssuer] = []  # K3s: the published service-account issuers, active first
    if cfg.cluster.kind == "eks":
        cluster = EksCluster("eks", EksClusterArgs(config=cfg, network=network), opts=providers).handle
    else:
        k3s, named_issuers = _k3s_control_plane(cfg, network, providers, tags)
        cluster = k3s.handle

    karpenter: Karpenter | None = None
    if cfg.karpenter.enabled:
        # Karpenter right after the control plane: nodes for everything that follows.
        k3s_join = None
        if k3s is not None:
            k3s_join = K3sNodeJoin(server_url=k3s.server_url, token_parameter_name=k3s.join_token_parameter_name,
                                   join_key_arn=k3s.join_key.arn, k3s_version=cfg.cluster.k3s.version)
        karpenter = Karpenter("karpenter", KarpenterArgs(
            config=cfg.karpenter, cluster=cluster, region=cfg.region, account_id=cfg.account_id,
            controller_replicas=cfg.safeguards_in_force.controller_replicas, tags=tags,
            k3s_join=k3s_join), opts=providers)
        cluster.workload_node_role_names.append(karpenter.node_role.name)

    workloads: WorkloadIdentity | None = None
    if cfg.workloads:
        # One declared identity per workload (k8s-platform:workloads): role, ServiceAccount, binding.
        workloads = WorkloadIdentity("workloads", WorkloadIdentityArgs(
            cluster=cluster, workloads=list(cfg.workloads), account_id=cfg.account_id, region=cfg.region,
            tags=tags, issuers=named_issuers, protect=cfg.safeguards_in_force.protect_stateful_resources), opts=providers)

    # Cluster add-ons last: controllers on the system capacity the control plane made ready.
    ClusterAddons("addons", ClusterAddonsArgs(config=cfg, cluster=cluster, vpc_id=network.vpc_id), opts=providers)

    outputs: dict[str, Any] = {
        "environment": cfg.environment,
        "clusterName": cfg.cluster_name,
        "clusterKind": cfg.cluster.kind,
        "vpcId": network.vpc_id,
        "privateSubnetIds": network.private_subnet_ids,
        "podSubnetIds": network.pod_subnet_ids,
        "publicSubnetIds": network.public_subnet_ids,
        "clusterEndpoint": cluster.endpoint,
        "kubeconfig": cluster.kubeconfig,  # a Pulumi secret
        "oidcIssuerUrl": cluster.oidc_issuer_url,
    }
    if named_issuers:
        outputs["oidcIssuers"] = {i.name: {"issuerUrl": i.issuer_url, "oidcProviderArn": i.provider_arn}
                                  for i in named_issuers}
    if workloads is not None:
        outputs["workloadIdentities"] = workloads.identities
    if karpenter is not None:
        outputs["karpenterInterruptionQueue"] = karpenter.interruption.queue_name
        outputs["karpenterNodeRoleArn"] = karpenter.node_role.arn
    return outputs


def _k3s_control_plane(cfg: StackConfig, network: Network, providers: pulumi.ResourceOptions,
                       tags: dict[str, str]) -> tuple[K3sCluster, list[NamedIssuer]]:
    """K3sPki -> OidcIssuer(s) -> K3sCluster, then what must run before any other pod (CCM, webhook)."""
    # Protected where the environment protects stateful resources (inherited by every key and CA): the service-account key is what every
    # published JWKS and every IRSA token depends on; a replaced key breaks all IRSA pods at once.
    k3s_pki = K3sPki("k3s-pki", cfg.cluster_name,
                     opts=pulumi.ResourceOptions.merge(providers, pulumi.ResourceOptions(protect=cfg.safeguards_in_force.protect_stateful_resources)))
    # Issuers before servers: the active issuer's URL (derived from config, never from servers)
    # goes into kube-apiserver; its JWKS is computed from the Pulumi-minted public key.
    issuers = [OidcIssuer(f"oidc-{issuer.name}", OidcIssuerArgs(
        config=issuer, cluster_name=cfg.cluster_name, account_id=cfg.account_id, region=cfg.region,
        public_key_pems=[k3s_pki.service_account_public_key_pem], tags=tags, protect=cfg.safeguards_in_force.protect_stateful_resources),
        opts=providers) for issuer in effective_issuers(cfg)]
    active = issuers[0]
    k3s = K3sCluster("k3s", K3sClusterArgs.from_stack(
        cfg, network, k3s_pki, active.issuer_url, service_account_jwks_uri=active.jwks_url,
        extra_service_account_issuers=[i.issuer_url for i in issuers[1:]],
        oidc_provider_arn=active.oidc_provider_arn), opts=providers)
    cluster = k3s.handle
    # IRSA roles also trust the standby issuers; instance-profile workloads land on the agents' role.
    cluster.standby_oidc_issuers = [(i.oidc_provider_arn, i.issuer_url) for i in issuers[1:]]
    cluster.workload_node_role_names.append(k3s.agent_role.name)
    named_issuers = [NamedIssuer(i.issuer_name, i.oidc_provider_arn, i.issuer_url) for i in issuers]
    if cfg.addons.cloud_controller_manager_enabled("k3s"):
        # First on the servers: K3s nodes stay `uninitialized` (nothing schedules, not even the
        # webhook) until the AWS cloud controller has initialised them.
        cluster.ready.append(CloudControllerManager("cloud-controller-manager", CloudControllerManagerArgs(
            config=cfg, cluster=cluster, vpc_id=network.vpc_id,
            subnet_id=network.private_subnet_ids[network.azs[0]]), opts=providers))
    # The webhook before anything that runs IRSA pods (Karpenter, add-ons, workloads): they wait on `ready`.
    cluster.ready.append(PodIdentityWebhook("pod-identity-webhook", PodIdentityWebhookArgs(
        cluster=cluster, region=cfg.region), opts=providers))
    return k3s, named_issuers


def load_config() -> StackConfig:
    """Parse the running program's config; a bad value ends the program with its messages, no traceback."""
    try:
        return parse_stack_config(read_pulumi_config())
    except ConfigError as exc:
        raise pulumi.RunError("invalid stack configuration:\n  " + "\n  ".join(exc.problems)) from None


def main() -> None:
    cfg = load_config()
    for key, value in build_stack(cfg).items():
        pulumi.export(key, value)
