"""`AccessInstance`: the SSM-only instance `platformctl connect` forwards the private EKS API through.

Enabled by `k8s-platform:cluster.eks.accessInstance.enabled` (off by default). It is the
bastion-free answer to "the endpoint is private, how do I run kubectl": Session Manager port
forwarding, so the instance has
- no inbound rule at all (its security group only lets it reach HTTPS: the SSM endpoints and the API),
- no public IP, no SSH key, no user-data,
- IMDSv2 required with hop limit 1, an encrypted root volume,
- a role with AmazonSSMManagedInstanceCore only: it holds no Kubernetes or EKS permission. The
  operator authenticates to the API with their own IAM identity (`aws eks get-token`) through the tunnel.
The cluster security group admits HTTPS from this instance's group; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import StackConfig
from components.core import iam_documents as iam
from components.core.api_access import API_ACCESS_TAG
from components.core.iam_documents import SSM_CORE_POLICY_ARN
from components.core.instance_types import al2023_ami_parameter, architecture

ROOT_GIB = 8  # AL2023's image size; nothing is stored on the instance
EKS_API_PORT = 443


@dataclass(frozen=True)
class AccessInstanceArgs:
    cluster_name: str
    """Names the role, the instance profile, the security group and the instance."""
    instance_type: str
    """`cluster.eks.accessInstance.instanceType` (its architecture picks the AL2023 image)."""
    vpc_id: pulumi.Input[str]
    """The VPC of the instance's security group."""
    subnet_id: pulumi.Input[str]
    """A private subnet: the instance has no public address."""
    cluster_security_group_id: pulumi.Input[str]
    """The EKS cluster security group (the API ENIs), opened to the instance on 443."""
    tags: dict[str, str]
    """Tags for every taggable resource."""

    @classmethod
    def from_stack(
        cls,
        cfg: StackConfig,
        vpc_id: pulumi.Input[str],
        subnet_id: pulumi.Input[str],
        cluster_security_group_id: pulumi.Input[str],
    ) -> "AccessInstanceArgs":
        return cls(
            cluster_name=cfg.cluster_name,
            instance_type=cfg.cluster.eks.access_instance.instance_type,
            vpc_id=vpc_id,
            subnet_id=subnet_id,
            cluster_security_group_id=cluster_security_group_id,
            tags=cfg.resource_tags(),
        )


class AccessInstance(pulumi.ComponentResource):
    instance_id: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: AccessInstanceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:eks:AccessInstance", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster, tags = args.cluster_name, args.tags
        role = aws.iam.Role(
            f"{name}-role",
            name=f"{cluster}-api-access",
            assume_role_policy=iam.to_json(iam.service_trust("ec2.amazonaws.com")),
            description=f"SSM-only access instance of {cluster} (Session Manager, nothing else)",
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicyAttachment(f"{name}-ssm", role=role.name, policy_arn=SSM_CORE_POLICY_ARN, opts=child)
        profile = aws.iam.InstanceProfile(
            f"{name}-profile", name=f"{cluster}-api-access", role=role.name, tags=tags, opts=child
        )
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            revoke_rules_on_delete=True,
            description="EKS API access instance: no inbound rule; HTTPS out to SSM and the API only",
            tags={**tags, "Name": f"{cluster}-api-access"},
            opts=child,
        )
        # Session Manager is an outbound connection from the agent; the tunnel to the API is too.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-https-out",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4="0.0.0.0/0",
            description="SSM/EC2 messages endpoints and the EKS API",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-api-from-access",
            security_group_id=args.cluster_security_group_id,
            ip_protocol="tcp",
            from_port=EKS_API_PORT,
            to_port=EKS_API_PORT,
            referenced_security_group_id=group.id,
            description="EKS API from the SSM access instance",
            tags=tags,
            opts=child,
        )
        metadata = {
            "http_endpoint": "enabled",
            "http_tokens": "required",
            "http_put_response_hop_limit": 1,
            "instance_metadata_tags": "disabled",
        }
        # The template only carries the AMI: `resolve:ssm:` follows the current AL2023 without an invoke.
        template = aws.ec2.LaunchTemplate(
            f"{name}-template",
            name_prefix=f"{cluster}-api-access-",
            image_id=f"resolve:ssm:{al2023_ami_parameter(architecture(args.instance_type))}",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(**metadata),
            tags=tags,
            opts=child,
        )
        instance = aws.ec2.Instance(
            f"{name}",
            instance_type=args.instance_type,
            subnet_id=args.subnet_id,
            launch_template=aws.ec2.InstanceLaunchTemplateArgs(id=template.id, version="$Latest"),
            vpc_security_group_ids=[group.id],
            iam_instance_profile=profile.name,
            associate_public_ip_address=False,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(**metadata),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_size=ROOT_GIB, volume_type="gp3", encrypted=True, delete_on_termination=True
            ),
            tags={**tags, "Name": f"{cluster}-api-access", API_ACCESS_TAG: cluster},
            volume_tags=tags,
            opts=child,
        )
        self.instance_id = instance.id
        self.security_group_id = group.id
        self.register_outputs({"instanceId": self.instance_id, "securityGroupId": self.security_group_id})
