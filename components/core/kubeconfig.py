"""Pure kubeconfig renderers. The result always holds credentials or the means to get them, so
callers wrap it with `pulumi.Output.secret`."""

from __future__ import annotations

import base64
from typing import Any

import yaml


def _b64(pem: str) -> str:
    return base64.b64encode(pem.encode()).decode()


def _kubeconfig(name: str, server: str, ca_data_b64: str, user: dict[str, Any]) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data_b64}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "users": [{"name": name, "user": user}],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def render_eks_kubeconfig(cluster_name: str, endpoint: str, ca_data_b64: str, region: str) -> str:
    """Token from `aws eks get-token` (short-lived, from the caller's IAM identity); no static secret."""
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
            "interactiveMode": "Never",
        }
    }
    return _kubeconfig(cluster_name, endpoint, ca_data_b64, user)


def render_client_cert_kubeconfig(
    name: str, server: str, server_ca_pem: str, client_cert_pem: str, client_key_pem: str
) -> str:
    """Client-certificate kubeconfig (K3s admin): everything known at deploy time."""
    user = {"client-certificate-data": _b64(client_cert_pem), "client-key-data": _b64(client_key_pem)}
    return _kubeconfig(name, server, _b64(server_ca_pem), user)
