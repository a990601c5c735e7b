"""`ApiPortForward`: the SSM Session document and the operator policy of `platformctl connect`.

Documents come from `components/core/api_access.py`; this component only registers them.
The policy is created, not attached: operators attach it to their own role or permission set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import StackConfig
from components.core import iam_documents as iam
from components.core.api_access import operator_policy, port_forward_document, ssm_document_name


@dataclass(frozen=True)
class ApiPortForwardArgs:
    cluster_name: str
    """Names the SSM document and the operator policy; the policy admits only this cluster's targets."""
    region: str
    """The operator policy's region."""
    account_id: str
    """The operator policy's account."""
    api_host: pulumi.Input[str]
    """The private API endpoint's DNS name, as the server certificate names it: the forwarding target."""
    api_port: int
    """The API's port (6443 on K3s, 443 on EKS)."""
    tags: dict[str, str]
    """Tags for the document and the policy."""

    @classmethod
    def from_stack(cls, cfg: StackConfig, api_host: pulumi.Input[str], api_port: int) -> "ApiPortForwardArgs":
        return cls(
            cluster_name=cfg.cluster_name,
            region=cfg.region,
            account_id=cfg.account_id,
            api_host=api_host,
            api_port=api_port,
            tags=cfg.resource_tags(),
        )


class ApiPortForward(pulumi.ComponentResource):
    document_name: pulumi.Output[str]
    operator_policy_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ApiPortForwardArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:network:ApiPortForward", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        content = pulumi.Output.from_input(args.api_host).apply(
            lambda host: json.dumps(
                port_forward_document(cluster_name=args.cluster_name, api_host=host, api_port=args.api_port)
            )
        )
        document = aws.ssm.Document(
            f"{name}-document",
            name=ssm_document_name(args.cluster_name),
            document_type="Session",
            document_format="JSON",
            content=content,
            tags=args.tags,
            opts=child,
        )
        policy = aws.iam.Policy(
            f"{name}-operator",
            name=f"{args.cluster_name}-api-connect",
            description=f"platformctl connect: SSM port forwarding to the {args.cluster_name} API only",
            policy=iam.to_json(
                operator_policy(cluster_name=args.cluster_name, region=args.region, account_id=args.account_id)
            ),
            tags=args.tags,
            opts=child,
        )
        self.document_name = document.name
        self.operator_policy_arn = policy.arn
        self.register_outputs({"documentName": self.document_name, "operatorPolicyArn": self.operator_policy_arn})
