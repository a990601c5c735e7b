"""The Pulumi program: config in, components wired in dependency order, outputs out.

`build_stack` is what `pulumi up` runs (through `programs/__main__.py`) and what
`platformctl preview --offline` runs under mocks; there is no second copy of the wiring.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.addons import ClusterAddons, ClusterAddonsArgs
from components.config import (
    ConfigError,
    StackConfig,
    parse_stack_config,
    read_pulumi_config,
)
from components.eks.cluster import EksCluster, EksClusterArgs
from components.identity import NamedIssuer, WorkloadIdentity, WorkloadIdentityArgs
from components.k3s.cluster import K3sCluster
from components.k3s.control_plane import k3s_control_plane
from components.karpenter.controller import K3sNodeJoin, Karpenter, KarpenterArgs
from components.network import Network, NetworkArgs


def build_stack(cfg: StackConfig) -> dict[str, Any]:
    """Register every resource of the stack; return the stack outputs."""
    tags = cfg.resource_tags()
    # One explicit provider: pinned region, and refusal to touch any account but the configured one.
    aws_provider = aws.Provider("aws", region=cfg.region, allowed_account_ids=[cfg.account_id])
    providers = pulumi.ResourceOptions(providers={"aws": aws_provider})

    network = Network("network", NetworkArgs.from_stack(cfg), opts=providers)
    # Control plane -> a complete ClusterHandle (components/core/cluster_handle.py) that everything
    # above builds on; each control-plane package owns its start-up order.
    #   kind eks: EksCluster (components/eks/)
    #   kind k3s: PKI -> OIDC issuer(s) -> servers -> cloud controller -> webhook (components/k3s/control_plane.py)
    # Then, in this order: Karpenter, workload identities, cluster add-ons.
    k3s: K3sCluster | None = None
    named_issuers: tuple[NamedIssuer, ...] = ()  # K3s: the published service-account issuers, active first
    if cfg.cluster.kind == "eks":
        cluster = EksCluster("eks", EksClusterArgs(config=cfg, network=network), opts=providers).handle
    else:
        control_plane = k3s_control_plane(cfg, network, providers, tags)
        k3s, cluster, named_issuers = control_plane.cluster, control_plane.handle, control_plane.issuers

    karpenter: Karpenter | None = None
    if cfg.karpenter.enabled:
        # Karpenter right after the control plane: nodes for everything that follows.
        k3s_join = None
        if k3s is not None:
            k3s_join = K3sNodeJoin(server_url=k3s.server_url, token_parameter_name=k3s.join_token_parameter_name,
                                   join_key_arn=k3s.join_key.arn, k3s_version=cfg.cluster.k3s.version)
        karpenter = Karpenter("karpenter", KarpenterArgs(
            config=cfg.karpenter, cluster=cluster, region=cfg.region, account_id=cfg.account_id,
            is_prod=cfg.is_prod, tags=tags, k3s_join=k3s_join), opts=providers)

    workloads: WorkloadIdentity | None = None
    if cfg.workloads:
        # One declared identity per workload (k8s-platform:workloads): role, ServiceAccount, binding.
        workloads = WorkloadIdentity("workloads", WorkloadIdentityArgs(
            cluster=cluster, workloads=list(cfg.workloads), account_id=cfg.account_id, region=cfg.region,
            tags=tags, issuers=list(named_issuers), protect=cfg.is_prod,
            extra_node_role_names=(karpenter.node_role.name,) if karpenter is not None else ()), opts=providers)

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
