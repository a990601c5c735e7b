"""What `platformctl connect` needs from AWS, rendered as documents (pure).

The private Kubernetes API is reached with SSM Session Manager port forwarding through an
instance inside the VPC (a K3s server, or the EKS access instance): no bastion, no SSH, no public
IP. The stack's own Session document is AWS-StartPortForwardingSessionToRemoteHost with `host`
and `portNumber` fixed to the API endpoint, so a session built on it can reach nothing else; the
operator policy allows StartSession only with that document, only on the stack's target
instances (by tag), and only the caller's own sessions may be resumed or ended.
"""

from __future__ import annotations

from typing import Any

from components.core import iam_documents as iam

# The tag that marks an instance as a port-forwarding target of one cluster (value: cluster name).
API_ACCESS_TAG = "k8s-platform/api-access"
DEFAULT_LOCAL_PORT = 8443
_PORT_PATTERN = r"^([1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5])$"


def ssm_document_name(cluster_name: str) -> str:
    return f"{cluster_name}-api-port-forward"


def port_forward_document(*, cluster_name: str, api_host: str, api_port: int) -> dict[str, Any]:
    """A Session document (sessionType Port) forwarding a local port to the API endpoint only."""
    return {
        "schemaVersion": "1.0",
        "description": f"Forward a local port to the {cluster_name} Kubernetes API ({api_host}:{api_port}) only",
        "sessionType": "Port",
        "parameters": {
            "localPortNumber": {
                "type": "String",
                "description": "Port on the operator's machine (kubeconfig server https://127.0.0.1:<port>)",
                "allowedPattern": _PORT_PATTERN,
                "default": str(DEFAULT_LOCAL_PORT),
            },
        },
        "properties": {
            "type": "LocalPortForwarding",
            "host": api_host,
            "portNumber": str(api_port),
            "localPortNumber": "{{ localPortNumber }}",
        },
    }


def operator_policy(*, cluster_name: str, region: str, account_id: str) -> dict[str, Any]:
    """The identity policy an operator (or their SSO permission set) needs for `platformctl connect`."""
    document_arn = f"arn:aws:ssm:{region}:{account_id}:document/{ssm_document_name(cluster_name)}"
    return iam.document(
        iam.statement(
            "ssm:StartSession",
            f"arn:aws:ec2:{region}:{account_id}:instance/*",
            sid="TargetInstances",
            conditions={
                "StringEquals": {f"ssm:resourceTag/{API_ACCESS_TAG}": cluster_name},
                "BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"},
            },
        ),
        iam.statement("ssm:StartSession", document_arn, sid="PortForwardDocumentOnly"),
        iam.statement(
            ["ssm:TerminateSession", "ssm:ResumeSession"],
            f"arn:aws:ssm:{region}:{account_id}:session/${{aws:userid}}-*",
            sid="OwnSessionsOnly",
        ),
        # Describe calls have no resource-level permissions; connect uses them to find a running target.
        iam.statement(
            ["ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups"],
            "*",
            sid="FindTarget",
            conditions={"StringEquals": {"aws:RequestedRegion": region}},
        ),
    )
