"""Launch templates and Auto Scaling groups of K3s nodes (wired by `K3sCluster`).

Every node: AL2023 from the public SSM AMI parameter (no invoke), IMDSv2 required with hop limit 1
(pods cannot reach the instance role), encrypted gp3 root, no public IP, SSM Session Manager
instead of SSH unless config names a key and a source security group.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.core.instance_types import AL2023_ROOT_DEVICE, al2023_ami_parameter, architecture

ROOT_DEVICE = AL2023_ROOT_DEVICE
TERMINATION_HOOK = "k8s-platform-drain"
# The drainer gets this long to drain before the ASG terminates anyway (CONTINUE).
TERMINATION_HOOK_SECONDS = 900


def ami_parameter(instance_type: str) -> str:
    """`resolve:ssm:` AMI id of the current AL2023 for the instance type's architecture."""
    return f"resolve:ssm:{al2023_ami_parameter(architecture(instance_type))}"


@dataclass(frozen=True)
class LaunchSpec:
    name: str  # logical name
    instance_type: str | None  # None: set per override by the ASG (mixed instances)
    ami_instance_type: str  # decides the AMI architecture
    user_data: pulumi.Input[str]  # cloud-config text (base64-encoded here)
    instance_profile_arn: pulumi.Input[str]
    security_group_ids: Sequence[pulumi.Input[str]]
    root_volume_gib: int
    key_name: str | None
    tags: dict[str, str]


def launch_template(spec: LaunchSpec, parent: pulumi.Resource) -> aws.ec2.LaunchTemplate:
    return aws.ec2.LaunchTemplate(
        spec.name,
        image_id=ami_parameter(spec.ami_instance_type),
        instance_type=spec.instance_type,
        user_data=pulumi.Output.from_input(spec.user_data).apply(lambda text: base64.b64encode(text.encode()).decode()),
        iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=spec.instance_profile_arn),
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint="enabled",
            http_tokens="required",
            http_put_response_hop_limit=1,
            instance_metadata_tags="disabled",
        ),
        block_device_mappings=[
            aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=ROOT_DEVICE,
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_type="gp3", volume_size=spec.root_volume_gib, encrypted="true", delete_on_termination="true"
                ),
            )
        ],
        network_interfaces=[
            aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                device_index=0,
                associate_public_ip_address="false",
                delete_on_termination="true",
                security_groups=list(spec.security_group_ids),
            )
        ],
        key_name=spec.key_name,
        update_default_version=True,
        tag_specifications=[
            aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=t, tags=spec.tags)
            for t in ("instance", "volume", "network-interface")
        ],
        tags=spec.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def asg_tags(tags: dict[str, str]) -> list[aws.autoscaling.GroupTagArgs]:
    return [aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=True) for k, v in sorted(tags.items())]


def termination_hook() -> aws.autoscaling.GroupInitialLifecycleHookArgs:
    """Holds a terminating instance until the drainer completes the action (or the timeout passes)."""
    return aws.autoscaling.GroupInitialLifecycleHookArgs(
        name=TERMINATION_HOOK,
        lifecycle_transition="autoscaling:EC2_INSTANCE_TERMINATING",
        default_result="CONTINUE",
        heartbeat_timeout=TERMINATION_HOOK_SECONDS,
    )


def server_group(
    name: str,
    *,
    asg_name: str,
    size: int,
    template: aws.ec2.LaunchTemplate,
    subnet_ids: Sequence[pulumi.Input[str]],
    target_group_arn: pulumi.Input[str],
    tags: dict[str, str],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> aws.autoscaling.Group:
    """On-demand servers (etcd never runs on Spot) registered in the API target group.

    `wait_for_elb_capacity`: `pulumi up` continues only once this many of the group's servers pass
    the NLB health check, i.e. the API answers.
    """
    return aws.autoscaling.Group(
        name,
        name=asg_name,
        min_size=size,
        max_size=size,
        desired_capacity=size,
        vpc_zone_identifiers=list(subnet_ids),
        launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
            id=template.id, version=template.latest_version.apply(str)
        ),
        target_group_arns=[target_group_arn],
        health_check_type="ELB",
        health_check_grace_period=600,
        wait_for_elb_capacity=size,
        wait_for_capacity_timeout="20m",
        initial_lifecycle_hooks=[termination_hook()],
        tags=asg_tags(tags),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def agent_group(
    name: str,
    *,
    asg_name: str,
    template: aws.ec2.LaunchTemplate,
    instance_types: Sequence[str],
    on_demand_base: int,
    min_size: int,
    desired_size: int,
    max_size: int,
    subnet_ids: Sequence[pulumi.Input[str]],
    tags: dict[str, str],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> aws.autoscaling.Group:
    """Spot above an on-demand base, capacity-optimized across the instance types."""
    return aws.autoscaling.Group(
        name,
        name=asg_name,
        min_size=min_size,
        max_size=max_size,
        desired_capacity=desired_size,
        vpc_zone_identifiers=list(subnet_ids),
        capacity_rebalance=True,
        mixed_instances_policy=aws.autoscaling.GroupMixedInstancesPolicyArgs(
            instances_distribution=aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
                on_demand_base_capacity=on_demand_base,
                on_demand_percentage_above_base_capacity=0,
                spot_allocation_strategy="capacity-optimized",
            ),
            launch_template=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateArgs(
                launch_template_specification=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecificationArgs(
                    launch_template_id=template.id, version=template.latest_version.apply(str)
                ),
                overrides=[
                    aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArgs(instance_type=t)
                    for t in instance_types
                ],
            ),
        ),
        instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
            strategy="Rolling",
            preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(min_healthy_percentage=50),
        ),
        initial_lifecycle_hooks=[termination_hook()],
        tags=asg_tags(tags),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
