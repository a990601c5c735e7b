"""`CrossAccountTarget`: one role in another account a workload reaches, and the trust policy that
role's account must hold (`k8s-platform:identity:CrossAccountTarget`).

The target role belongs to another account, so this stack never creates or changes it: its trust
policy is rendered here and exported (`identities[<workload>].crossAccount[i].targetTrustPolicy`)
for the target account's owners to apply. The document and what it must admit (the source role,
the external id, the session tags) are this component's inputs, so the policy pack sees and checks
them in the same preview as the roles and associations (`cross-account-target-trust-shape`).

- `native`: the Pod Identity association's target role. EKS assumes it with the workload role's
  session and `sts:ExternalId` = the association's `externalId` (an output of the association, so
  the document is an Output); the pod's credentials are the target role's session, delivered by
  the Pod Identity agent: the app needs no SDK configuration.
- `manual`: the pod's credentials are the workload role's; the app (or an SDK profile with
  `role_arn`/`credential_source`) calls `sts:AssumeRole` on the target. No external id: the
  source role is the only principal trusted. Pod Identity sessions carry transitive session tags,
  so the hop from a Pod Identity role needs `sts:TagSession` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.config import CrossAccountMode
from components.core import iam_documents as iam
from components.core.trust_policies import cross_account_target_trust, pod_identity_target_trust
from components.identity.caller_identity import cross_account_caller_identity, native_target_caller_identity

TYPE_TOKEN = "k8s-platform:identity:CrossAccountTarget"


def target_trust_json(mode: CrossAccountMode, source_role_arn: str, session_tags: bool, external_id: str | None) -> str:
    if mode == "native":
        if not external_id:
            raise ValueError("a native target trust needs the association's externalId")
        return iam.to_json(pod_identity_target_trust(source_role_arn, external_id, session_tags=session_tags))
    return iam.to_json(cross_account_target_trust(source_role_arn, carries_session_tags=session_tags))


def pod_credentials(mode: CrossAccountMode, source_role_arn: str, target_role_arn: str) -> dict[str, Any]:
    """What the pod's AWS credentials are, and what the app must do to act as the target role."""
    if mode == "native":
        return {
            "roleArn": target_role_arn,
            "deliveredBy": "eks-pod-identity-agent",
            "appMustAssumeRole": False,
            "summary": (
                "the pod's credentials are the target role's session: EKS assumes the workload role, then the "
                "target role, and the Pod Identity agent serves the result (no SDK configuration in the app)"
            ),
        }
    return {
        "roleArn": source_role_arn,
        "deliveredBy": "the workload's own binding",
        "appMustAssumeRole": True,
        "summary": (
            f"the pod's credentials are the workload role's; the app calls sts:AssumeRole on {target_role_arn} "
            "(or uses an SDK profile with role_arn and credential_source) to act in the target account"
        ),
    }


@dataclass(frozen=True)
class CrossAccountTargetArgs:
    """Built per target by `WorkloadIdentity` from one workload's `crossAccount`: no `from_stack`."""

    mode: CrossAccountMode
    """`native` (the association's target role) or `manual` (the app assumes the role)."""
    workload: str
    """The workload's name (labels the outputs)."""
    source_role_arn: pulumi.Input[str]
    """The workload role: the one principal the target trust admits."""
    target_role_arn: str
    """The role in the other account."""
    session_tags: bool
    """Sessions arriving at the target carry session tags (Pod Identity's, transitive), so the trust
    also allows `sts:TagSession`."""
    external_id: pulumi.Input[str] | None = None
    """`native`: the association's `externalId` output, required in the trust. Default: none (`manual`)."""


class CrossAccountTarget(pulumi.ComponentResource):
    trust_policy: pulumi.Output[str]  # the target role's trust policy (JSON), for the target account
    caller_identity: str  # what `sts get-caller-identity` shows once the pod acts as the target role
    credentials: pulumi.Output[dict[str, Any]]  # what the pod's credentials are (pod_credentials)

    def __init__(self, name: str, args: CrossAccountTargetArgs, opts: pulumi.ResourceOptions | None = None):
        if args.mode == "native" and args.external_id is None:
            raise ValueError(f"{name}: a native target needs the association's externalId")
        self.trust_policy = pulumi.Output.all(
            source=args.source_role_arn, external_id=args.external_id if args.mode == "native" else None
        ).apply(lambda v: target_trust_json(args.mode, v["source"], args.session_tags, v["external_id"]))
        self.credentials = pulumi.Output.from_input(args.source_role_arn).apply(
            lambda source: pod_credentials(args.mode, source, args.target_role_arn)
        )
        self.caller_identity = (
            native_target_caller_identity(args.target_role_arn)
            if args.mode == "native"
            else cross_account_caller_identity(args.target_role_arn)
        )
        # The inputs the policy pack checks: the document and everything it must admit.
        props: dict[str, Any] = {
            "mode": args.mode,
            "workload": args.workload,
            "sourceRoleArn": args.source_role_arn,
            "targetRoleArn": args.target_role_arn,
            "sessionTags": args.session_tags,
            "targetTrustPolicy": self.trust_policy,
        }
        if args.mode == "native":
            props["externalId"] = args.external_id
        super().__init__(TYPE_TOKEN, name, props, opts)
        self.register_outputs({"targetTrustPolicy": self.trust_policy, "credentials": self.credentials})
