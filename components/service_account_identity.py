"""`ServiceAccountIdentity`: an IAM role for one Kubernetes ServiceAccount, bound the way the cluster allows.

`pod-identity` (EKS): a role trusting pods.eks.amazonaws.com plus a PodIdentityAssociation; the
ServiceAccount needs no annotation. `irsa` (EKS or K3s): a role trusting the cluster's OIDC provider
for exactly `system:serviceaccount:<ns>:<sa>`; the ServiceAccount must carry
`service_account_annotations`. Controllers (Karpenter, add-ons) and workloads all bind through here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components import iam_documents as iam
from components.cluster_handle import ClusterHandle
from components.trust_policies import irsa_trust, pod_identity_trust

IRSA_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"

BindingMethod = Literal["pod-identity", "irsa"]


@dataclass
class ServiceAccountIdentityArgs:
    cluster: ClusterHandle
    namespace: str
    service_account: str
    method: BindingMethod
    account_id: str
    tags: dict[str, str]
    inline_policy_json: pulumi.Input[str] | None = None
    managed_policy_arns: list[str] = field(default_factory=list)
    role_name: str | None = None


def default_method(cluster: ClusterHandle) -> BindingMethod:
    """Pod Identity where the control plane has it (no issuer coupling), IRSA elsewhere."""
    return "pod-identity" if cluster.supports_pod_identity else "irsa"


class ServiceAccountIdentity(pulumi.ComponentResource):
    role: aws.iam.Role
    role_arn: pulumi.Output[str]
    service_account_annotations: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: ServiceAccountIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:identity:ServiceAccountIdentity", name, None, opts)
        cluster = args.cluster
        child = pulumi.ResourceOptions(parent=self)
        if args.method == "pod-identity":
            if cluster.eks_cluster is None:
                raise ValueError(f"{name}: pod-identity needs an EKS cluster; use irsa on {cluster.kind}")
            trust: pulumi.Input[str] = iam.to_json(pod_identity_trust(args.account_id))
        else:
            if cluster.oidc_provider_arn is None or cluster.oidc_issuer_url is None:
                raise ValueError(f"{name}: irsa needs the cluster's OIDC provider and issuer URL")
            trust = pulumi.Output.all(cluster.oidc_provider_arn, cluster.oidc_issuer_url).apply(
                lambda a: iam.to_json(irsa_trust(a[0], a[1], args.namespace, args.service_account))
            )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            assume_role_policy=trust,
            tags={**args.tags, "k8s-platform/service-account": f"{args.namespace}/{args.service_account}"},
            opts=child,
        )
        if args.inline_policy_json is not None:
            aws.iam.RolePolicy(f"{name}-policy", role=self.role.id, policy=args.inline_policy_json, opts=child)
        for i, arn in enumerate(args.managed_policy_arns):
            aws.iam.RolePolicyAttachment(f"{name}-managed-{i}", role=self.role.name, policy_arn=arn, opts=child)
        self.role_arn = self.role.arn
        if args.method == "pod-identity":
            aws.eks.PodIdentityAssociation(
                f"{name}-association",
                cluster_name=cluster.eks_cluster.name,
                namespace=args.namespace,
                service_account=args.service_account,
                role_arn=self.role.arn,
                tags=args.tags,
                opts=child,
            )
            self.service_account_annotations = pulumi.Output.from_input({})
        else:
            self.service_account_annotations = self.role.arn.apply(lambda arn: {IRSA_ROLE_ANNOTATION: arn})
        self.register_outputs({"roleArn": self.role_arn, "method": args.method})
