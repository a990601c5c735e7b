"""A compliant fixture stack for the policy tests, registered through the real SDKs under mocks.

Building it with `pulumi_aws`/`pulumi_kubernetes` constructors (not hand-written dicts) means every
input reaches the policies under the engine's camelCase name, with the dependencies and parents
the SDK records. `compliant_resources()` runs it once per session; tests mutate deep copies.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.core import iam_documents as iam
from components.core.trust_policies import (
    cross_account_target_trust,
    irsa_trust,
    pod_identity_target_trust,
    pod_identity_trust,
)
from policy.offline_runner import Resource
from programs import offline
from programs.offline import read_stack_file, reveal, run_offline, stack_file
from programs.plan import policy_resources, resources_from_run

ACCOUNT = "123456789012"
TAGS = {"owner": "platform-team", "cost-center": "cc-1234", "environment": "prod"}
CLUSTER_ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
ISSUER_URL = "https://oidc.example.com/id/EXAMPLE"
NODE_USER_DATA = """#!/bin/bash
set -euo pipefail
K3S_TOKEN="$(aws ssm get-parameter --name /k3s/token --with-decryption --query Parameter.Value --output text)"
export K3S_TOKEN
curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.35.0+k3s1 sh -s - agent --token-file /run/k3s/token
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _program(_cfg: Any) -> dict[str, Any]:
    protect = pulumi.ResourceOptions(protect=True)
    key = aws.kms.Key(
        "key", enable_key_rotation=True, tags=TAGS, policy=iam.to_json(iam.kms_key_policy(ACCOUNT)), opts=protect
    )

    # --- EKS control plane and access
    cluster = aws.eks.Cluster(
        "cluster",
        name="fixture",
        version="1.35",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/cluster",
        vpc_config={
            "subnet_ids": ["subnet-1", "subnet-2"],
            "endpoint_private_access": True,
            "endpoint_public_access": False,
        },
        access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": False},
        encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
        enabled_cluster_log_types=["api", "audit", "authenticator"],
        deletion_protection=True,
        tags=TAGS,
        opts=protect,
    )
    admin_entry = aws.eks.AccessEntry(
        "admin-entry", cluster_name=cluster.name, principal_arn=f"arn:aws:iam::{ACCOUNT}:role/platform-admin", tags=TAGS
    )
    aws.eks.AccessPolicyAssociation(
        "admin",
        cluster_name=admin_entry.cluster_name,
        principal_arn=admin_entry.principal_arn,
        policy_arn=CLUSTER_ADMIN,
        access_scope={"type": "cluster"},
    )
    aws.eks.Addon(
        "vpc-cni", cluster_name=cluster.name, addon_name="vpc-cni", addon_version="v1.20.4-eksbuild.1", tags=TAGS
    )
    aws.eks.NodeGroup(
        "system",
        cluster_name=cluster.name,
        node_role_arn=f"arn:aws:iam::{ACCOUNT}:role/node",
        subnet_ids=["subnet-1"],
        scaling_config={"desired_size": 2, "max_size": 3, "min_size": 2},
        node_repair_config={"enabled": True},
        tags=TAGS,
    )
    aws.eks.Addon(
        "node-monitoring-agent",
        cluster_name=cluster.name,
        addon_name="eks-node-monitoring-agent",
        addon_version="v1.7.0-eksbuild.1",
        tags=TAGS,
    )

    # --- network
    vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16", tags=TAGS)
    aws.ec2.FlowLog("vpc-flow", vpc_id=vpc.id, traffic_type="ALL", log_destination="arn:aws:logs:x", tags=TAGS)
    private = aws.ec2.Subnet(
        "private", vpc_id=vpc.id, cidr_block="10.0.1.0/24", map_public_ip_on_launch=False, tags=TAGS
    )
    # A public subnet: no public IPs on launch, but its route table leads to an internet gateway.
    public = aws.ec2.Subnet("public", vpc_id=vpc.id, cidr_block="10.0.0.0/24", map_public_ip_on_launch=False, tags=TAGS)
    igw = aws.ec2.InternetGateway("igw", vpc_id=vpc.id, tags=TAGS)
    public_rt = aws.ec2.RouteTable(
        "public-rt", vpc_id=vpc.id, routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}], tags=TAGS
    )
    aws.ec2.RouteTableAssociation("public-assoc", subnet_id=public.id, route_table_id=public_rt.id)
    aws.eks.FargateProfile(
        "fargate",
        cluster_name=cluster.name,
        fargate_profile_name="batch",
        pod_execution_role_arn=f"arn:aws:iam::{ACCOUNT}:role/fargate",
        subnet_ids=[private.id],
        selectors=[{"namespace": "batch"}],
        tags=TAGS,
    )
    # EFS: encrypted with the stack's key, NFS from the nodes' group only.
    efs_sg = aws.ec2.SecurityGroup("efs-sg", vpc_id=vpc.id, tags=TAGS)
    aws.vpc.SecurityGroupIngressRule(
        "nfs-rule",
        from_port=2049,
        to_port=2049,
        ip_protocol="tcp",
        referenced_security_group_id="sg-nodes",
        security_group_id=efs_sg.id,
        tags=TAGS,
    )
    aws.efs.FileSystem("efs", encrypted=True, kms_key_id=key.arn, tags=TAGS, opts=protect)
    aws.ec2.SecurityGroup(
        "api-sg",
        vpc_id=vpc.id,
        tags=TAGS,
        ingress=[{"from_port": 6443, "to_port": 6443, "protocol": "tcp", "cidr_blocks": ["10.0.0.0/16"]}],
    )
    aws.ec2.SecurityGroupRule(
        "https-rule",
        type="ingress",
        from_port=443,
        to_port=443,
        protocol="tcp",
        cidr_blocks=["0.0.0.0/0"],
        security_group_id="sg-1",
    )
    aws.vpc.SecurityGroupIngressRule(
        "kubelet-rule",
        from_port=10250,
        to_port=10250,
        ip_protocol="tcp",
        cidr_ipv4="10.0.0.0/16",
        security_group_id="sg-1",
        tags=TAGS,
    )
    nlb = aws.lb.LoadBalancer("api-nlb", internal=True, load_balancer_type="network", subnets=["subnet-1"], tags=TAGS)
    aws.lb.Listener(
        "api-listener",
        load_balancer_arn=nlb.arn,
        port=6443,
        protocol="TCP",
        default_actions=[{"type": "forward", "target_group_arn": "arn:aws:elasticloadbalancing:tg"}],
    )

    # --- nodes
    aws.ec2.LaunchTemplate(
        "nodes",
        image_id="resolve:ssm:/aws/service/ami",
        user_data=b64(NODE_USER_DATA),
        tags=TAGS,
        metadata_options={"http_tokens": "required", "http_put_response_hop_limit": 1, "http_endpoint": "enabled"},
        block_device_mappings=[
            {"device_name": "/dev/xvda", "ebs": {"encrypted": "true", "volume_type": "gp3", "volume_size": 40}}
        ],
        network_interfaces=[{"associate_public_ip_address": "false", "security_groups": ["sg-1"]}],
    )
    aws.ec2.Instance(
        "bastion",
        ami="ami-123",
        instance_type="t3.micro",
        associate_public_ip_address=False,
        tags=TAGS,
        metadata_options={"http_tokens": "required", "http_put_response_hop_limit": 1},
        root_block_device={"encrypted": True, "volume_type": "gp3"},
    )
    aws.autoscaling.Group(
        "agents",
        min_size=1,
        max_size=3,
        vpc_zone_identifiers=["subnet-1"],
        launch_template={"id": "lt-1", "version": "$Latest"},
        tags=[{"key": k, "value": v, "propagate_at_launch": True} for k, v in TAGS.items()],
    )
    aws.ebs.Volume("data", availability_zone="us-east-1a", size=10, encrypted=True, kms_key_id=key.arn, tags=TAGS)

    # --- IAM
    node_role = aws.iam.Role(
        "node-role", assume_role_policy=iam.to_json(iam.service_trust("ec2.amazonaws.com")), tags=TAGS
    )
    aws.iam.RolePolicyAttachment(
        "node-worker", role=node_role.name, policy_arn="arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"
    )
    aws.iam.Policy(
        "controller-policy",
        tags=TAGS,
        policy=node_role.arn.apply(
            lambda arn: iam.to_json(
                iam.document(
                    iam.statement(
                        ["ec2:RunInstances", "ec2:CreateFleet"],
                        "*",
                        conditions={"StringEquals": {"aws:RequestTag/k8s-platform/cluster": "fixture"}},
                    ),
                    iam.statement("iam:PassRole", arn),
                )
            )
        ),
    )
    aws.iam.RolePolicy(
        "node-inline",
        role=node_role.id,
        policy=iam.to_json(
            iam.document(iam.statement("ssm:GetParameter", f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/k3s/token"))
        ),
    )

    # --- workload identity: IRSA
    oidc = aws.iam.OpenIdConnectProvider(
        "oidc", url=ISSUER_URL, client_id_lists=["sts.amazonaws.com"], tags=TAGS, opts=protect
    )
    irsa_role = aws.iam.Role(
        "irsa-role",
        tags=TAGS,
        assume_role_policy=oidc.arn.apply(lambda arn: iam.to_json(irsa_trust(arn, ISSUER_URL, "apps", "api"))),
    )
    k8s.core.v1.ServiceAccount(
        "irsa-sa",
        metadata={
            "name": "api",
            "namespace": "apps",
            "annotations": irsa_role.arn.apply(lambda arn: {"eks.amazonaws.com/role-arn": arn}),
        },
    )

    # --- Pod Identity
    pi_role = aws.iam.Role("pod-identity-role", tags=TAGS, assume_role_policy=iam.to_json(pod_identity_trust(ACCOUNT)))
    aws.eks.PodIdentityAssociation(
        "karpenter-association",
        cluster_name=cluster.name,
        namespace="kube-system",
        service_account="karpenter",
        role_arn=pi_role.arn,
        tags=TAGS,
    )
    k8s.core.v1.ServiceAccount("karpenter-sa", metadata={"name": "karpenter", "namespace": "kube-system"})

    # --- cross-account: a native Pod Identity target role and a manual chain, with their exported trusts
    source_arn = f"arn:aws:iam::{ACCOUNT}:role/catalog-sync"
    catalog = aws.eks.PodIdentityAssociation(
        "catalog-association",
        cluster_name=cluster.name,
        namespace="catalog",
        service_account="catalog-sync",
        role_arn=source_arn,
        target_role_arn="arn:aws:iam::333333333333:role/catalog-writer",
        tags=TAGS,
    )
    external_id = f"us-east-1/{ACCOUNT}/fixture/catalog/catalog-sync"
    pulumi.ComponentResource(
        "k8s-platform:identity:CrossAccountTarget",
        "catalog-target",
        {
            "mode": "native",
            "workload": "catalog-sync",
            "sourceRoleArn": source_arn,
            "targetRoleArn": "arn:aws:iam::333333333333:role/catalog-writer",
            "sessionTags": True,
            "externalId": external_id,
            "targetTrustPolicy": iam.to_json(pod_identity_target_trust(source_arn, external_id)),
        },
        opts=pulumi.ResourceOptions(depends_on=[catalog]),
    )
    pulumi.ComponentResource(
        "k8s-platform:identity:CrossAccountTarget",
        "reports-target",
        {
            "mode": "manual",
            "workload": "reports",
            "sourceRoleArn": f"arn:aws:iam::{ACCOUNT}:role/reports",
            "targetRoleArn": "arn:aws:iam::333333333333:role/reports-reader",
            "sessionTags": False,
            "targetTrustPolicy": iam.to_json(cross_account_target_trust(f"arn:aws:iam::{ACCOUNT}:role/reports")),
        },
    )

    # --- Roles Anywhere
    anchor = aws.rolesanywhere.TrustAnchor(
        "anchor",
        name="anchor",
        enabled=True,
        tags=TAGS,
        source={
            "source_type": "CERTIFICATE_BUNDLE",
            "source_data": {"x509_certificate_data": "-----BEGIN CERTIFICATE-----"},
        },
    )
    ra_role = aws.iam.Role(
        "roles-anywhere-role",
        tags=TAGS,
        assume_role_policy=anchor.arn.apply(
            lambda arn: iam.to_json(
                iam.document(
                    iam.statement(
                        ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                        principal={"Service": "rolesanywhere.amazonaws.com"},
                        conditions={
                            "StringEquals": {"aws:PrincipalTag/x509Subject/CN": "batch-worker"},
                            "ArnEquals": {"aws:SourceArn": arn},
                        },
                    )
                )
            )
        ),
    )
    aws.rolesanywhere.Profile("profile", name="profile", role_arns=[ra_role.arn], duration_seconds=3600, tags=TAGS)

    # --- storage
    snapshots = aws.s3.Bucket("snapshots", tags=TAGS, opts=protect)
    aws.s3.BucketPublicAccessBlock(
        "snapshots-pab",
        bucket=snapshots.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        "snapshots-sse",
        bucket=snapshots.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key.arn}}],
    )
    issuer = aws.s3.Bucket("issuer", tags={**TAGS, "k8s-platform/oidc-issuer": "true"}, opts=protect)
    aws.s3.BucketPublicAccessBlock(
        "issuer-pab",
        bucket=issuer.id,
        block_public_acls=True,
        ignore_public_acls=True,
        block_public_policy=False,
        restrict_public_buckets=False,
    )
    aws.s3.BucketObjectv2(
        "issuer-discovery",
        bucket=issuer.id,
        key=".well-known/openid-configuration",
        content=json.dumps({"issuer": ISSUER_URL, "jwks_uri": f"{ISSUER_URL}/keys.json"}),
    )
    aws.s3.BucketPolicy(
        "issuer-policy",
        bucket=issuer.id,
        policy=issuer.arn.apply(
            lambda arn: iam.to_json(
                iam.document(
                    iam.statement(
                        "s3:GetObject", [f"{arn}/.well-known/openid-configuration", f"{arn}/keys.json"], principal="*"
                    )
                )
            )
        ),
    )  # type: ignore[arg-type]
    aws.sqs.Queue("interruptions", sqs_managed_sse_enabled=True, message_retention_seconds=300, tags=TAGS)
    aws.sqs.QueuePolicy(
        "interruptions-policy",
        queue_url="https://sqs/q",
        policy=iam.to_json(
            iam.document(
                iam.statement(
                    "sqs:SendMessage",
                    "arn:aws:sqs:us-east-1:123456789012:q",
                    principal={"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                )
            )
        ),
    )
    aws.ssm.Parameter("join-token", name="/k3s/token", type="SecureString", value="not-a-real-token", tags=TAGS)
    aws.secretsmanager.Secret("drain-credentials", kms_key_id=key.arn, tags=TAGS)

    # --- databases (the K3s external datastore): RDS PostgreSQL and Aurora PostgreSQL Serverless v2
    tls_only = [{"name": "rds.force_ssl", "value": "1"}, {"name": "ssl_min_protocol_version", "value": "TLSv1.2"}]
    db_params = aws.rds.ParameterGroup("db-params", name="fixture-postgres17", family="postgres17", parameters=tls_only)
    aws.rds.Instance(
        "postgres",
        engine="postgres",
        engine_version="17",
        instance_class="db.t4g.medium",
        allocated_storage=20,
        storage_encrypted=True,
        kms_key_id=key.arn,
        manage_master_user_password=True,
        master_user_secret_kms_key_id=key.arn,
        username="k3s",
        parameter_group_name=db_params.name,
        publicly_accessible=False,
        deletion_protection=True,
        multi_az=True,
        tags=TAGS,
        opts=protect,
    )
    cluster_params = aws.rds.ClusterParameterGroup(
        "cluster-params", name="fixture-aurora-postgresql17", family="aurora-postgresql17", parameters=tls_only
    )
    aurora = aws.rds.Cluster(
        "aurora",
        engine="aurora-postgresql",
        engine_mode="provisioned",
        engine_version="17.5",
        storage_encrypted=True,
        kms_key_id=key.arn,
        manage_master_user_password=True,
        master_user_secret_kms_key_id=key.arn,
        master_username="k3s",
        db_cluster_parameter_group_name=cluster_params.name,
        serverlessv2_scaling_configuration={"min_capacity": 0.5, "max_capacity": 4},
        deletion_protection=True,
        tags=TAGS,
        opts=protect,
    )
    aws.rds.ClusterInstance(
        "aurora-writer",
        cluster_identifier=aurora.id,
        instance_class="db.serverless",
        engine=aurora.engine,
        publicly_accessible=False,
        tags=TAGS,
    )
    aws.cloudwatch.LogGroup("cluster-logs", retention_in_days=90, kms_key_id=key.arn, tags=TAGS)
    aws.lambda_.Function(
        "drainer",
        role=node_role.arn,
        runtime="python3.12",
        handler="h.main",
        tags=TAGS,
        code=pulumi.AssetArchive({}),
        vpc_config={"subnet_ids": ["subnet-1"], "security_group_ids": ["sg-1"]},
    )

    # --- Karpenter and Helm
    k8s.apiextensions.CustomResource(
        "general-pool",
        api_version="karpenter.sh/v1",
        kind="NodePool",
        metadata={"name": "general"},
        spec={
            "template": {
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                    "requirements": [
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]}
                    ],
                    "expireAfter": "720h",
                }
            },
            "limits": {"cpu": "64", "memory": "256Gi"},
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": "30s",
                "budgets": [{"nodes": "10%"}],
            },
        },
    )
    k8s.apiextensions.CustomResource(
        "default-class",
        api_version="karpenter.k8s.aws/v1",
        kind="EC2NodeClass",
        metadata={"name": "default"},
        spec={
            "role": "node",
            "amiSelectorTerms": [{"alias": "al2023@v20251117"}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "fixture"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "fixture"}}],
            "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1},
            "blockDeviceMappings": [
                {"deviceName": "/dev/xvda", "ebs": {"volumeSize": "40Gi", "volumeType": "gp3", "encrypted": True}}
            ],
            "associatePublicIPAddress": False,
        },
    )
    # EKS Auto Mode's shape: a NodeClass (eks.amazonaws.com/v1) and a pool referencing it.
    k8s.apiextensions.CustomResource(
        "auto-class",
        api_version="eks.amazonaws.com/v1",
        kind="NodeClass",
        metadata={"name": "platform"},
        spec={
            "role": "fixture-eks-auto-node",
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "fixture"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "fixture"}}],
            "ephemeralStorage": {"size": "80Gi"},
            "advancedNetworking": {"associatePublicIPAddress": False},
        },
    )
    k8s.apiextensions.CustomResource(
        "auto-pool",
        api_version="karpenter.sh/v1",
        kind="NodePool",
        metadata={"name": "auto"},
        spec={
            "template": {
                "spec": {
                    "nodeClassRef": {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "platform"},
                    "requirements": [{"key": "eks.amazonaws.com/instance-category", "operator": "In", "values": ["m"]}],
                    "expireAfter": "336h",
                }
            },
            "limits": {"cpu": "64", "memory": "256Gi"},
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "30s"},
        },
    )
    k8s.helm.v3.Release(
        "karpenter",
        chart="oci://public.ecr.aws/karpenter/karpenter",
        version="1.8.1",
        namespace="kube-system",
        values={"settings": {"clusterName": "fixture"}},
    )
    k8s.helm.v3.Release(
        "metrics-server",
        chart="metrics-server",
        version="3.13.0",
        namespace="kube-system",
        repository_opts={"repo": "https://kubernetes-sigs.github.io/metrics-server/"},
    )
    return {}


_CACHE: list[Resource] = []


def compliant_resources() -> list[Resource]:
    """Deep copy of the fixture's resources (as the runner sees them); built once per session."""
    if not _CACHE:
        # Any valid stack config will do (the program ignores it); the shipped dev file stays valid.
        raw = read_stack_file(stack_file("dev"))
        _CACHE.extend(resources_from_run(run_offline("fixture", raw, program=_program)))
    return copy.deepcopy(_CACHE)


def named(resources: list[Resource], name: str) -> Resource:
    found = [r for r in resources if r.name == name]
    assert len(found) == 1, f"fixture has {len(found)} resources named {name}"
    return found[0]


class _FirstPreviewMocks(offline._PlatformMocks):
    """What a first `pulumi preview` knows: a resource's own inputs; its id and every computed
    output (ARNs, ids, endpoints, issuer URLs) stay unknown, and so does everything derived from them.
    Slightly stricter than the engine: names a provider autonames during Check are unknown here too."""

    def new_resource(self, args):
        if args.typ.startswith("pulumi:providers:"):
            return super().new_resource(args)
        inputs = reveal(offline._unwrap_rpc(args.inputs))
        try:
            _id, state = super().new_resource(args)
        except Exception:  # noqa: BLE001 - a mock computing from an unknown input: nothing computed is known anyway
            state = {}
        return "", {k: (v if k in inputs else rpc.UNKNOWN) for k, v in state.items()}


def first_preview_resources(stack: str) -> list[Resource]:
    """The shipped stack's resources as the analyzer sees them in a first preview (unknowns included)."""
    raw = read_stack_file(stack_file(stack))
    cfg = offline.parse_stack_config(raw)
    from programs.stack import build_stack

    with offline._RUN_LOCK:
        mocks = _FirstPreviewMocks(offline.MockContext(region=cfg.region, account_id=cfg.account_id, stack=stack))
        monitor = offline._CaptureMonitor(mocks)
        settings.reset_options(project=offline.PROJECT, stack=stack, preview=True)
        pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()})
        pulumi.runtime.set_mocks(mocks, project=offline.PROJECT, stack=stack, preview=True, monitor=monitor)

        async def body() -> None:
            build_stack(cfg)

        try:
            _sync_await(run_pulumi_func(body))
        finally:
            settings.reset_options(project=offline.PROJECT, stack=stack, preview=False)
    return policy_resources(monitor.captured)
