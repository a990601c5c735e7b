"""The Pulumi program: config in, components wired in dependency order, outputs out.

`build_stack` is what `pulumi up` runs (through `programs/__main__.py`) and what
`platformctl preview --offline` runs under mocks; there is no second copy of the wiring.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.addons import ClusterAddons, ClusterAddonsArgs, EfsStorage, EfsStorageArgs
from components.config import (
    EXPIRY_TAG,
    ConfigError,
    StackConfig,
    parse_stack_config,
    read_pulumi_config,
    uses_auto_mode,
)
from components.config.k3s_rules import agents_version
from components.core.cluster_handle import ClusterHandle
from components.core.eks_support_calendar import support_problem, support_warning
from components.eks.access_instance import EKS_API_PORT, AccessInstance, AccessInstanceArgs
from components.eks.auto_mode import node_role_name as auto_mode_node_role_name
from components.eks.cluster import EksCluster, EksClusterArgs
from components.eks.fargate import FargateProfiles, FargateProfilesArgs
from components.eks.pod_security_groups import PodSecurityGroups, PodSecurityGroupsArgs
from components.identity import NamedIssuer, WorkloadIdentity, WorkloadIdentityArgs
from components.k3s.cluster import API_PORT as K3S_API_PORT
from components.k3s.cluster import K3sCluster
from components.k3s.control_plane import k3s_control_plane
from components.karpenter.auto_mode import AutoModeNodePools, AutoModeNodePoolsArgs
from components.karpenter.controller import K3sNodeJoin, Karpenter, KarpenterArgs
from components.network import Network, NetworkArgs
from components.network.api_port_forward import ApiPortForward, ApiPortForwardArgs


def build_stack(cfg: StackConfig) -> dict[str, Any]:
    """Register every resource of the stack; return the stack outputs."""
    # One explicit provider: pinned region, and refusal to touch any account but the configured one.
    # An ephemeral stack's expiry is also the provider's default tag: it reaches a resource that a
    # component forgot to tag (every component tags with `cfg.resource_tags()`, which carries it too).
    expiry = {"default_tags": aws.ProviderDefaultTagsArgs(tags=expiry_tags(cfg))} if cfg.ci is not None else {}
    aws_provider = aws.Provider("aws", region=cfg.region, allowed_account_ids=[cfg.account_id], **expiry)
    providers = pulumi.ResourceOptions(providers={"aws": aws_provider})

    network = Network("network", NetworkArgs.from_stack(cfg), opts=providers)
    # Control plane -> a complete ClusterHandle (components/core/cluster_handle.py) that everything
    # above builds on; each control-plane package owns its start-up order.
    #   kind eks: EksCluster (components/eks/)
    #   kind k3s: PKI -> OIDC issuer(s) -> servers -> cloud controller -> webhook (components/k3s/control_plane.py)
    # Then, in this order: Karpenter, workload identities, cluster add-ons.
    k3s: K3sCluster | None = None
    named_issuers: tuple[NamedIssuer, ...] = ()  # K3s: the published service-account issuers, active first
    eks: EksCluster | None = None
    if cfg.cluster.kind == "eks":
        eks_cfg = cfg.cluster.eks
        support = support_warning(eks_cfg.version, eks_cfg.upgrade_policy.support_type)
        if eks_cfg.deployed_version == eks_cfg.version:  # running already: what a new cluster is refused
            support = support_problem(eks_cfg.version, eks_cfg.upgrade_policy.support_type) or support
        if support:
            pulumi.log.warn(support)  # preview and up show it; the offline preview prints it too
        eks = EksCluster("eks", EksClusterArgs.from_stack(cfg, network), opts=providers)
        cluster = eks.handle
    else:
        control_plane = k3s_control_plane(cfg, network, providers)
        k3s, cluster, named_issuers = control_plane.cluster, control_plane.handle, control_plane.issuers

    karpenter: Karpenter | None = None
    if eks is not None and eks.auto_mode_node_role is not None:
        # EKS Auto Mode: AWS runs Karpenter; the stack's NodeClasses and NodePools only (none is fine
        # with built-in pools).
        if cfg.karpenter.enabled and cfg.karpenter.node_pools:
            AutoModeNodePools(
                "karpenter",
                AutoModeNodePoolsArgs.from_stack(
                    cfg, cluster, eks.auto_mode_node_role, auto_mode_node_role_name(cfg.cluster_name)
                ),
                opts=providers,
            )
    elif cfg.karpenter.enabled:
        # Karpenter right after the control plane: nodes for everything that follows.
        k3s_join = None
        if k3s is not None:
            k3s_join = K3sNodeJoin(
                server_url=k3s.server_url,
                token_parameter_name=k3s.join_token_parameter_name,
                join_key_arn=k3s.join_key.arn,
                k3s_version=agents_version(cfg),  # Karpenter nodes are agents: they follow the agents' release
                registry_mirrors=k3s.registry_mirrors,
            )
        karpenter = Karpenter("karpenter", KarpenterArgs.from_stack(cfg, cluster, k3s_join=k3s_join), opts=providers)

    workloads: WorkloadIdentity | None = None
    if cfg.workloads:
        # One declared identity per workload (k8s-platform:workloads): role, ServiceAccount, binding.
        workloads = WorkloadIdentity(
            "workloads",
            WorkloadIdentityArgs.from_stack(
                cfg,
                cluster,
                issuers=named_issuers,
                extra_node_role_names=(karpenter.node_role.name,) if karpenter is not None else (),
            ),
            opts=providers,
        )

    # Cluster add-ons last: controllers on the system capacity the control plane made ready.
    ClusterAddons("addons", ClusterAddonsArgs.from_stack(cfg, cluster, network.vpc_id), opts=providers)
    data_plane = _optional_data_plane(cfg, network, cluster, workloads, providers)

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
    if eks is not None:
        # What `platformctl upgrade` reads: the deployed minor, each add-on's build, the system nodes' minor.
        outputs["kubernetesVersion"] = eks.cluster.version
        outputs["addonVersions"] = {name: addon.addon_version for name, addon in eks.addons.items()}
        if eks.system_nodes is not None:  # None under EKS Auto Mode (AWS runs the nodes)
            outputs["systemNodeGroup"] = {
                "name": eks.system_nodes.node_group.node_group_name,
                "kubernetesVersion": eks.system_nodes.node_group.version,
            }
    if named_issuers:
        outputs["oidcIssuers"] = {
            i.name: {"issuerUrl": i.issuer_url, "oidcProviderArn": i.provider_arn} for i in named_issuers
        }
    if workloads is not None:
        outputs["workloadIdentities"] = workloads.identities
    api_access = _api_access(cfg, network, eks, k3s, providers)
    if api_access is not None:
        outputs["apiAccess"] = api_access  # what `platformctl connect` forwards through
    if k3s is not None:
        # What `platformctl doctor` checks on K3s: etcd snapshots and the spot-drain dead letters.
        if k3s.snapshot_bucket is not None:  # embedded etcd (an external datastore is backed up by RDS)
            outputs["etcdSnapshotBucket"] = k3s.snapshot_bucket.bucket
        outputs["nodeDrainerDeadLetterQueueUrl"] = k3s.interruption.dead_letter_queue.id
        # The servers' release: what the next run's `cluster.k3s.deployedVersion` is set to.
        outputs["k3sVersion"] = cfg.cluster.k3s.version
    if karpenter is not None:
        outputs["karpenterInterruptionQueue"] = karpenter.interruption.queue_name
        outputs["karpenterNodeRoleArn"] = karpenter.node_role.arn
    outputs.update(data_plane)
    if uses_auto_mode(cfg) and eks is not None and eks.auto_mode_node_role is not None:
        outputs["computeMode"] = "auto-mode"
        outputs["autoModeNodeRoleArn"] = eks.auto_mode_node_role.arn
    return outputs


def _optional_data_plane(
    cfg: StackConfig,
    network: Network,
    cluster: ClusterHandle,
    workloads: WorkloadIdentity | None,
    providers: pulumi.ResourceOptions,
) -> dict[str, Any]:
    """EFS (both kinds), security groups for pods and Fargate profiles (EKS), each only when configured;
    returns their stack outputs."""
    outputs: dict[str, Any] = {}
    if cfg.addons.efs_csi.enabled:
        efs = EfsStorage(
            "efs", EfsStorageArgs.from_stack(cfg, cluster, network.vpc_id, network.private_subnet_ids), opts=providers
        )
        outputs["efs"] = {
            "fileSystemId": efs.file_system.id,
            "storageClass": cfg.addons.efs_csi.storage_class_name,
            "securityGroupId": efs.security_group.id,
        }
    if cfg.cluster.kind != "eks":
        return outputs
    if cfg.cluster.eks.security_group_policies:
        # After the workload identities: their namespaces exist before the policies placed in them.
        pod_groups = PodSecurityGroups(
            "pod-security-groups",
            PodSecurityGroupsArgs.from_stack(
                cfg, cluster, network.vpc_id, after=(workloads,) if workloads is not None else ()
            ),
            opts=providers,
        )
        outputs["securityGroupPolicies"] = pod_groups.group_ids
    if cfg.cluster.eks.fargate_profiles:
        fargate = FargateProfiles(
            "fargate",
            FargateProfilesArgs.from_stack(cfg, cluster, list(network.private_subnet_ids.values())),
            opts=providers,
        )
        outputs["fargate"] = {
            "podExecutionRoleArn": fargate.pod_execution_role.arn,
            "profiles": sorted(fargate.profiles),
        }
    return outputs


def expiry_tags(cfg: StackConfig) -> dict[str, str]:
    """The tag `k8s-platform/expires-at` of an ephemeral (ci) stack; empty otherwise."""
    return {EXPIRY_TAG: cfg.ci.expires_at} if cfg.ci is not None else {}


def _api_access(
    cfg: StackConfig,
    network: Network,
    eks: EksCluster | None,
    k3s: K3sCluster | None,
    providers: pulumi.ResourceOptions,
) -> dict[str, Any] | None:
    """The SSM port-forwarding target of the private API: a K3s server, or the EKS access instance."""
    target: dict[str, Any]
    if k3s is not None:
        api_host, api_port = k3s.api_host, K3S_API_PORT
        target = {"targetKind": "autoScalingGroup", "autoScalingGroupNames": list(k3s.server_asg_names)}
    elif eks is not None and cfg.cluster.eks.access_instance.enabled:
        instance = AccessInstance(
            "eks-access-instance",
            AccessInstanceArgs.from_stack(
                cfg,
                vpc_id=network.vpc_id,
                subnet_id=network.private_subnet_ids[network.azs[0]],
                cluster_security_group_id=eks.cluster.vpc_config.cluster_security_group_id,
            ),
            opts=providers,
        )
        api_host = eks.cluster.endpoint.apply(lambda url: url.removeprefix("https://").split("/", 1)[0])
        api_port = EKS_API_PORT
        target = {"targetKind": "instance", "instanceId": instance.instance_id}
    else:
        return None
    forward = ApiPortForward(
        "api-port-forward",
        ApiPortForwardArgs.from_stack(cfg, api_host=api_host, api_port=api_port),
        opts=providers,
    )
    return {
        **target,
        "remoteHost": api_host,
        "remotePort": api_port,
        "tlsServerName": api_host,
        "region": cfg.region,
        "ssmDocumentName": forward.document_name,
        "operatorPolicyArn": forward.operator_policy_arn,
    }


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
