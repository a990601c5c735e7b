"""`EksSystemNodes`: the small on-demand managed node group that runs Karpenter and cluster-critical
controllers, reserved for them by a taint.

Launch template: IMDSv2 required with hop limit 1 (pods cannot reach the node's credentials), an
encrypted gp3 root volume under its own KMS key, no public IP, and AL2023 nodeadm user-data that
states the kubelet's maxPods for custom networking + prefix delegation. EKS appends its own
NodeConfig to a managed node's user-data and nodeadm lets the last document win, so EKS's maxPods
(prefix delegation, blind to custom networking) is what the kubelet gets; config validation
therefore admits only instance types for which both figures agree
(`config.eks.managed_node_group_overcommits`). The node role has the worker, ECR pull and SSM
policies but not the CNI policy: vpc-cni gets its IAM through Pod Identity.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.config import EksSystemNodeGroupConfig, StackConfig, is_graviton
from components.core import iam_documents as iam
from components.core.cluster_handle import ClusterHandle, SystemScheduling
from components.core.instance_types import AL2023_ROOT_DEVICE
from components.core.kms_keys import rotating_key
from components.core.max_pods import max_pods_for
from components.eks.access import NODE_ENTRY_TYPE
from components.eks.nodeadm import render_node_config, render_user_data

NODE_POLICY_ARNS = (iam.EKS_WORKER_NODE_POLICY_ARN, iam.ECR_PULL_ONLY_POLICY_ARN, iam.SSM_CORE_POLICY_ARN)
SYSTEM_LABEL_KEY = "k8s-platform/node-pool"
SYSTEM_LABEL_VALUE = "system"
SYSTEM_TAINT_KEY = "CriticalAddonsOnly"
# What controllers put in their pod specs to land on (and only tolerate) the system nodes.
SYSTEM_SCHEDULING = SystemScheduling(
    node_selector={SYSTEM_LABEL_KEY: SYSTEM_LABEL_VALUE},
    tolerations=[{"key": SYSTEM_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
)


def system_max_pods(instance_types: list[str]) -> int:
    """One kubelet setting for the whole group: the smallest maxPods among its instance types."""
    return min(max_pods_for(t, prefix_delegation=True, custom_networking=True) for t in instance_types)


def ami_type_for(instance_types: list[str]) -> str:
    return "AL2023_ARM_64_STANDARD" if is_graviton(instance_types[0]) else "AL2023_x86_64_STANDARD"


def system_user_data(instance_types: list[str]) -> str:
    return render_user_data(render_node_config(max_pods=system_max_pods(instance_types)))


def ebs_key_policy(account_id: str, region: str) -> dict:
    """The account administers the key; the Auto Scaling service-linked role (which launches the
    managed node group's instances) may use it through EC2 only, for the encrypted root volumes.

    The role is named in conditions rather than as Principal: KMS refuses a key policy naming a
    role that does not exist yet, and that service-linked role appears only with the first ASG.
    """
    asg_role = f"arn:aws:iam::{account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    only_asg_via_ec2 = {
        "StringEquals": {"kms:CallerAccount": account_id, "kms:ViaService": f"ec2.{region}.amazonaws.com"},
        "ArnEquals": {"aws:PrincipalArn": asg_role},
    }
    return iam.kms_key_policy(
        account_id,
        iam.statement(
            ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "*",
            principal={"AWS": "*"},
            conditions=only_asg_via_ec2,
            sid="AutoScalingUsesKeyForVolumes",
        ),
        iam.statement(
            "kms:CreateGrant",
            "*",
            principal={"AWS": "*"},
            conditions={**only_asg_via_ec2, "Bool": {"kms:GrantIsForAWSResource": "true"}},
            sid="AutoScalingGrantsForVolumes",
        ),
    )


@dataclass(frozen=True)
class EksSystemNodesArgs:
    config: EksSystemNodeGroupConfig
    """The `cluster.eks.systemNodeGroup` section: instance types and sizes."""
    kubernetes_version: str
    """The node group's Kubernetes version: `cluster.eks.systemNodeGroup.version`, else `cluster.eks.version`."""
    cluster_name: str
    """Names the node role, the launch template, the volume key and the group's name prefix."""
    account_id: str
    """The volume key policy's account."""
    region: str
    """The volume key policy's region (EC2 via-service condition)."""
    tags: dict[str, str]
    """Tags for every taggable resource."""
    handle: ClusterHandle
    """The EKS cluster, before any node: its node security group and the `aws.eks.Cluster`."""
    subnet_ids: list[pulumi.Output[str]]
    """The private subnets the system nodes run in."""
    cluster_security_group_id: pulumi.Output[str]
    """The EKS cluster security group, attached to the nodes next to the node security group."""
    before_compute: list[pulumi.Resource] = field(default_factory=list)
    """Everything that must exist before the first node boots (networking add-ons, ENIConfigs, SG rules).
    Default: nothing."""
    protect: bool = False
    """Protect the volume key (the environment protects stateful resources). Default: unprotected."""

    @classmethod
    def from_stack(
        cls,
        cfg: StackConfig,
        handle: ClusterHandle,
        subnet_ids: list[pulumi.Output[str]],
        cluster_security_group_id: pulumi.Output[str],
        before_compute: list[pulumi.Resource] | tuple[pulumi.Resource, ...] = (),
    ) -> "EksSystemNodesArgs":
        return cls(
            config=cfg.cluster.eks.system_node_group,
            # A held node version (`platformctl upgrade` between its steps), else the control plane's.
            kubernetes_version=cfg.cluster.eks.system_node_group.version or cfg.cluster.eks.version,
            cluster_name=cfg.cluster_name,
            account_id=cfg.account_id,
            region=cfg.region,
            tags=cfg.resource_tags(),
            handle=handle,
            subnet_ids=list(subnet_ids),
            cluster_security_group_id=cluster_security_group_id,
            before_compute=list(before_compute),
            protect=cfg.safeguards_in_force.protect_stateful_resources,
        )


class EksSystemNodes(pulumi.ComponentResource):
    node_group: aws.eks.NodeGroup
    node_role: aws.iam.Role
    ebs_key: aws.kms.Key  # the root volumes' key
    max_pods: int  # the kubelet maxPods of every system node

    def __init__(self, name: str, args: EksSystemNodesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:eks:EksSystemNodes", name, None, opts)
        handle = args.handle
        ng, cluster_name, tags = args.config, args.cluster_name, args.tags
        child = pulumi.ResourceOptions(parent=self)
        assert handle.eks_cluster is not None

        self.node_role = aws.iam.Role(
            f"{name}-node-role",
            name=f"{cluster_name}-system-node",
            assume_role_policy=iam.to_json(iam.service_trust("ec2.amazonaws.com")),
            tags=tags,
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{arn.rsplit('/', 1)[1]}", role=self.node_role.name, policy_arn=arn, opts=child
            )
            for arn in NODE_POLICY_ARNS
        ]
        # Created before the node group, so EKS reuses it instead of adding its own.
        node_entry = aws.eks.AccessEntry(
            f"{name}-node-access",
            cluster_name=handle.eks_cluster.name,
            principal_arn=self.node_role.arn,
            type=NODE_ENTRY_TYPE,
            tags={**tags, "k8s-platform/access": "node"},
            opts=child,
        )
        self.ebs_key = rotating_key(
            f"{name}-ebs",
            alias=f"{cluster_name}-system-node-volumes",
            description=f"{cluster_name} system node root volumes",
            policy=iam.to_json(ebs_key_policy(args.account_id, args.region)),
            tags=tags,
            parent=self,
            protect=args.protect,
        )
        self.max_pods = system_max_pods(ng.instance_types)
        user_data = system_user_data(ng.instance_types)
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            name=f"{cluster_name}-system",
            description="EKS system node group: IMDSv2, encrypted gp3, private, nodeadm maxPods",
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=AL2023_ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=ng.disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        kms_key_id=self.ebs_key.arn,
                        delete_on_termination="true",
                    ),
                )
            ],
            # Managed node groups attach no cluster SG when the template names SGs: name both.
            network_interfaces=[
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                    device_index=0,
                    associate_public_ip_address="false",
                    delete_on_termination="true",
                    security_groups=[handle.node_security_group_id, args.cluster_security_group_id],
                )
            ],
            user_data=base64.b64encode(user_data.encode()).decode(),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind, tags={**tags, "Name": f"{cluster_name}-system"}
                )
                for kind in ("instance", "volume", "network-interface")
            ],
            tags=tags,
            opts=child,
        )
        self.node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=handle.eks_cluster.name,
            # A prefix, not a name: changes that replace the group (instance types, AMI type) create
            # the new group before deleting the old one, so controllers always have somewhere to run.
            node_group_name_prefix=f"{cluster_name}-system-",
            node_role_arn=self.node_role.arn,
            subnet_ids=args.subnet_ids,
            version=args.kubernetes_version,
            ami_type=ami_type_for(ng.instance_types),
            capacity_type="ON_DEMAND",
            instance_types=list(ng.instance_types),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=ng.desired_size,
                min_size=ng.min_size,
                max_size=ng.max_size,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            # Auto repair: EKS replaces nodes the node monitoring agent (or the kubelet) reports unhealthy.
            node_repair_config=aws.eks.NodeGroupNodeRepairConfigArgs(
                enabled=ng.node_repair_config.enabled,
                max_parallel_nodes_repaired_count=ng.node_repair_config.max_parallel_nodes_repaired_count,
            ),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id,
                version=launch_template.latest_version.apply(str),
            ),
            labels=dict(SYSTEM_SCHEDULING.node_selector),
            taints=[aws.eks.NodeGroupTaintArgs(key=SYSTEM_TAINT_KEY, value="true", effect="NO_SCHEDULE")],
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*attachments, node_entry, *args.before_compute],
                # Karpenter and operators may scale the group; do not fight them on desiredSize.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
        self.register_outputs(
            {
                "nodeGroupName": self.node_group.node_group_name,
                "maxPods": self.max_pods,
                "nodeRoleArn": self.node_role.arn,
            }
        )
