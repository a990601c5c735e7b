"""`K3sCluster`: K3s on EC2 with HA embedded etcd behind an NLB, Spot agents, and a ClusterHandle.

Wiring only; what it says comes from pure renderers: user-data (`k3s_user_data`), IAM and key
policies (`k3s_policies`), launch templates and groups (`k3s_node_groups`), PKI (`k3s_pki`).

Servers: exactly one deterministic bootstrap server (an ASG of 1 whose user-data alone may run
`cluster-init`, and only when no server answers yet) plus count-1 servers that join through the NLB
once the bootstrap server passed the health check. Agents join through the NLB.

Zones (HA, embedded etcd): servers are dealt round-robin over the zones, bootstrap first
(components/core/etcd_quorum.py), so one zone outage always leaves a quorum. The bootstrap group is
pinned to the first zone's subnet and every other zone gets its own join group pinned to its subnet:
an ASG replaces a failed server in the same zone. Join groups are created one after the other
(etcd members are added one at a time). A single server spans every zone: it has no quorum to keep,
and when its zone fails the ASG restores it from the newest snapshot in another one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.config import CI_RETENTION_DAYS, K3sConfig, StackConfig
from components.config.k3s_rules import embedded_etcd
from components.core import iam_documents as iam
from components.core.api_access import API_ACCESS_TAG
from components.core.cluster_handle import ClusterHandle, SystemScheduling
from components.core.etcd_quorum import join_servers_per_zone
from components.core.kms_keys import rotating_key
from components.core.kubeconfig import render_client_cert_kubeconfig
from components.k3s import policies as policies
from components.k3s.datastore import K3sDatastore, K3sDatastoreArgs
from components.k3s.interruption import K3sInterruptionArgs, K3sInterruptionHandling
from components.k3s.node_groups import LaunchSpec, agent_group, launch_template, server_group
from components.k3s.pki import K3sPki
from components.k3s.snapshots import snapshot_bucket
from components.k3s.user_data import K3sServerSettings, render_k3s_agent_cloud_init, render_k3s_server_cloud_init
from components.network import Network

API_PORT = 6443
SERVER_ROOT_GIB = 40
AGENT_ROOT_GIB = 50
# Servers run only critical add-ons (Karpenter, controllers) that tolerate this taint.
SERVER_TAINT = "CriticalAddonsOnly=true:NoExecute"
SYSTEM_SCHEDULING = SystemScheduling(
    node_selector={"node-role.kubernetes.io/control-plane": "true"},
    tolerations=[{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoExecute"}],
)
AGENT_LABELS = {"k8s-platform/node-group": "agents"}
# The embedded registry mirror (Spegel): peers publish and find images on 5001/tcp, and every node,
# agents included, serves image layers from its local registry on 6443/tcp (docs.k3s.io,
# installation/registry-mirror, "Requirements").
REGISTRY_P2P_PORT = 5001
REGISTRY_PORT = API_PORT


@dataclass(frozen=True)
class K3sClusterArgs:
    config: K3sConfig
    """The `cluster.k3s` section: version, servers, agents, drain timeout."""
    cluster_name: str
    """Names every resource, SSM parameter prefix and Auto Scaling group."""
    protect_stateful: bool
    """The environment's safeguard (`StackConfig.safeguards_in_force`): protect the keys and the snapshot
    bucket and keep a deleted PKI secret recoverable for 30 days instead of 7."""
    region: str
    """The nodes' region (SSM parameters, Secrets Manager, the drainer)."""
    account_id: str
    """The account the key and secret policies name."""
    tags: dict[str, str]
    """Tags for every taggable resource."""
    vpc_id: pulumi.Input[str]
    """The VPC of the security groups and the API load balancer."""
    vpc_cidr: str
    """Where the API and node traffic may come from."""
    private_subnet_ids: dict[str, pulumi.Output[str]]
    """`{az: subnet_id}`: where servers and agents live, and an internal API load balancer."""
    public_subnet_ids: dict[str, pulumi.Output[str]]
    """`{az: subnet_id}` of the public tier: the API load balancer's subnets when it is internet-facing."""
    pki: K3sPki
    """The cluster CAs, the service-account key and the admin client certificate."""
    service_account_issuer_url: pulumi.Input[str]
    """The stable public issuer (the OIDC issuer component), independent of the servers."""
    service_account_jwks_uri: pulumi.Input[str] | None = None
    """The JWKS URI kube-apiserver advertises. Default: `<issuer>/openid/v1/jwks`, the path kube-apiserver
    itself serves."""
    extra_service_account_issuers: list[str] = field(default_factory=list)
    """Standby issuers tokens may still carry (accepted, never used to sign). Default: none."""
    oidc_provider_arn: pulumi.Input[str] | None = None
    """The IAM OIDC provider of the active issuer, for the ClusterHandle (IRSA). Default: none (no IRSA)."""
    disabled_components: list[str] | None = None
    """Packaged K3s components the enabled cluster add-ons replace (`AddonsConfig.k3s_disabled_components`).
    Default: none given, the user-data renderer's own default."""
    disable_cloud_controller: bool = True
    """Whether the AWS cloud controller add-on takes over from K3s's own. Default: it does."""
    ephemeral: bool = False
    """The ci profile (`safeguards_in_force.ephemeral`): the server runs workloads (no taint), no agents
    group, the PKI secret deleted without a recovery window, 1-day retentions. Default: a lasting cluster."""
    agent_version: str | None = None
    """The agents' K3s release while the servers are upgraded first (`cluster.k3s.agents.version`).
    Default: the servers' `config.version`."""
    datastore: K3sDatastoreArgs | None = None
    """The external datastore (everything but the server role and group, filled in here). Default: none,
    embedded etcd with snapshots to S3."""

    @classmethod
    def from_stack(
        cls,
        cfg: StackConfig,
        network: Network,
        pki: K3sPki,
        service_account_issuer_url: pulumi.Input[str],
        service_account_jwks_uri: pulumi.Input[str] | None = None,
        extra_service_account_issuers: list[str] | None = None,
        oidc_provider_arn: pulumi.Input[str] | None = None,
    ) -> "K3sClusterArgs":
        return cls(
            config=cfg.cluster.k3s,
            cluster_name=cfg.cluster_name,
            protect_stateful=cfg.safeguards_in_force.protect_stateful_resources,
            region=cfg.region,
            account_id=cfg.account_id,
            tags=cfg.resource_tags(),
            vpc_id=network.vpc_id,
            vpc_cidr=network.vpc_cidr,
            private_subnet_ids=network.private_subnet_ids,
            public_subnet_ids=network.public_subnet_ids,
            pki=pki,
            service_account_issuer_url=service_account_issuer_url,
            service_account_jwks_uri=service_account_jwks_uri,
            extra_service_account_issuers=list(extra_service_account_issuers or []),
            oidc_provider_arn=oidc_provider_arn,
            disabled_components=cfg.addons.k3s_disabled_components(),
            disable_cloud_controller=cfg.addons.cloud_controller_manager_enabled("k3s"),
            ephemeral=cfg.safeguards_in_force.ephemeral,
            agent_version=cfg.cluster.k3s.agents.version,
            datastore=K3sDatastoreArgs.from_stack(
                cfg, network, server_role_arn="", server_role_name="", server_security_group_id=""
            )
            if cfg.cluster.k3s.datastore.external
            else None,
        )


class K3sCluster(pulumi.ComponentResource):
    """For Karpenter and add-ons: `handle` (ClusterHandle), `agent_role`, `agent_instance_profile`,
    `join_token_parameter_name` (agent token), `server_url`, `node_security_group_id`, `server_groups`."""

    server_token_parameter_name: str  # SSM SecureString the servers join with
    join_token_parameter_name: str  # SSM SecureString the agents join with
    server_role: aws.iam.Role
    agent_role: aws.iam.Role
    agent_instance_profile: aws.iam.InstanceProfile
    secrets_key: aws.kms.Key  # PKI, server token and etcd snapshots (servers only)
    join_key: aws.kms.Key  # the agent join token
    snapshot_bucket: aws.s3.Bucket | None  # etcd snapshots (None on an external datastore)
    datastore: K3sDatastore | None  # the external datastore (None: embedded etcd)
    load_balancer: aws.lb.LoadBalancer  # the internal API NLB
    api_host: pulumi.Output[str]  # the NLB's DNS name
    server_url: pulumi.Output[str]  # `https://<api_host>:6443`
    endpoint: pulumi.Output[str]
    server_user_data: dict[str, pulumi.Output[str]]  # by server role: bootstrap, join
    server_groups: list[aws.autoscaling.Group]  # bootstrap first, then the join groups in zone order
    server_asg_names: list[str]  # the Auto Scaling group names of `server_groups`, same order
    registry_mirrors: tuple[str, ...]  # registries shared through the embedded mirror; empty: off
    agent_user_data: pulumi.Output[str]
    agent_group: aws.autoscaling.Group | None  # None when ephemeral: workloads run on the server
    asg_name_prefix: str  # every Auto Scaling group of the cluster starts with it
    kubeconfig: pulumi.Output[str]  # admin, a Pulumi secret
    k8s_provider: k8s.Provider
    interruption: K3sInterruptionHandling
    handle: ClusterHandle
    node_security_group: aws.ec2.SecurityGroup
    server_security_group: aws.ec2.SecurityGroup
    api_security_group: aws.ec2.SecurityGroup
    node_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: K3sClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:k3s:K3sCluster", name, None, opts)
        self._name, self._args = name, args
        cfg, cluster, tags = args.config, args.cluster_name, args.tags
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"/k8s-platform/{cluster}/k3s"
        mirror = cfg.embedded_registry
        self.registry_mirrors = tuple(mirror.mirrors) if mirror.enabled else ()
        self.server_token_parameter_name = f"{prefix}/server-token"
        self.join_token_parameter_name = f"{prefix}/agent-token"

        # ---- identities
        self.server_role, server_profile = self._node_role("server")
        self.agent_role, self.agent_instance_profile = self._node_role("agent")

        # ---- keys and secrets: PKI + server token + snapshots under a key only servers decrypt
        secrets_key = self._key(
            "server-secrets",
            f"{cluster} K3s PKI, server token and etcd snapshots",
            pulumi.Output.all(self.server_role.arn, self.agent_role.arn).apply(
                lambda a: iam.to_json(
                    policies.server_secrets_key_policy(
                        account_id=args.account_id, region=args.region, server_role_arn=a[0], denied_role_arns=[a[1]]
                    )
                )
            ),
        )
        join_key = self._key(
            "node-join",
            f"{cluster} K3s agent join token",
            pulumi.Output.all(self.server_role.arn, self.agent_role.arn).apply(
                lambda a: iam.to_json(
                    policies.join_key_policy(
                        account_id=args.account_id, region=args.region, server_role_arn=a[0], agent_role_arn=a[1]
                    )
                )
            ),
        )
        self.secrets_key, self.join_key = secrets_key, join_key
        token_opts = pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"])
        server_token = random.RandomPassword(f"{name}-server-token", length=48, special=False, opts=token_opts)
        agent_token = random.RandomPassword(f"{name}-agent-token", length=48, special=False, opts=token_opts)
        self._secure_parameter("server-token", self.server_token_parameter_name, server_token.result, secrets_key)
        self._secure_parameter("agent-token", self.join_token_parameter_name, agent_token.result, join_key)
        pki_secret = aws.secretsmanager.Secret(
            f"{name}-pki",
            name=f"k8s-platform/{cluster}/k3s/pki",
            kms_key_id=secrets_key.arn,
            description="K3s custom CA bundle and service-account key, read by the bootstrap server at first start",
            # Ephemeral: deleted at once, so the next run of the same name can create it again.
            recovery_window_in_days=30 if args.protect_stateful else 0 if args.ephemeral else 7,
            tags=tags,
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-pki", secret_id=pki_secret.id, secret_string=args.pki.server_bundle, opts=child
        )
        # An external datastore keeps the state (and its backups): no etcd, so no snapshot bucket.
        bucket = (
            snapshot_bucket(
                f"{name}-etcd-snapshots",
                key_arn=secrets_key.arn,
                protect=args.protect_stateful,
                tags=tags,
                parent=self,
                **({"noncurrent_days": CI_RETENTION_DAYS} if args.ephemeral else {}),
            )
            if args.datastore is None
            else None
        )
        self.snapshot_bucket = bucket
        aws.iam.RolePolicy(
            f"{name}-server",
            role=self.server_role.id,
            policy=pulumi.Output.all(
                pki_secret.arn, secrets_key.arn, join_key.arn, bucket.arn if bucket is not None else None
            ).apply(
                lambda a: iam.to_json(
                    policies.server_policy(
                        region=args.region,
                        account_id=args.account_id,
                        token_parameters=[self.server_token_parameter_name, self.join_token_parameter_name],
                        pki_secret_arn=a[0],
                        secrets_key_arn=a[1],
                        join_key_arn=a[2],
                        snapshot_bucket_arn=a[3],
                    )
                )
            ),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-agent",
            role=self.agent_role.id,
            policy=join_key.arn.apply(
                lambda k: iam.to_json(
                    policies.agent_policy(
                        region=args.region,
                        account_id=args.account_id,
                        agent_token_parameter=self.join_token_parameter_name,
                        join_key_arn=k,
                    )
                )
            ),
            opts=child,
        )

        # ---- network: NLB in front of the servers
        self._security_groups()
        self.datastore = (
            K3sDatastore(
                f"{name}-datastore",
                dataclasses.replace(
                    args.datastore,
                    server_role_arn=self.server_role.arn,
                    server_role_name=self.server_role.id,
                    server_security_group_id=self.server_security_group.id,
                ),
                opts=child,
            )
            if args.datastore is not None
            else None
        )
        self.load_balancer, target_group = self._api_load_balancer()
        self.api_host = self.load_balancer.dns_name
        self.server_url = self.api_host.apply(lambda h: f"https://{h}:{API_PORT}")
        self.endpoint = self.server_url

        # ---- servers: one bootstrap (may cluster-init) + count-1 joiners, all on-demand
        issuer = pulumi.Output.from_input(args.service_account_issuer_url)
        jwks = (
            pulumi.Output.from_input(args.service_account_jwks_uri)
            if args.service_account_jwks_uri is not None
            else issuer.apply(lambda u: f"{u.rstrip('/')}/openid/v1/jwks")
        )
        subnets = list(args.private_subnet_ids.values())
        key_name = cfg.ssh_key_name
        server_sgs = [self.node_security_group.id, self.server_security_group.id]

        def server_user_data(role: str) -> pulumi.Output[str]:
            return pulumi.Output.all(
                self.api_host,
                issuer,
                jwks,
                pki_secret.name,
                bucket.bucket if bucket is not None else "",
                target_group.arn,
                self.datastore.connection if self.datastore is not None else None,
            ).apply(
                lambda a: render_k3s_server_cloud_init(
                    K3sServerSettings(
                        role=role,
                        cluster_name=cluster,
                        k3s_version=cfg.version,
                        region=args.region,
                        server_url=f"https://{a[0]}:{API_PORT}",
                        api_host=a[0],
                        token_parameter_name=self.server_token_parameter_name,
                        agent_token_parameter_name=self.join_token_parameter_name,
                        pki_secret_id=a[3],
                        service_account_issuer_url=a[1],
                        service_account_jwks_uri=a[2],
                        snapshot_bucket=a[4],
                        api_target_group_arn=a[5],
                        snapshot_schedule_cron=cfg.snapshots.schedule_cron,
                        snapshot_retention=cfg.snapshots.retention,
                        node_taints=[] if args.ephemeral else [SERVER_TAINT],
                        extra_service_account_issuers=args.extra_service_account_issuers,
                        disable_cloud_controller=args.disable_cloud_controller,
                        registry_mirrors=self.registry_mirrors,
                        datastore=a[6],
                        **(
                            {"disable_components": args.disabled_components}
                            if args.disabled_components is not None
                            else {}
                        ),
                    )
                )
            )

        # The AWS cloud controller (configured with this cluster id) only manages instances tagged as
        # the cluster's own, e.g. when it registers nodes behind a LoadBalancer Service.
        node_ownership = {f"kubernetes.io/cluster/{cluster}": "owned"}

        def server_spec(role: str) -> LaunchSpec:
            return LaunchSpec(
                f"{name}-server-{role}",
                cfg.servers.instance_type,
                cfg.servers.instance_type,
                self.server_user_data[role],
                server_profile.arn,
                server_sgs,
                SERVER_ROOT_GIB,
                key_name,
                {
                    **tags,
                    **node_ownership,
                    "Name": f"{cluster}-server",
                    "k8s-platform/k3s-role": f"server-{role}",
                    API_ACCESS_TAG: cluster,
                },
            )

        self.server_user_data = {r: server_user_data(r) for r in ("bootstrap", "join")}
        zones = list(args.private_subnet_ids)
        bootstrap_asg = f"{cluster}-k3s-server-bootstrap"
        bootstrap = server_group(
            f"{name}-server-bootstrap",
            asg_name=bootstrap_asg,
            size=1,
            template=launch_template(server_spec("bootstrap"), self),
            # HA: the first zone only (round-robin placement, bootstrap first); 1 server: any zone.
            subnet_ids=subnets if cfg.servers.count == 1 else [args.private_subnet_ids[zones[0]]],
            target_group_arn=target_group.arn,
            tags=tags,
            parent=self,
        )
        self.server_groups, self.server_asg_names = [bootstrap], [bootstrap_asg]
        if cfg.servers.count > 1:
            # One launch template for every join group (same user-data); one group per zone, pinned to
            # its subnet, each created once the previous one's servers pass the health check.
            join_template = launch_template(server_spec("join"), self)
            for az, size in join_servers_per_zone(cfg.servers.count, zones, keep_quorum=embedded_etcd(cfg)).items():
                asg = f"{cluster}-k3s-server-{az}"
                self.server_groups.append(
                    server_group(
                        f"{name}-server-join-{az}",
                        asg_name=asg,
                        size=size,
                        template=join_template,
                        subnet_ids=[args.private_subnet_ids[az]],
                        target_group_arn=target_group.arn,
                        tags=tags,
                        parent=self,
                        depends_on=[self.server_groups[-1]],
                    )
                )
                self.server_asg_names.append(asg)

        # ---- agents: Spot above an on-demand base, joining through the NLB
        self.agent_user_data = self.server_url.apply(
            lambda url: render_k3s_agent_cloud_init(
                server_url=url,
                token_parameter_name=self.join_token_parameter_name,
                region=args.region,
                k3s_version=args.agent_version or cfg.version,
                node_labels=AGENT_LABELS,
                registry_mirrors=self.registry_mirrors,
            )
        )
        agents = cfg.agents
        self.agent_group = None if args.ephemeral else agent_group(
            f"{name}-agents",
            asg_name=f"{cluster}-k3s-agents",
            template=launch_template(
                LaunchSpec(
                    f"{name}-agent",
                    None,
                    agents.instance_types[0],
                    self.agent_user_data,
                    self.agent_instance_profile.arn,
                    [self.node_security_group.id],
                    AGENT_ROOT_GIB,
                    key_name,
                    {**tags, **node_ownership, "Name": f"{cluster}-agent", "k8s-platform/k3s-role": "agent"},
                ),
                self,
            ),
            instance_types=agents.instance_types,
            on_demand_base=agents.on_demand_base,
            min_size=agents.min_size,
            desired_size=agents.desired_size,
            max_size=agents.max_size,
            subnet_ids=subnets,
            tags=tags,
            parent=self,
            depends_on=[bootstrap],
        )
        self.asg_name_prefix = f"{cluster}-k3s-"

        # ---- access: admin kubeconfig known at deploy time (nothing read back from a node)
        pki = args.pki
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                self.server_url, pki.server_ca_cert_pem, pki.admin.cert_pem, pki.admin.private_key_pem
            ).apply(lambda a: render_client_cert_kubeconfig(cluster, a[0], a[1], a[2], a[3]))
        )
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.server_groups),
        )
        # ---- Spot / termination handling: drain through the API before the instance goes
        self.interruption = K3sInterruptionHandling(
            f"{name}-interruption",
            K3sInterruptionArgs(
                cluster_name=cluster,
                region=args.region,
                account_id=args.account_id,
                tags=tags,
                vpc_id=args.vpc_id,
                vpc_cidr=args.vpc_cidr,
                subnet_ids=subnets,
                # `<cluster>-k3s-servers` is the single join group of earlier releases: listed so that its
                # servers are still drained (node deleted, etcd member removed) when an upgrade deletes it.
                asg_names=[*self.server_asg_names, f"{cluster}-k3s-servers"]
                + ([] if args.ephemeral else [f"{cluster}-k3s-agents"]),
                asg_name_prefix=self.asg_name_prefix,
                pki=pki,
                server_url=self.server_url,
                k8s_provider=self.k8s_provider,
                drain_timeout_seconds=cfg.drain_timeout_seconds,
                **({"log_retention_days": CI_RETENTION_DAYS, "secret_recovery_days": 0} if args.ephemeral else {}),
                protect_key=args.protect_stateful,
            ),
            opts=child,
        )
        self.handle = ClusterHandle(
            kind="k3s",
            name=cluster,
            endpoint=self.endpoint,
            kubeconfig=self.kubeconfig,
            k8s_provider=self.k8s_provider,
            node_security_group_id=self.node_security_group.id,
            system_scheduling=SYSTEM_SCHEDULING,
            oidc_issuer_url=issuer,
            oidc_provider_arn=pulumi.Output.from_input(args.oidc_provider_arn)
            if args.oidc_provider_arn is not None
            else None,
            ready=tuple(self.server_groups),
            # Workloads run on the agents (servers are tainted for the control plane and controllers);
            # an ephemeral cluster's one untainted server runs them itself.
            workload_node_role_names=(self.server_role.name if args.ephemeral else self.agent_role.name,),
        )
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "kubeconfig": self.kubeconfig,
                "nodeSecurityGroupId": self.node_security_group.id,
                "joinTokenParameterName": self.join_token_parameter_name,
            }
        )

    # ------------------------------------------------------------------------------------------
    def _node_role(self, kind: str) -> tuple[aws.iam.Role, aws.iam.InstanceProfile]:
        a, child = self._args, pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{self._name}-{kind}",
            name=f"{a.cluster_name}-k3s-{kind}",
            assume_role_policy=iam.to_json(iam.service_trust("ec2.amazonaws.com")),
            description=f"K3s {kind} nodes of {a.cluster_name}",
            tags=a.tags,
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{self._name}-{kind}-ssm", role=role.name, policy_arn=iam.SSM_CORE_POLICY_ARN, opts=child
        )
        profile = aws.iam.InstanceProfile(
            f"{self._name}-{kind}", name=f"{a.cluster_name}-k3s-{kind}", role=role.name, tags=a.tags, opts=child
        )
        return role, profile

    def _key(self, purpose: str, description: str, policy: pulumi.Input[str]) -> aws.kms.Key:
        a = self._args
        return rotating_key(
            f"{self._name}-{purpose}",
            alias=f"{a.cluster_name}-k3s-{purpose}",
            description=description,
            policy=policy,
            tags=a.tags,
            parent=self,
            protect=a.protect_stateful,
        )

    def _secure_parameter(self, purpose: str, param_name: str, value: pulumi.Output[str], key: aws.kms.Key) -> None:
        aws.ssm.Parameter(
            f"{self._name}-{purpose}",
            name=param_name,
            type="SecureString",
            key_id=key.arn,
            value=pulumi.Output.secret(value),
            description=f"K3s {purpose} (read at boot by node roles)",
            tags=self._args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _security_groups(self) -> None:
        a, child = self._args, pulumi.ResourceOptions(parent=self)
        cluster, tags = a.cluster_name, a.tags

        def group(kind: str, description: str, **extra_tags: str) -> aws.ec2.SecurityGroup:
            return aws.ec2.SecurityGroup(
                f"{self._name}-{kind}",
                vpc_id=a.vpc_id,
                description=description,
                revoke_rules_on_delete=True,
                tags={**tags, "Name": f"{cluster}-k3s-{kind}", **extra_tags},
                opts=child,
            )

        # Karpenter's EC2NodeClasses select the node group by its discovery tag.
        # The cluster tag marks the one SG of a node's ENI that the AWS Load Balancer Controller
        # (instance targets) and cloud controller open to load balancers; servers carry two SGs.
        self.node_security_group = group(
            "nodes",
            "Every K3s node (servers, agents, Karpenter nodes)",
            **{"karpenter.sh/discovery": cluster, f"kubernetes.io/cluster/{cluster}": "owned"},
        )
        self.server_security_group = group("servers", "K3s servers: API and embedded etcd")
        self.api_security_group = group("api", "The K3s API load balancer")
        self.node_security_group_id = self.node_security_group.id
        nodes, servers, api = self.node_security_group.id, self.server_security_group.id, self.api_security_group.id

        def ingress(
            rule: str,
            sg,
            port: int | None,
            to_port: int | None = None,
            protocol: str = "tcp",
            *,
            source_sg=None,
            cidr: str | None = None,
            description: str,
        ) -> None:
            aws.vpc.SecurityGroupIngressRule(
                f"{self._name}-{rule}",
                security_group_id=sg,
                ip_protocol=protocol,
                from_port=port,
                to_port=to_port if to_port is not None else port,
                referenced_security_group_id=source_sg,
                cidr_ipv4=cidr,
                description=description,
                tags=tags,
                opts=child,
            )

        # Kubelet, flannel VXLAN, metrics between nodes: one trust domain.
        ingress("nodes-from-nodes", nodes, None, protocol="-1", source_sg=nodes, description="node to node")
        ingress("api-from-nlb", servers, API_PORT, source_sg=api, description="API/supervisor through the NLB")
        ingress("api-from-nodes", servers, API_PORT, source_sg=nodes, description="API/supervisor from nodes")
        if embedded_etcd(a.config):  # an external datastore runs no etcd on the servers
            ingress("etcd-from-servers", servers, 2379, 2380, source_sg=servers, description="etcd client and peer")
        ingress("nlb-from-vpc", api, API_PORT, cidr=a.vpc_cidr, description="API from the VPC")
        for i, cidr in enumerate(a.config.api_access.allowed_cidrs):
            ingress(f"nlb-from-allowed-{i}", api, API_PORT, cidr=cidr, description="API from an allowlisted network")
        if a.config.embedded_registry.enabled:
            # Explicit although node-to-node allows everything today: the mirror's ports stay open
            # between nodes (and only between them) if that rule is ever narrowed.
            ingress(
                "registry-p2p-from-nodes",
                nodes,
                REGISTRY_P2P_PORT,
                source_sg=nodes,
                description="embedded registry mirror (Spegel) peer to peer",
            )
            ingress(
                "registry-from-nodes",
                nodes,
                REGISTRY_PORT,
                source_sg=nodes,
                description="embedded registry mirror: image layers from a node's local registry",
            )
        if a.config.ssh_source_security_group_id:
            ingress("ssh", nodes, 22, source_sg=a.config.ssh_source_security_group_id, description="SSH (configured)")
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-nlb-to-servers",
            security_group_id=api,
            ip_protocol="tcp",
            from_port=API_PORT,
            to_port=API_PORT,
            referenced_security_group_id=servers,
            description="API to the servers",
            tags=tags,
            opts=child,
        )
        for kind, sg in (("nodes", nodes), ("servers", servers)):
            aws.vpc.SecurityGroupEgressRule(
                f"{self._name}-{kind}-egress",
                security_group_id=sg,
                ip_protocol="-1",
                cidr_ipv4="0.0.0.0/0",
                description="AWS APIs, images, K3s release",
                tags=tags,
                opts=child,
            )

    def _api_load_balancer(self) -> tuple[aws.lb.LoadBalancer, aws.lb.TargetGroup]:
        a, child = self._args, pulumi.ResourceOptions(parent=self)
        access = a.config.api_access
        subnets = a.public_subnet_ids if access.internet_facing else a.private_subnet_ids
        nlb = aws.lb.LoadBalancer(
            f"{self._name}-api",
            load_balancer_type="network",
            internal=not access.internet_facing,
            subnets=list(subnets.values()),
            security_groups=[self.api_security_group.id],
            enable_cross_zone_load_balancing=True,
            enable_deletion_protection=a.protect_stateful,
            tags={**a.tags, "Name": f"{a.cluster_name}-k3s-api"},
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{self._name}-api",
            port=API_PORT,
            protocol="TCP",
            target_type="instance",
            vpc_id=a.vpc_id,
            # Servers reach the API through the NLB themselves; without client-IP preservation that
            # hairpin works and the servers' security group admits the NLB's group.
            preserve_client_ip="false",
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                protocol="HTTPS",
                port="traffic-port",
                path="/ping",
                matcher="200",
                interval=10,
                timeout=5,
                healthy_threshold=3,
                unhealthy_threshold=3,
            ),
            tags=a.tags,
            opts=child,
        )
        aws.lb.Listener(
            f"{self._name}-api",
            load_balancer_arn=nlb.arn,
            port=API_PORT,
            protocol="TCP",
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)],
            tags=a.tags,
            opts=child,
        )
        return nlb, target_group
