"""`Karpenter`: the v1 controller, its AWS side, and the EC2NodeClasses and NodePools from config.

Wiring only. What it registers comes from pure renderers: the controller policy and node role
(`karpenter_iam`), the interruption queue and rules (`karpenter_interruption`), the NodePool and
EC2NodeClass specs (`karpenter_specs`), the chart values (`controller_chart_values` below) and, on
K3s, the agent user-data (`k3s_user_data.render_k3s_agent_cloud_init`).

Works on both control planes through the `ClusterHandle`: on EKS the controller's role is bound with
Pod Identity and the node role gets an EC2_LINUX access entry; on K3s the role is bound with IRSA
through the cluster's own issuer and the node role may read (only) the agent join token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.addons import KUBE_SYSTEM, irsa_token_projection, scheduling_values
from components.config import KarpenterConfig, StackConfig
from components.config.karpenter_rules import effective_ami_parameters, uses_custom_networking
from components.core import iam_documents as iam
from components.core.cluster_handle import ClusterHandle, SystemScheduling
from components.core.pins import CHARTS
from components.eks import NODE_ENTRY_TYPE
from components.identity import ServiceAccountIdentity, ServiceAccountIdentityArgs, default_method
from components.k3s import agent_policy, render_k3s_agent_cloud_init
from components.karpenter import iam as karpenter_iam
from components.karpenter.interruption import KarpenterInterruptionQueue, KarpenterInterruptionQueueArgs
from components.karpenter.specs import (
    NODECLASS_API_VERSION,
    NODECLASS_KIND,
    UNREGISTERED_TAINT,
    node_class_from_config,
    node_class_max_pods_from_config,
    node_pool_from_config,
)

# Placeholder for spec fields filled from other resources' outputs after rendering.
_RESOLVED_LATER = "(resolved at deploy time)"

NAMESPACE = KUBE_SYSTEM
SERVICE_ACCOUNT = "karpenter"
RELEASE_NAME = "karpenter"
CHART_KEY = "karpenter"
CRD_RELEASE_NAME = "karpenter-crd"
CRD_CHART_KEY = "karpenter-crd"
# Nodes launched by Karpenter on K3s carry this label next to the agents' `agents`.
K3S_NODE_LABELS = {"k8s-platform/node-group": "karpenter"}


@dataclass
class K3sNodeJoin:
    """What a Karpenter-launched K3s agent needs to join (from `K3sCluster`)."""

    server_url: pulumi.Input[str]
    token_parameter_name: str
    join_key_arn: pulumi.Input[str]
    k3s_version: str
    # Registries shared through K3s's embedded registry mirror (every node lists them); empty: off.
    registry_mirrors: tuple[str, ...] = ()


@dataclass(frozen=True)
class KarpenterArgs:
    config: KarpenterConfig
    """The `karpenter` section: node classes, node pools, replicas."""
    cluster: ClusterHandle
    """The complete cluster Karpenter launches nodes for."""
    region: str
    """The controller's `AWS_REGION` and the SSM parameters (AMIs, K3s join token) it reads."""
    account_id: str
    """The account of the node role, the instance profiles and the interruption queue."""
    controller_replicas: int
    """The environment's controller replica count (`StackConfig.safeguards_in_force`), unless
    `karpenter` overrides it."""
    tags: dict[str, str]
    """Tags for every taggable resource and for the nodes Karpenter launches."""
    k3s_join: K3sNodeJoin | None = None
    """What a K3s agent needs to join; required on K3s, unused on EKS. Default: none (EKS)."""

    @classmethod
    def from_stack(
        cls, cfg: StackConfig, cluster: ClusterHandle, k3s_join: K3sNodeJoin | None = None
    ) -> "KarpenterArgs":
        return cls(
            config=cfg.karpenter,
            cluster=cluster,
            region=cfg.region,
            account_id=cfg.account_id,
            controller_replicas=cfg.safeguards_in_force.controller_replicas,
            tags=cfg.resource_tags(),
            k3s_join=k3s_join,
        )


def controller_chart_values(
    *,
    cluster_name: str,
    cluster_endpoint: Any,
    queue_name: Any,
    region: str,
    replicas: int,
    scheduling: SystemScheduling,
    kind: str,
    irsa_role_arn: Any = None,
) -> dict[str, Any]:
    """Values of the karpenter chart (names as in its values.yaml at the pinned version)."""
    values: dict[str, Any] = {
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "replicas": replicas,
        # One controller may be evicted at a time (leader election hands over to the other).
        "podDisruptionBudget": {"name": RELEASE_NAME, "maxUnavailable": 1},
        **scheduling_values(scheduling),
        # Resolve AWS endpoints through the VPC resolver: CoreDNS may itself run on nodes Karpenter
        # has yet to launch, and Karpenter needs no in-cluster names.
        "dnsPolicy": "Default",
        "settings": {
            "clusterName": cluster_name,
            # Set explicitly: discovery by eks:DescribeCluster works on EKS only.
            "clusterEndpoint": cluster_endpoint,
            "interruptionQueue": queue_name,
        },
        "controller": {
            # With IMDS hop limit 1 the pod cannot ask the node for its region.
            "env": [{"name": "AWS_REGION", "value": region}],
            "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        },
    }
    if uses_custom_networking(kind):
        # Pods never use the primary ENI (custom networking): Karpenter's own pod-density math must agree.
        values["settings"]["reservedENIs"] = "1"
    if kind == "k3s":
        if irsa_role_arn is None:
            raise ValueError("K3s: the controller needs its IRSA role ARN (no pod-identity webhook injects it)")
        # Karpenter starts before anything could inject credentials: project the token explicitly.
        irsa = irsa_token_projection(irsa_role_arn, region)
        values["controller"]["env"] = irsa["env"]
        values["controller"]["extraVolumeMounts"] = irsa["extraVolumeMounts"]
        values["extraVolumes"] = irsa["extraVolumes"]
    return values


def k3s_node_user_data(join: K3sNodeJoin, server_url: str, region: str, max_pods: int) -> str:
    """cloud-config for a Karpenter node on K3s: the agent renderer plus the unregistered taint and maxPods."""
    return render_k3s_agent_cloud_init(
        server_url=server_url,
        token_parameter_name=join.token_parameter_name,
        region=region,
        k3s_version=join.k3s_version,
        node_labels=K3S_NODE_LABELS,
        node_taints=[UNREGISTERED_TAINT],
        max_pods=max_pods,
        registry_mirrors=join.registry_mirrors,
    )


class Karpenter(pulumi.ComponentResource):
    interruption: KarpenterInterruptionQueue
    node_role: aws.iam.Role
    instance_profile: aws.iam.InstanceProfile
    identity: ServiceAccountIdentity  # the controller's role and its binding
    crd_release: k8s.helm.v3.Release
    release: k8s.helm.v3.Release
    node_classes: dict[str, k8s.apiextensions.CustomResource]  # by `karpenter.nodeClasses[].name`
    node_pools: dict[str, k8s.apiextensions.CustomResource]  # by `karpenter.nodePools[].name`

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:karpenter:Karpenter", name, None, opts)
        cfg, cluster, tags = args.config, args.cluster, args.tags
        kind, cluster_name = cluster.kind, cluster.name
        child = pulumi.ResourceOptions(parent=self)
        if kind == "k3s" and args.k3s_join is None:
            raise ValueError(f"{name}: a K3s cluster needs k3s_join (server URL, join token parameter, key)")

        self.interruption = KarpenterInterruptionQueue(
            f"{name}-interruption",
            KarpenterInterruptionQueueArgs(cluster_name=cluster_name, account_id=args.account_id, tags=tags),
            opts=child,
        )

        # ---- node role and instance profile
        self.node_role = aws.iam.Role(
            f"{name}-node",
            name=f"{cluster_name}-karpenter-node",
            assume_role_policy=iam.to_json(karpenter_iam.node_trust()),
            description=f"Nodes Karpenter launches for {cluster_name}",
            tags=tags,
            opts=child,
        )
        node_grants: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{arn.rsplit('/', 1)[1]}", role=self.node_role.name, policy_arn=arn, opts=child
            )
            for arn in karpenter_iam.node_managed_policy_arns(kind)
        ]
        if kind == "k3s":
            join = args.k3s_join
            node_grants.append(
                aws.iam.RolePolicy(
                    f"{name}-node-join",
                    role=self.node_role.id,
                    policy=pulumi.Output.from_input(join.join_key_arn).apply(
                        lambda key: iam.to_json(
                            agent_policy(
                                region=args.region,
                                account_id=args.account_id,
                                agent_token_parameter=join.token_parameter_name,
                                join_key_arn=key,
                            )
                        )
                    ),
                    opts=child,
                )
            )
        self.instance_profile = aws.iam.InstanceProfile(
            f"{name}-node", name=f"{cluster_name}-karpenter-node", role=self.node_role.name, tags=tags, opts=child
        )
        if kind == "eks":
            node_grants.append(
                aws.eks.AccessEntry(
                    f"{name}-node",
                    cluster_name=cluster.eks_cluster.name,
                    principal_arn=self.node_role.arn,
                    type=NODE_ENTRY_TYPE,
                    tags={**tags, "k8s-platform/access": "node"},
                    opts=child,
                )
            )

        # ---- controller identity
        # K3s classes name their AMIs by SSM parameter; EKS aliases resolve under one public prefix.
        ami_parameters = (
            [p for nc in cfg.node_classes for p in effective_ami_parameters(nc).values()] if kind == "k3s" else []
        )
        policy = pulumi.Output.all(self.node_role.arn, self.instance_profile.arn, self.interruption.queue_arn).apply(
            lambda a: iam.to_json(
                karpenter_iam.controller_policy(
                    cluster_name=cluster_name,
                    kind=kind,
                    region=args.region,
                    account_id=args.account_id,
                    node_role_arn=a[0],
                    instance_profile_arn=a[1],
                    queue_arn=a[2],
                    ami_parameter_arns=karpenter_iam.ami_parameter_arns(
                        kind, ami_parameters, args.region, args.account_id
                    ),
                )
            )
        )
        self.identity = ServiceAccountIdentity(
            f"{name}-controller",
            ServiceAccountIdentityArgs(
                cluster=cluster,
                namespace=NAMESPACE,
                service_account=SERVICE_ACCOUNT,
                method=default_method(cluster),
                account_id=args.account_id,
                tags={**tags, "k8s-platform/addon": "karpenter"},
                inline_policy_json=policy,
                role_name=f"{cluster_name}-karpenter-controller",
            ),
            opts=child,
        )

        # ---- the chart, on system capacity, once the control plane, the identity and the queue exist
        chart, crd_chart = CHARTS[CHART_KEY], CHARTS[CRD_CHART_KEY]
        values = controller_chart_values(
            cluster_name=cluster_name,
            cluster_endpoint=cluster.endpoint,
            queue_name=self.interruption.queue_name,
            region=args.region,
            replicas=cfg.replica_count(args.controller_replicas),
            scheduling=cluster.system_scheduling,
            kind=kind,
            irsa_role_arn=self.identity.role_arn if kind == "k3s" else None,
        )
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=cluster.k8s_provider)
        # CRDs as templates of their own release, so that a version bump upgrades them (Helm leaves a
        # chart's crds/ directory alone after the first install); the controller chart then skips its copy.
        self.crd_release = k8s.helm.v3.Release(
            f"{name}-crd-chart",
            name=CRD_RELEASE_NAME,
            chart=crd_chart.chart,
            version=crd_chart.version,
            namespace=NAMESPACE,
            atomic=True,
            cleanup_on_fail=True,
            timeout=300,
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[*cluster.ready])),
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-chart",
            name=RELEASE_NAME,
            chart=chart.chart,
            version=chart.version,
            namespace=NAMESPACE,
            values=values,
            skip_crds=True,
            atomic=True,
            cleanup_on_fail=True,
            timeout=600,
            opts=pulumi.ResourceOptions.merge(
                k8s_opts,
                pulumi.ResourceOptions(
                    depends_on=[*cluster.ready, self.crd_release, self.identity, self.interruption, *node_grants]
                ),
            ),
        )

        # ---- EC2NodeClasses and NodePools (their CRDs come with the CRD chart, their webhook with the controller)
        self.node_classes = {}
        for nc in cfg.node_classes:
            max_pods = node_class_max_pods_from_config(cfg, nc, kind)
            user_data: pulumi.Input[str | None] = None
            if kind == "k3s":
                join = args.k3s_join
                user_data = pulumi.Output.from_input(join.server_url).apply(
                    lambda url, mp=max_pods, join=join: k3s_node_user_data(join, url, args.region, mp)
                )
            # The spec is rendered from config alone; only the two values that come from other resources
            # stay Outputs. A first `pulumi preview` then sees IMDS, volume and AMI settings as known
            # values, so the policy pack can decide on them instead of reporting "can't run".
            spec = node_class_from_config(
                nc,
                kind=kind,
                cluster_name=cluster_name,
                instance_profile=_RESOLVED_LATER,
                max_pods=max_pods,
                tags=tags,
                user_data=_RESOLVED_LATER if user_data is not None else None,
            ).manifest()["spec"]
            spec["instanceProfile"] = self.instance_profile.name
            if user_data is not None:
                spec["userData"] = user_data
            # apiVersion and kind stay plain strings: they form the resource's type token.
            self.node_classes[nc.name] = k8s.apiextensions.CustomResource(
                f"{name}-nodeclass-{nc.name}",
                api_version=NODECLASS_API_VERSION,
                kind=NODECLASS_KIND,
                metadata={"name": nc.name},
                spec=spec,
                opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[self.release])),
            )
        self.node_pools = {}
        for pool in cfg.node_pools:
            manifest = node_pool_from_config(pool).manifest()
            self.node_pools[pool.name] = k8s.apiextensions.CustomResource(
                f"{name}-nodepool-{pool.name}",
                api_version=manifest["apiVersion"],
                kind=manifest["kind"],
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions.merge(
                    k8s_opts, pulumi.ResourceOptions(depends_on=[self.release, self.node_classes[pool.node_class]])
                ),
            )

        self.register_outputs(
            {
                "controllerRoleArn": self.identity.role_arn,
                "nodeRoleArn": self.node_role.arn,
                "instanceProfileName": self.instance_profile.name,
                "interruptionQueueName": self.interruption.queue_name,
            }
        )
