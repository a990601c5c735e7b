"""The Pulumi program: config in, components wired in dependency order, outputs out.

`build_stack` is what `pulumi up` runs (through `programs/__main__.py`) and what
`platformctl preview --offline` runs under mocks; there is no second copy of the wiring.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import ConfigError, StackConfig, parse_stack_config, read_pulumi_config
from components.network import Network, NetworkArgs


def build_stack(cfg: StackConfig) -> dict[str, Any]:
    """Register every resource of the stack; return the stack outputs."""
    tags = cfg.resource_tags()
    # One explicit provider: pinned region, and refusal to touch any account but the configured one.
    aws_provider = aws.Provider("aws", region=cfg.region, allowed_account_ids=[cfg.account_id])
    providers = pulumi.ResourceOptions(providers={"aws": aws_provider})

    network = Network(
        "network",
        NetworkArgs(config=cfg.network, cluster_name=cfg.cluster_name, region=cfg.region,
                    account_id=cfg.account_id, tags=tags),
        opts=providers,
    )
    # Control plane -> a ClusterHandle (components/cluster_handle.py) that everything above builds on.
    #   kind eks: EksCluster (components/eks_*.py)
    #   kind k3s: K3sPki -> OidcIssuer (self-hosted IRSA issuer) -> K3sCluster (components/k3s_*.py)
    # Then, in this order: Karpenter, workload identities, cluster add-ons.

    outputs: dict[str, Any] = {
        "environment": cfg.environment,
        "clusterName": cfg.cluster_name,
        "clusterKind": cfg.cluster.kind,
        "vpcId": network.vpc_id,
        "privateSubnetIds": network.private_subnet_ids,
        "podSubnetIds": network.pod_subnet_ids,
        "publicSubnetIds": network.public_subnet_ids,
    }
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
