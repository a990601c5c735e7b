"""EKS managed add-ons in an explicit order, as real dependencies (no sleeps), plus ENIConfigs.

Before any compute (`EksNetworkingAddons`; the system node group depends on all of it):
  vpc-cni (its IAM role bound through Pod Identity first), eks-pod-identity-agent, kube-proxy,
  then one ENIConfig per zone (the CRD ships with vpc-cni, so ENIConfigs follow it).
After the system node group (`EksWorkloadAddons`):
  coredns and aws-ebs-csi-driver: Deployments that would sit DEGRADED with no node to run on;
  eks-node-monitoring-agent: the node health conditions the node groups' auto repair acts on.

kube-proxy is deliberately *before* compute although it is a node DaemonSet: aws-node reaches the
API server through the `kubernetes` Service IP, which only kube-proxy programs, so nodes that boot
without it stay NotReady and fail managed-node-group health checks (terraform-aws-eks#3525).

IAM for vpc-cni and the EBS CSI driver: `ServiceAccountIdentity` with Pod Identity, the one path
every controller uses (trust policy, association, tags in one place), rather than the add-on's
`podIdentityAssociations` argument; the add-on depends on the identity so the association exists
before the add-on's pods start (Pod Identity injects credentials at pod creation).

Versions come from `pins.ADDON_VERSIONS` (the one pinned table).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.addons import ebs_csi_kms_policy
from components.config import StackConfig
from components.core import iam_documents as iam
from components.core.cluster_handle import ClusterHandle
from components.core.pins import (
    COREDNS,
    EBS_CSI,
    KUBE_PROXY,
    NODE_MONITORING_AGENT,
    POD_IDENTITY_AGENT,
    VPC_CNI,
    addon_versions,
)
from components.identity import ServiceAccountIdentity, ServiceAccountIdentityArgs
from components.network import Network

# Nodes carry this well-known label; vpc-cni picks the ENIConfig named after its value.
ZONE_LABEL = "topology.kubernetes.io/zone"
ENICONFIG_API_VERSION = "crd.k8s.amazonaws.com/v1alpha1"
CNI_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
EBS_CSI_POLICY_ARN = iam.EBS_CSI_DRIVER_POLICY_ARN


def render_vpc_cni_configuration(
    zone_label: str = ZONE_LABEL, pod_eni: bool = False, enforcing_mode: str = "strict"
) -> dict[str, Any]:
    """vpc-cni add-on configuration values: prefix delegation and custom networking by zone; with
    `pod_eni` (a SecurityGroupPolicy is configured) also security groups for pods, in `enforcing_mode`."""
    configuration: dict[str, Any] = {
        "env": {
            # /28 prefixes per ENI slot: ~16x the pod density per node, fewer EC2 API calls.
            "ENABLE_PREFIX_DELEGATION": "true",
            # Keep one spare prefix warm: fast pod starts without hoarding the pod subnet.
            "WARM_PREFIX_TARGET": "1",
            # Pods get addresses from the pod CIDR subnets named by ENIConfigs, not the node subnet.
            "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "true",
            "ENI_CONFIG_LABEL_DEF": zone_label,
        }
    }
    if pod_eni:
        # aws-node labels trunk-capable nodes and the VPC resource controller attaches their trunk ENI;
        # selected pods get branch ENIs with the policy's groups. Strict (the default, stated): only the
        # policy's groups apply to the pod's traffic, also to other pods on the same node; standard lets
        # node-local traffic (the Pod Identity agent) through.
        configuration["env"]["ENABLE_POD_ENI"] = "true"
        configuration["env"]["POD_SECURITY_GROUP_ENFORCING_MODE"] = enforcing_mode
        # Kubelet TCP probes to branch-ENI pods fail with early demux on (EKS user guide, security
        # groups for pods); set in the aws-vpc-cni-init container.
        configuration["init"] = {"env": {"DISABLE_TCP_EARLY_DEMUX": "true"}}
    return configuration


def render_eni_config_spec(subnet_id: str, security_group_ids: list[str]) -> dict[str, Any]:
    """ENIConfig spec: secondary ENIs (pod addresses) go to this zone's pod subnet with these SGs."""
    return {"subnet": subnet_id, "securityGroups": list(security_group_ids)}


def _addon(
    name: str,
    parent: pulumi.Resource,
    cluster: aws.eks.Cluster,
    addon_name: str,
    version: str,
    cfg: StackConfig,
    depends_on: list[pulumi.Resource],
    configuration: dict[str, Any] | None = None,
) -> aws.eks.Addon:
    return aws.eks.Addon(
        name,
        cluster_name=cluster.name,
        addon_name=addon_name,
        addon_version=version,
        # Nothing is self-managed (bootstrapSelfManagedAddons: false), so creation may take ownership.
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update=cfg.cluster.eks.resolve_conflicts_on_update,
        configuration_values=json.dumps(configuration, sort_keys=True) if configuration else None,
        tags=cfg.resource_tags(),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on),
    )


def _identity(
    name: str,
    parent: pulumi.Resource,
    handle: ClusterHandle,
    cfg: StackConfig,
    service_account: str,
    policy_arn: str,
    inline_policy_json: str | None = None,
) -> ServiceAccountIdentity:
    return ServiceAccountIdentity(
        name,
        ServiceAccountIdentityArgs(
            cluster=handle,
            namespace="kube-system",
            service_account=service_account,
            method="pod-identity",
            account_id=cfg.account_id,
            tags=cfg.resource_tags(),
            managed_policy_arns=[policy_arn],
            inline_policy_json=inline_policy_json,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True)
class EksNetworkingAddonsArgs:
    handle: ClusterHandle
    """The cluster, before any node exists."""
    config: StackConfig
    """The stack: `cluster.eks` (version, add-on overrides, prefix delegation) and the environment."""
    network: Network
    """Pod subnets per zone, for the ENIConfigs of custom networking."""

    @classmethod
    def from_stack(cls, cfg: StackConfig, handle: ClusterHandle, network: Network) -> "EksNetworkingAddonsArgs":
        return cls(handle=handle, config=cfg, network=network)


class EksNetworkingAddons(pulumi.ComponentResource):
    """Everything the first node needs: CNI (+ its identity), Pod Identity agent, kube-proxy, ENIConfigs."""

    addons: dict[str, aws.eks.Addon]  # by EKS add-on name (the stack exports their versions)
    before_compute: list[pulumi.Resource]
    vpc_cni: aws.eks.Addon
    eni_configs: dict[str, k8s.apiextensions.CustomResource]  # by availability zone

    def __init__(self, name: str, args: EksNetworkingAddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:eks:EksNetworkingAddons", name, None, opts)
        handle, cfg, network = args.handle, args.config, args.network
        assert handle.eks_cluster is not None
        cluster, versions = handle.eks_cluster, addon_versions(cfg.cluster.eks.version, cfg.cluster.eks.addon_versions)

        cni_identity = _identity(f"{name}-vpc-cni", self, handle, cfg, "aws-node", CNI_POLICY_ARN)
        pod_identity_agent = _addon(
            f"{name}-{POD_IDENTITY_AGENT}",
            self,
            cluster,
            POD_IDENTITY_AGENT,
            versions[POD_IDENTITY_AGENT],
            cfg,
            depends_on=[],
        )
        self.vpc_cni = _addon(
            f"{name}-{VPC_CNI}",
            self,
            cluster,
            VPC_CNI,
            versions[VPC_CNI],
            cfg,
            depends_on=[cni_identity, cni_identity.role, pod_identity_agent],
            configuration=render_vpc_cni_configuration(
                pod_eni=bool(cfg.cluster.eks.security_group_policies),
                enforcing_mode=cfg.cluster.eks.pod_security_group_enforcing_mode,
            ),
        )
        kube_proxy = _addon(f"{name}-{KUBE_PROXY}", self, cluster, KUBE_PROXY, versions[KUBE_PROXY], cfg, depends_on=[])
        self.eni_configs = {}
        for az in network.azs:
            self.eni_configs[az] = k8s.apiextensions.CustomResource(
                f"{name}-eniconfig-{az}",
                api_version=ENICONFIG_API_VERSION,
                kind="ENIConfig",
                metadata={"name": az},
                spec=pulumi.Output.all(network.pod_subnet_ids[az], handle.node_security_group_id).apply(
                    lambda a: render_eni_config_spec(a[0], [a[1]])
                ),
                # The ENIConfig CRD is installed by the vpc-cni add-on.
                opts=pulumi.ResourceOptions(parent=self, provider=handle.k8s_provider, depends_on=[self.vpc_cni]),
            )
        self.before_compute = [self.vpc_cni, pod_identity_agent, kube_proxy, *self.eni_configs.values()]
        self.addons = {POD_IDENTITY_AGENT: pod_identity_agent, VPC_CNI: self.vpc_cni, KUBE_PROXY: kube_proxy}
        self.register_outputs(
            {"addons": [VPC_CNI, POD_IDENTITY_AGENT, KUBE_PROXY], "eniConfigs": list(self.eni_configs)}
        )


@dataclass(frozen=True)
class EksWorkloadAddonsArgs:
    handle: ClusterHandle
    """The cluster with its system node group."""
    config: StackConfig
    """The stack: `cluster.eks` (version, add-on overrides) and `addons.ebsCsi`."""
    after: tuple[pulumi.Resource, ...]
    """What must exist first (the system node group: CoreDNS and the EBS CSI controller need a node)."""

    @classmethod
    def from_stack(
        cls, cfg: StackConfig, handle: ClusterHandle, after: tuple[pulumi.Resource, ...]
    ) -> "EksWorkloadAddonsArgs":
        return cls(handle=handle, config=cfg, after=tuple(after))


class EksWorkloadAddons(pulumi.ComponentResource):
    """Add-ons whose Deployments need a node: created after the system node group."""

    addons: dict[str, aws.eks.Addon]  # by EKS add-on name (the stack exports their versions)
    coredns: aws.eks.Addon
    node_monitoring_agent: aws.eks.Addon  # node health conditions for the node groups' auto repair
    ebs_csi: aws.eks.Addon | None

    def __init__(self, name: str, args: EksWorkloadAddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:eks:EksWorkloadAddons", name, None, opts)
        handle, cfg, after = args.handle, args.config, list(args.after)
        assert handle.eks_cluster is not None
        cluster, versions = handle.eks_cluster, addon_versions(cfg.cluster.eks.version, cfg.cluster.eks.addon_versions)
        self.coredns = _addon(f"{name}-{COREDNS}", self, cluster, COREDNS, versions[COREDNS], cfg, depends_on=after)
        # A DaemonSet on every node (it tolerates every taint by default, the system nodes' included); no IAM.
        self.node_monitoring_agent = _addon(
            f"{name}-{NODE_MONITORING_AGENT}",
            self,
            cluster,
            NODE_MONITORING_AGENT,
            versions[NODE_MONITORING_AGENT],
            cfg,
            depends_on=after,
        )
        # Switchable (`addons.ebsCsi.enabled`); a customer-managed volume key adds its grant policy.
        self.ebs_csi: aws.eks.Addon | None = None
        if cfg.addons.ebs_csi.enabled:
            kms_key = cfg.addons.ebs_csi.kms_key_arn
            ebs_identity = _identity(
                f"{name}-ebs-csi",
                self,
                handle,
                cfg,
                "ebs-csi-controller-sa",
                EBS_CSI_POLICY_ARN,
                inline_policy_json=iam.to_json(ebs_csi_kms_policy(kms_key)) if kms_key else None,
            )
            self.ebs_csi = _addon(
                f"{name}-{EBS_CSI}",
                self,
                cluster,
                EBS_CSI,
                versions[EBS_CSI],
                cfg,
                depends_on=[*after, ebs_identity, ebs_identity.role],
            )
        self.addons = {
            COREDNS: self.coredns,
            NODE_MONITORING_AGENT: self.node_monitoring_agent,
            **({EBS_CSI: self.ebs_csi} if self.ebs_csi else {}),
        }
        self.register_outputs({"addons": [COREDNS, NODE_MONITORING_AGENT, *([EBS_CSI] if self.ebs_csi else [])]})
