"""Pure renderer of AL2023 user-data: an `nodeadm` NodeConfig in a MIME multi-part document.

AL2023 EKS AMIs run `nodeadm`, which reads every `application/node.eks.aws` part of the user-data
and merges them in order, the last document winning. For managed node groups without a custom AMI,
EKS appends its own part with the cluster details (name, endpoint, CA) and its own maxPods, so ours
carries only the maxPods that fits custom networking plus prefix delegation (it takes effect where
EKS adds none; see `eks_system_nodes`). Self-managed nodes pass the cluster details here.

The user-data never carries a secret: nodes authenticate with their instance role (access entry
EC2_LINUX), and the CA is public data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

NODECONFIG_API_VERSION = "node.eks.aws/v1alpha1"
NODECONFIG_CONTENT_TYPE = "application/node.eks.aws"
# A fixed boundary keeps the rendered user-data (and so the launch template) stable between runs.
MIME_BOUNDARY = "==K8S-PLATFORM-NODEADM=="


@dataclass(frozen=True)
class NodeadmCluster:
    """Cluster details for nodes EKS does not bootstrap itself (self-managed)."""

    name: str
    api_server_endpoint: str
    certificate_authority_b64: str
    service_cidr: str


def render_node_config(
    *,
    max_pods: int,
    cluster: NodeadmCluster | None = None,
    kubelet_flags: list[str] | None = None,
    kubelet_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The NodeConfig document (a dict, for tests and for `render_user_data`)."""
    if max_pods < 1:
        raise ValueError(f"maxPods must be positive, got {max_pods}")
    spec: dict[str, Any] = {}
    if cluster is not None:
        spec["cluster"] = {
            "name": cluster.name,
            "apiServerEndpoint": cluster.api_server_endpoint,
            "certificateAuthority": cluster.certificate_authority_b64,
            "cidr": cluster.service_cidr,
        }
    kubelet: dict[str, Any] = {"config": {**(kubelet_config or {}), "maxPods": max_pods}}
    if kubelet_flags:
        kubelet["flags"] = list(kubelet_flags)
    spec["kubelet"] = kubelet
    return {"apiVersion": NODECONFIG_API_VERSION, "kind": "NodeConfig", "spec": spec}


def render_user_data(node_config: dict[str, Any], *, extra_parts: list[tuple[str, str]] | None = None) -> str:
    """A MIME multipart/mixed document: the NodeConfig part, then any (content-type, body) parts."""
    parts = [(NODECONFIG_CONTENT_TYPE, yaml.safe_dump(node_config, sort_keys=False))]
    parts += list(extra_parts or [])
    lines = ["MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{MIME_BOUNDARY}"', ""]
    for content_type, body in parts:
        if MIME_BOUNDARY in body:
            raise ValueError("a user-data part contains the MIME boundary")
        lines += [f"--{MIME_BOUNDARY}", f"Content-Type: {content_type}", "", body.rstrip("\n"), ""]
    lines.append(f"--{MIME_BOUNDARY}--")
    return "\n".join(lines) + "\n"
