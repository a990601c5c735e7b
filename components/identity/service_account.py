"""`ServiceAccountIdentity`: an IAM role for one Kubernetes ServiceAccount, bound the way the cluster allows.

`pod-identity` (EKS): a role trusting pods.eks.amazonaws.com plus a PodIdentityAssociation; the
trust also requires the session tags EKS sets for this cluster/namespace/ServiceAccount, and the
ServiceAccount needs no annotation. `irsa` (EKS or K3s): a role trusting the cluster's OIDC
provider (and K3s standby issuers) for exactly `system:serviceaccount:<ns>:<sa>`; the
ServiceAccount must carry `service_account_annotations`. Controllers (Karpenter, add-ons) and
workloads (`WorkloadIdentity`) all bind through here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.core import iam_documents as iam
from components.core.cluster_handle import ClusterHandle
from components.core.trust_policies import irsa_trust, pod_identity_trust

IRSA_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"

BindingMethod = Literal["pod-identity", "irsa"]


@dataclass(frozen=True)
class ServiceAccountIdentityArgs:
    """Built per controller or workload by the component that owns it (add-ons, Karpenter, workload
    identities), not from the stack: no `from_stack`."""

    cluster: ClusterHandle
    """The cluster: its name (Pod Identity), its issuers (IRSA) and its `ready` set."""
    namespace: str
    """Namespace of the bound ServiceAccount (the trust policy's `sub`)."""
    service_account: str
    """Name of the bound ServiceAccount (the trust policy's `sub`)."""
    method: BindingMethod
    """`pod-identity` (an association, EKS only) or `irsa` (a trust on the OIDC issuer(s))."""
    account_id: str
    """The account the Pod Identity trust names as the source account."""
    tags: dict[str, str]
    """Tags for the role and the association (plus `k8s-platform/service-account`)."""
    inline_policy_json: pulumi.Input[str] | None = None
    """The role's one inline policy. Default: none."""
    managed_policy_arns: list[str] = field(default_factory=list)
    """Managed policies attached to the role. Default: none."""
    role_name: str | None = None
    """The role's name. Default: a name Pulumi generates."""
    oidc_issuers: list[tuple[pulumi.Input[str], pulumi.Input[str]]] | None = None
    """irsa: the (oidc_provider_arn, issuer_url) pairs to trust. Default: the cluster's active issuer
    plus its standby issuers."""
    target_role_arn: str | None = None
    """pod-identity: the association's target role in another account; EKS assumes it with this role's
    session and the pod gets the target role's credentials. Default: none (the pod gets this role)."""
    disable_session_tags: bool = False
    """pod-identity: EKS adds no session tags, so the trust checks the source account only (the
    ServiceAccount tags it would pin are absent). Default: tags on, pinned in the trust."""
    session_policy_json: str | None = None
    """pod-identity: the association's session policy (needs `disable_session_tags`). Default: none."""


def default_method(cluster: ClusterHandle) -> BindingMethod:
    """Pod Identity where the control plane has it (no issuer coupling), IRSA elsewhere."""
    return "pod-identity" if cluster.supports_pod_identity else "irsa"


def cluster_oidc_issuers(cluster: ClusterHandle) -> list[tuple[pulumi.Input[str], pulumi.Input[str]]]:
    if cluster.oidc_provider_arn is None or cluster.oidc_issuer_url is None:
        return []
    return [(cluster.oidc_provider_arn, cluster.oidc_issuer_url), *cluster.standby_oidc_issuers]


def role_with_policies(
    parent: pulumi.Resource,
    name: str,
    trust_policy_json: pulumi.Input[str],
    tags: dict[str, str],
    inline_policy_json: pulumi.Input[str] | None = None,
    managed_policy_arns: list[str] | None = None,
    role_name: str | None = None,
) -> aws.iam.Role:
    """A role with its trust, one inline policy and managed attachments, all children of `parent`."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(f"{name}-role", name=role_name, assume_role_policy=trust_policy_json, tags=tags, opts=child)
    if inline_policy_json is not None:
        aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=inline_policy_json, opts=child)
    for i, arn in enumerate(managed_policy_arns or []):
        aws.iam.RolePolicyAttachment(f"{name}-managed-{i}", role=role.name, policy_arn=arn, opts=child)
    return role


class ServiceAccountIdentity(pulumi.ComponentResource):
    role: aws.iam.Role
    role_arn: pulumi.Output[str]
    service_account_annotations: pulumi.Output[dict[str, str]]
    association: aws.eks.PodIdentityAssociation | None  # pod-identity only (its `external_id` with a target role)

    def __init__(self, name: str, args: ServiceAccountIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:identity:ServiceAccountIdentity", name, None, opts)
        cluster = args.cluster
        # Config validation refuses these first; kept for callers that build identities in code.
        if args.method != "pod-identity" and (args.target_role_arn or args.disable_session_tags):
            raise ValueError(f"{name}: a target role and session tags are settings of a Pod Identity association")
        if args.session_policy_json and not args.disable_session_tags:
            raise ValueError(f"{name}: EKS accepts a session policy only with session tags disabled")
        if args.method == "pod-identity":
            if cluster.eks_cluster is None:
                raise ValueError(f"{name}: pod-identity needs an EKS cluster; use irsa on {cluster.kind}")
            if args.disable_session_tags:
                # No session tags to pin: the source account is all the request carries.
                trust: pulumi.Input[str] = iam.to_json(pod_identity_trust(args.account_id))
            else:
                # The EKS cluster's own name: what EKS puts in the eks-cluster-name session tag.
                trust = cluster.eks_cluster.name.apply(
                    lambda cluster_name: iam.to_json(
                        pod_identity_trust(args.account_id, cluster_name, args.namespace, args.service_account)
                    )
                )
        else:
            issuers = args.oidc_issuers if args.oidc_issuers is not None else cluster_oidc_issuers(cluster)
            if not issuers:
                raise ValueError(f"{name}: irsa needs the cluster's OIDC provider and issuer URL")
            flat = [value for pair in issuers for value in pair]
            trust = pulumi.Output.all(*flat).apply(
                lambda v: iam.to_json(
                    irsa_trust(
                        v[0],
                        v[1],
                        args.namespace,
                        args.service_account,
                        *[(v[i], v[i + 1]) for i in range(2, len(v), 2)],
                    )
                )
            )
        self.role = role_with_policies(
            self,
            name,
            trust,
            {**args.tags, "k8s-platform/service-account": f"{args.namespace}/{args.service_account}"},
            args.inline_policy_json,
            args.managed_policy_arns,
            args.role_name,
        )
        self.role_arn = self.role.arn
        self.association = None
        if args.method == "pod-identity":
            self.association = aws.eks.PodIdentityAssociation(
                f"{name}-association",
                cluster_name=cluster.eks_cluster.name,
                namespace=args.namespace,
                service_account=args.service_account,
                role_arn=self.role.arn,
                target_role_arn=args.target_role_arn,
                disable_session_tags=True if args.disable_session_tags else None,
                policy=args.session_policy_json,
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.service_account_annotations = pulumi.Output.from_input({})
        else:
            self.service_account_annotations = self.role.arn.apply(lambda arn: {IRSA_ROLE_ANNOTATION: arn})
        self.register_outputs({"roleArn": self.role_arn, "method": args.method})
