"""What a control-plane component (EKS or K3s) hands to everything built on top of it.

Karpenter, add-ons and workload identity depend on this shape only, never on which control plane
produced it, so each of them works on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class SystemScheduling:
    """Where controllers run: the EKS system node group or the K3s servers."""

    node_selector: dict[str, str]
    tolerations: list[dict[str, str]]


@dataclass(frozen=True)
class ClusterHandle:
    """Complete when the control-plane component that made it returns; never mutated afterwards
    (a later stage that needs more, e.g. the K3s start-up order, derives a new handle with
    `dataclasses.replace`)."""

    kind: Literal["eks", "k3s"]
    name: str
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]  # a Pulumi secret
    k8s_provider: k8s.Provider
    node_security_group_id: pulumi.Output[str]
    system_scheduling: SystemScheduling
    # IRSA: the IAM OIDC provider and its issuer URL (https://...). EKS: the cluster's own issuer;
    # K3s: the self-hosted issuer. None until one exists.
    oidc_provider_arn: pulumi.Output[str] | None = None
    oidc_issuer_url: pulumi.Output[str] | None = None
    # EKS only: the cluster resource (Pod Identity associations, access entries, add-ons).
    eks_cluster: aws.eks.Cluster | None = None
    # Resources that must exist before anything is scheduled (system nodes / K3s servers ready).
    ready: tuple[pulumi.Resource, ...] = ()
    # K3s standby issuers as (oidc_provider_arn, issuer_url): same signing key, accepted by the API
    # server; IRSA roles trust them too, so promoting one to active breaks no pod (workload identity).
    standby_oidc_issuers: tuple[tuple[pulumi.Input[str], pulumi.Input[str]], ...] = ()
    # IAM roles of the nodes workloads run on (K3s agents, Karpenter's nodes; EKS system nodes are
    # tainted for controllers): where `instance-profile` workload permissions are attached.
    workload_node_role_names: tuple[pulumi.Input[str], ...] = ()

    @property
    def supports_pod_identity(self) -> bool:
        return self.kind == "eks"
