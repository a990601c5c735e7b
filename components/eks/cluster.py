"""`EksCluster`: the EKS control plane and everything the platform layers on top of it need.

Order of creation (each step a real dependency, visible in the plan):
1. cluster IAM role, KMS key (secrets envelope encryption, rotation on), control-plane log group,
   node security group;
2. the cluster: API access mode (no aws-auth-only mode), no creator admin, no self-managed add-ons,
   private endpoint, upgrade policy; IAM OIDC provider for IRSA;
3. access entries (admins first); the Kubernetes provider waits for the admin grants, because the
   deployment itself talks to the API server as one of those admins;
4. networking add-ons + ENIConfigs (`EksNetworkingAddons`) -> system node group (`EksSystemNodes`)
   -> workload add-ons (`EksWorkloadAddons`); under `computeMode: auto-mode` none of these: AWS runs
   them, and step 1 adds Auto Mode's cluster-role policies and node role (`auto_mode.py`).
The result is a `ClusterHandle` (`.handle`) for Karpenter, identities and add-ons.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.addons import ebs_csi_kms_policy
from components.config import StackConfig, deletion_protection_in_force, uses_auto_mode
from components.core import iam_documents as iam
from components.core.cluster_handle import ClusterHandle
from components.core.kms_keys import rotating_key
from components.core.kubeconfig import render_eks_kubeconfig
from components.core.trust_policies import STS_AUDIENCE
from components.eks import auto_mode
from components.eks.access import AccessEntrySpec, render_access_entries
from components.eks.addons import (
    EksNetworkingAddons,
    EksNetworkingAddonsArgs,
    EksWorkloadAddons,
    EksWorkloadAddonsArgs,
)
from components.eks.system_nodes import SYSTEM_SCHEDULING, EksSystemNodes, EksSystemNodesArgs
from components.network import Network

CLUSTER_POLICY_ARN = iam.EKS_CLUSTER_POLICY_ARN
# The two ranges EKS itself picks from; we choose explicitly so nodeadm and tooling know it.
SERVICE_CIDR_CANDIDATES = ("172.20.0.0/16", "10.100.0.0/16")


def service_cidr_for(vpc_cidr: str, pod_cidr: str) -> str:
    """The Kubernetes service range: the first EKS default that overlaps neither VPC block."""
    used = [ipaddress.ip_network(vpc_cidr), ipaddress.ip_network(pod_cidr)]
    for candidate in SERVICE_CIDR_CANDIDATES:
        net = ipaddress.ip_network(candidate)
        if not any(net.overlaps(u) for u in used):
            return candidate
    raise ValueError(f"no service CIDR among {SERVICE_CIDR_CANDIDATES} is disjoint from {vpc_cidr} and {pod_cidr}")


def cluster_role_trust() -> dict:
    return iam.service_trust("eks.amazonaws.com", actions=("sts:AssumeRole", "sts:TagSession"))


def cluster_kms_statement(key_arn: str) -> dict:
    """What the cluster role needs on its secrets key (envelope encryption via grants)."""
    return iam.document(
        iam.statement(
            ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
            key_arn,
            sid="EnvelopeEncryption",
        )
    )


@dataclass(frozen=True)
class EksClusterArgs:
    config: StackConfig
    """The stack: `cluster.eks` (version, endpoint, access, logs, system node group, add-ons), names,
    account, region, tags and the environment's safeguards; the cluster's sub-components take their
    own sections of it."""
    network: Network
    """The VPC: private subnets for the control plane ENIs and the system nodes, pod subnets for
    custom networking, and the CIDRs the service range must avoid."""

    @classmethod
    def from_stack(cls, cfg: StackConfig, network: Network) -> "EksClusterArgs":
        return cls(config=cfg, network=network)


class EksCluster(pulumi.ComponentResource):
    handle: ClusterHandle
    cluster: aws.eks.Cluster
    kubeconfig: pulumi.Output[str]
    kms_key: aws.kms.Key  # secrets envelope encryption and control-plane logs
    node_security_group: aws.ec2.SecurityGroup  # nodes and pod ENIs
    service_cidr: str
    issuer_url: pulumi.Output[str]
    oidc_provider: aws.iam.OpenIdConnectProvider
    k8s_provider: k8s.Provider
    system_nodes: EksSystemNodes | None  # None under EKS Auto Mode
    auto_mode_node_role: aws.iam.Role | None  # EKS Auto Mode's node role; None with self-managed Karpenter
    addons: dict[str, aws.eks.Addon]  # every managed add-on by EKS name (`platformctl upgrade` reads their versions)

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:eks:EksCluster", name, None, opts)
        cfg, net = args.config, args.network
        eks, cluster_name, tags = cfg.cluster.eks, cfg.cluster_name, cfg.resource_tags()
        child = pulumi.ResourceOptions(parent=self)
        protect = cfg.safeguards_in_force.protect_stateful_resources
        auto = uses_auto_mode(cfg)

        role = aws.iam.Role(
            f"{name}-cluster-role",
            name=f"{cluster_name}-eks-cluster",
            assume_role_policy=iam.to_json(cluster_role_trust()),
            tags=tags,
            opts=child,
        )
        role_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy", role=role.name, policy_arn=CLUSTER_POLICY_ARN, opts=child
        )
        role_grants: list[pulumi.Resource] = [role_policy]
        if eks.security_group_policies:
            # Security groups for pods: the VPC resource controller (in the control plane, under this
            # role) attaches trunk ENIs to nodes and branch ENIs to the selected pods.
            role_grants.append(
                aws.iam.RolePolicyAttachment(
                    f"{name}-vpc-resource-controller",
                    role=role.name,
                    policy_arn=iam.EKS_VPC_RESOURCE_CONTROLLER_POLICY_ARN,
                    opts=child,
                )
            )
        # EKS Auto Mode (components/eks/auto_mode.py): the cluster role's extra policies and the node role,
        # both before the cluster (EKS checks them at creation).
        self.auto_mode_node_role = None
        auto_grants: list[pulumi.Resource] = []
        if auto:
            volume_key = cfg.addons.ebs_csi.kms_key_arn
            auto_grants = auto_mode.attach_cluster_policies(
                name, role, iam.to_json(ebs_csi_kms_policy(volume_key)) if volume_key else None, self
            )
            self.auto_mode_node_role, node_grants = auto_mode.create_node_role(name, cluster_name, tags, self)
            auto_grants += node_grants
        self.kms_key = rotating_key(
            f"{name}-secrets",
            alias=f"{cluster_name}-eks-secrets",
            description=f"{cluster_name} EKS secrets envelope encryption and control-plane logs",
            policy=iam.to_json(iam.kms_key_policy(cfg.account_id, iam.logs_kms_statement(cfg.account_id, cfg.region))),
            tags=tags,
            parent=self,
            protect=protect,
        )
        key_policy = aws.iam.RolePolicy(
            f"{name}-cluster-kms",
            role=role.id,
            policy=self.kms_key.arn.apply(lambda arn: iam.to_json(cluster_kms_statement(arn))),
            opts=child,
        )
        # EKS would create this group itself, without retention or encryption: create it first.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{cluster_name}/cluster",
            retention_in_days=eks.log_retention_days,
            kms_key_id=self.kms_key.arn,
            tags=tags,
            opts=child,
        )
        self.node_security_group = aws.ec2.SecurityGroup(
            f"{name}-node-sg",
            vpc_id=net.vpc_id,
            description=f"{cluster_name} nodes and pod ENIs (custom networking)",
            tags={**tags, "Name": f"{cluster_name}-node", "karpenter.sh/discovery": cluster_name},
            opts=child,
        )
        self.service_cidr = service_cidr_for(net.vpc_cidr, net.pod_cidr)

        vpc_config = aws.eks.ClusterVpcConfigArgs(
            subnet_ids=list(net.private_subnet_ids.values()),
            endpoint_private_access=eks.endpoint.private_access,
            endpoint_public_access=eks.endpoint.public_access,
            public_access_cidrs=list(eks.endpoint.public_access_cidrs) if eks.endpoint.public_access else None,
        )
        self.cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=cluster_name,
            version=eks.version,
            role_arn=role.arn,
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode=eks.authentication_mode,
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            bootstrap_self_managed_addons=False,
            compute_config=auto_mode.compute_config(eks.auto_mode.built_in_node_pools, self.auto_mode_node_role.arn)
            if self.auto_mode_node_role is not None
            else None,
            storage_config=auto_mode.storage_config() if auto else None,
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=self.kms_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(eks.log_types),
            vpc_config=vpc_config,
            kubernetes_network_config=aws.eks.ClusterKubernetesNetworkConfigArgs(
                ip_family="ipv4",
                service_ipv4_cidr=self.service_cidr,
                elastic_load_balancing=auto_mode.elastic_load_balancing() if auto else None,
            ),
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=eks.upgrade_policy.support_type),
            # EKS refuses DeleteCluster while on, whatever the state file says (config/eks_resilience.py).
            deletion_protection=deletion_protection_in_force(cfg),
            control_plane_scaling_config=(
                aws.eks.ClusterControlPlaneScalingConfigArgs(tier=eks.control_plane_scaling_config.tier)
                if eks.control_plane_scaling_config is not None
                else None
            ),
            zonal_shift_config=(
                aws.eks.ClusterZonalShiftConfigArgs(enabled=eks.zonal_shift_config.enabled)
                if eks.zonal_shift_config is not None
                else None
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self, protect=protect, depends_on=[*role_grants, key_policy, log_group, *auto_grants]
            ),
        )
        cluster_sg_id = self.cluster.vpc_config.cluster_security_group_id
        self._node_security_rules(name, cluster_sg_id, tags)
        self.issuer_url = self.cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=self.issuer_url,
            client_id_lists=[STS_AUDIENCE],
            tags=tags,
            # Every IRSA role trusts this ARN: recreating it breaks them all at once.
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )

        admin_grants = self._access_entries(name, render_access_entries(eks.access), tags)
        ca_data = self.cluster.certificate_authority.apply(lambda ca: ca.data)
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.endpoint, ca_data).apply(
                lambda a: render_eks_kubeconfig(cluster_name, a[0], a[1], cfg.region)
            )
        )
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=admin_grants),
        )
        base = ClusterHandle(
            kind="eks",
            name=cluster_name,
            endpoint=self.cluster.endpoint,
            kubeconfig=self.kubeconfig,
            k8s_provider=self.k8s_provider,
            node_security_group_id=self.node_security_group.id,
            system_scheduling=auto_mode.system_scheduling(eks.auto_mode.built_in_node_pools)
            if auto
            else SYSTEM_SCHEDULING,
            oidc_provider_arn=self.oidc_provider.arn,
            oidc_issuer_url=self.issuer_url,
            eks_cluster=self.cluster,
        )
        if self.auto_mode_node_role is not None:
            # AWS runs the networking and storage add-ons and the node provisioning; no node group. With
            # built-in pools EKS creates the node role's access entry, else the stack does.
            node_access = []
            if not eks.auto_mode.built_in_node_pools:
                node_access = auto_mode.create_node_access(name, self.cluster, self.auto_mode_node_role, tags, self)
            # Built-in pools' nodes carry the cluster security group, the stack's NodeClasses the node group:
            # the node group already admits the cluster group; this admits the other direction.
            cluster_from_node = aws.vpc.SecurityGroupIngressRule(
                f"{name}-cluster-from-node",
                security_group_id=cluster_sg_id,
                referenced_security_group_id=self.node_security_group.id,
                ip_protocol="-1",
                description="Auto Mode: nodes and pods of the stack's NodeClasses to built-in pool nodes",
                tags=tags,
                opts=child,
            )
            self.system_nodes = None
            self.handle = dataclasses.replace(
                base,
                # Nodes join (and pods get scheduled) once their access and security group rules exist.
                ready=(self.cluster, *node_access, *self._node_rules, cluster_from_node),
                workload_node_role_names=(self.auto_mode_node_role.name,),
            )
            self.addons = {}  # AWS runs them
        else:
            networking = EksNetworkingAddons(
                f"{name}-networking", EksNetworkingAddonsArgs.from_stack(cfg, base, net), opts=child
            )
            self.system_nodes = EksSystemNodes(
                f"{name}-system",
                EksSystemNodesArgs.from_stack(
                    cfg,
                    base,
                    subnet_ids=list(net.private_subnet_ids.values()),
                    cluster_security_group_id=cluster_sg_id,
                    before_compute=[*networking.before_compute, *self._node_rules],
                ),
                opts=child,
            )
            # Everything built on the cluster waits for the system nodes (where the controllers run).
            self.handle = dataclasses.replace(base, ready=(self.system_nodes.node_group,))
            workload = EksWorkloadAddons(
                f"{name}-workload",
                EksWorkloadAddonsArgs.from_stack(cfg, self.handle, (self.system_nodes.node_group,)),
                opts=child,
            )
            self.addons = {**networking.addons, **workload.addons}
        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "endpoint": self.cluster.endpoint,
                "kubeconfig": self.kubeconfig,
                "oidcProviderArn": self.oidc_provider.arn,
                "nodeSecurityGroupId": self.node_security_group.id,
                **({"autoModeNodeRoleArn": self.auto_mode_node_role.arn} if self.auto_mode_node_role else {}),
            }
        )

    def _node_security_rules(self, name: str, cluster_sg_id: pulumi.Output[str], tags: dict[str, str]) -> None:
        """Nodes and pod ENIs share the node SG; the control plane reaches them (kubelet, webhooks)
        through the cluster SG, and pods reach the API server the other way."""
        child = pulumi.ResourceOptions(parent=self)
        sg = self.node_security_group.id
        self._node_rules = [
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-node-from-node",
                security_group_id=sg,
                referenced_security_group_id=sg,
                ip_protocol="-1",
                description="node and pod traffic inside the cluster",
                tags=tags,
                opts=child,
            ),
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-node-from-control-plane",
                security_group_id=sg,
                referenced_security_group_id=cluster_sg_id,
                ip_protocol="-1",
                description="control plane to kubelets and pod webhooks",
                tags=tags,
                opts=child,
            ),
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-control-plane-from-node",
                security_group_id=cluster_sg_id,
                referenced_security_group_id=sg,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description="pods (custom networking ENIs) to the API server",
                tags=tags,
                opts=child,
            ),
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-node-egress",
                security_group_id=sg,
                cidr_ipv4="0.0.0.0/0",
                ip_protocol="-1",
                description="nodes and pods to AWS APIs and registries",
                tags=tags,
                opts=child,
            ),
        ]

    def _access_entries(self, name: str, specs: list[AccessEntrySpec], tags: dict[str, str]) -> list[pulumi.Resource]:
        """Register every entry and its policy associations; return the admin grants."""
        child = pulumi.ResourceOptions(parent=self)
        admin_grants: list[pulumi.Resource] = []
        for spec in specs:
            entry = aws.eks.AccessEntry(
                f"{name}-access-{spec.key}",
                cluster_name=self.cluster.name,
                principal_arn=spec.principal_arn,
                type=spec.entry_type,
                tags={**tags, "k8s-platform/access": spec.level},
                opts=child,
            )
            for i, grant in enumerate(spec.grants):
                association = aws.eks.AccessPolicyAssociation(
                    f"{name}-access-{spec.key}-{i}",
                    cluster_name=self.cluster.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=grant.policy_arn,
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                        type=grant.scope,
                        namespaces=list(grant.namespaces) or None,
                    ),
                    opts=child,
                )
                if spec.level == "admin":
                    admin_grants.append(association)
        return admin_grants
