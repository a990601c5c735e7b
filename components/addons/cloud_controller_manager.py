"""`CloudControllerManager`: the AWS cloud controller manager of a K3s cluster (EKS runs its own).

K3s servers run with `--disable-cloud-controller` and a kubelet `provider-id`, so every node starts
tainted `node.cloudprovider.kubernetes.io/uninitialized` until this controller has set its zone
and addresses. Nothing else schedules before that, including the pod-identity webhook; so:

- `stack.py` creates it right after the K3s servers and appends it to `ClusterHandle.ready`,
  which the webhook, Karpenter and the other add-ons wait on;
- its IRSA credentials are projected explicitly into the pod (token volume + `AWS_ROLE_ARN`),
  not injected by the webhook it precedes;
- its IAM is `ServiceAccountIdentity` like every controller; the service controller (and its ELB
  permissions) only runs when the AWS Load Balancer Controller is off;
- it never needs IMDS (unreachable from its pod, hop limit 1): a `--cloud-config` ConfigMap names
  the region, VPC, a subnet and the cluster id (`addon_values.ccm_cloud_config`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.addons import values as values
from components.addons.cluster_addons import addon_identity, pinned_release
from components.addons.policies import cloud_controller_manager_policy
from components.config import StackConfig, kubernetes_minor
from components.config.k3s_rules import control_plane_version
from components.core import iam_documents as iam
from components.core.cluster_handle import ClusterHandle
from components.core.pins import CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS
from components.identity import ServiceAccountIdentity


@dataclass(frozen=True)
class CloudControllerManagerArgs:
    config: StackConfig
    """The stack: names, region, account, the K3s version (image tag) and whether the load balancer
    controller is on (then the service controller is off)."""
    cluster: ClusterHandle
    """The K3s cluster, servers only in `ready`: the controller is what initialises the nodes."""
    vpc_id: pulumi.Input[str]
    """The cluster's VPC, named in `--cloud-config` and scoping the controller's policy."""
    subnet_id: pulumi.Input[str]
    """A private subnet of the cluster: the provider's "own" subnet in its IMDS-free mode."""

    @classmethod
    def from_stack(
        cls, cfg: StackConfig, cluster: ClusterHandle, vpc_id: pulumi.Input[str], subnet_id: pulumi.Input[str]
    ) -> "CloudControllerManagerArgs":
        return cls(config=cfg, cluster=cluster, vpc_id=vpc_id, subnet_id=subnet_id)


class CloudControllerManager(pulumi.ComponentResource):
    identity: ServiceAccountIdentity  # the controller's role and its IRSA binding
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: CloudControllerManagerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:addons:CloudControllerManager", name, None, opts)
        cfg, cluster = args.config, args.cluster
        if cluster.kind != "k3s":
            raise ValueError(f"{name}: the AWS cloud controller add-on is for k3s; EKS runs its own")
        manages_lbs = not cfg.addons.aws_load_balancer_controller.enabled
        policy = pulumi.Output.from_input(args.vpc_id).apply(
            lambda vpc: iam.to_json(
                cloud_controller_manager_policy(vpc, cfg.region, cfg.account_id, manages_load_balancers=manages_lbs)
            )
        )
        self.identity = addon_identity(
            f"{name}-identity", cfg, cluster, "cloud-controller-manager", values.CCM_SERVICE_ACCOUNT, policy, None, self
        )
        release_values = values.cloud_controller_manager_values(
            cluster_name=cfg.cluster_name,
            region=cfg.region,
            # The servers' minor, the deployed one while they are being upgraded (never newer than them).
            image_tag=CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS[kubernetes_minor(control_plane_version(cfg))],
            role_arn=self.identity.role_arn,
            scheduling=cluster.system_scheduling,
            manages_load_balancers=manages_lbs,
        )
        cloud_config = k8s.core.v1.ConfigMap(
            f"{name}-cloud-config",
            metadata={
                "name": values.CCM_CLOUD_CONFIG_MAP,
                "namespace": values.KUBE_SYSTEM,
                "labels": {"app.kubernetes.io/managed-by": "pulumi"},
            },
            data={
                values.CCM_CLOUD_CONFIG_FILE: pulumi.Output.all(args.vpc_id, args.subnet_id).apply(
                    lambda a: values.ccm_cloud_config(
                        region=cfg.region, vpc_id=a[0], subnet_id=a[1], cluster_name=cfg.cluster_name
                    )
                )
            },
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.k8s_provider, depends_on=list(cluster.ready)),
        )
        self.release = pinned_release(
            f"{name}-release",
            values.CCM_RELEASE,
            "aws-cloud-controller-manager",
            release_values,
            pulumi.ResourceOptions(
                parent=self, provider=cluster.k8s_provider, depends_on=[*cluster.ready, self.identity, cloud_config]
            ),
        )
        self.register_outputs({"release": self.release.name, "roleArn": self.identity.role_arn})
