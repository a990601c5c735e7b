"""`FargateProfiles`: EKS Fargate profiles from `cluster.eks.fargateProfiles`, with one pod execution role.

What Fargate is and is not (the EKS first-impression write-up): a pod runs on Fargate when, at
scheduling time, it matches a profile's selector (namespace plus labels); each pod gets its own
micro-VM in one of the profile's subnets (private subnets only: Fargate pods never get a public IP),
with the VPC CNI and the cluster security group; DaemonSets do not run there, and neither does the
EKS Pod Identity agent, so config refuses a profile selecting a Pod Identity workload's namespace
(IRSA works: the SDK exchanges the projected token with STS itself).

The pod execution role is what the Fargate infrastructure (not the pod) uses to pull images and ship
logs: it trusts `eks-fargate-pods.amazonaws.com` only for this cluster's Fargate profiles
(`aws:SourceArn`), and carries `AmazonEKSFargatePodExecutionRolePolicy`. EKS creates the access entry
of type `FARGATE_LINUX` for it itself when a profile is created. EKS creates one profile at a time
per cluster, so the profiles are chained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import StackConfig
from components.config.data_plane import FargateProfileConfig
from components.core import iam_documents as iam
from components.core.cluster_handle import ClusterHandle

FARGATE_PODS_PRINCIPAL = "eks-fargate-pods.amazonaws.com"


def fargate_profile_arn_pattern(region: str, account_id: str, cluster_name: str) -> str:
    """Every Fargate profile of one cluster (`.../fargateprofile/<cluster>/<profile>/<uuid>`)."""
    return f"arn:{iam.PARTITION}:eks:{region}:{account_id}:fargateprofile/{cluster_name}/*"


def pod_execution_trust(region: str, account_id: str, cluster_name: str) -> dict[str, Any]:
    """Trust of the pod execution role: the Fargate service, for this cluster's profiles only
    (the confused-deputy guard AWS documents)."""
    return iam.service_trust(
        FARGATE_PODS_PRINCIPAL,
        conditions={"ArnLike": {"aws:SourceArn": fargate_profile_arn_pattern(region, account_id, cluster_name)}},
    )


def profile_selectors(profile: FargateProfileConfig) -> list[dict[str, Any]]:
    """The profile's selectors as EKS takes them (labels omitted when empty)."""
    return [{"namespace": s.namespace, **({"labels": dict(s.labels)} if s.labels else {})} for s in profile.selectors]


@dataclass(frozen=True)
class FargateProfilesArgs:
    profiles: tuple[FargateProfileConfig, ...]
    """The `cluster.eks.fargateProfiles` entries, at least one."""
    cluster: ClusterHandle
    """The EKS cluster the profiles belong to."""
    private_subnet_ids: tuple[pulumi.Input[str], ...]
    """The private (node) subnets, one per zone: where Fargate pods get their ENI."""
    region: str
    """The trust condition's ARN pattern."""
    account_id: str
    """The trust condition's ARN pattern."""
    tags: dict[str, str]
    """Tags for the role and the profiles."""

    @classmethod
    def from_stack(
        cls, cfg: StackConfig, cluster: ClusterHandle, private_subnet_ids: list[pulumi.Input[str]]
    ) -> "FargateProfilesArgs":
        return cls(
            profiles=tuple(cfg.cluster.eks.fargate_profiles),
            cluster=cluster,
            private_subnet_ids=tuple(private_subnet_ids),
            region=cfg.region,
            account_id=cfg.account_id,
            tags=cfg.resource_tags(),
        )


class FargateProfiles(pulumi.ComponentResource):
    pod_execution_role: aws.iam.Role
    profiles: dict[str, aws.eks.FargateProfile]  # by profile name

    def __init__(self, name: str, args: FargateProfilesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:eks:FargateProfiles", name, None, opts)
        cluster = args.cluster.eks_cluster
        if cluster is None:
            raise ValueError(f"{name}: Fargate profiles need an EKS cluster")
        child = pulumi.ResourceOptions(parent=self)
        cluster_name = args.cluster.name
        self.pod_execution_role = aws.iam.Role(
            f"{name}-pod-execution",
            name=f"{cluster_name}-fargate-pod-execution",
            assume_role_policy=iam.to_json(pod_execution_trust(args.region, args.account_id, cluster_name)),
            description=f"Fargate pod execution role of {cluster_name} (image pulls, logs)",
            tags=args.tags,
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-pod-execution-policy",
            role=self.pod_execution_role.name,
            policy_arn=iam.EKS_FARGATE_POD_EXECUTION_POLICY_ARN,
            opts=child,
        )
        self.profiles = {}
        previous: list[pulumi.Resource] = [attachment, *args.cluster.ready]
        for profile in args.profiles:
            created = aws.eks.FargateProfile(
                f"{name}-{profile.name}",
                cluster_name=cluster.name,
                fargate_profile_name=profile.name,
                pod_execution_role_arn=self.pod_execution_role.arn,
                subnet_ids=list(args.private_subnet_ids),
                selectors=[
                    aws.eks.FargateProfileSelectorArgs(namespace=s["namespace"], labels=s.get("labels"))
                    for s in profile_selectors(profile)
                ],
                tags=args.tags,
                # EKS refuses a second profile while one is being created or deleted (ResourceInUse).
                opts=pulumi.ResourceOptions(parent=self, depends_on=previous),
            )
            self.profiles[profile.name] = created
            previous = [created]
        self.register_outputs(
            {
                "podExecutionRoleArn": self.pod_execution_role.arn,
                "profiles": {n: p.arn for n, p in self.profiles.items()},
            }
        )
