"""Pure parts of the Karpenter component: chart values per control plane, and the K3s node user-data."""

from __future__ import annotations

import pytest
import yaml

from components.core.cluster_handle import SystemScheduling
from components.k3s.user_data import K3S_CONFIG_DIR
from components.karpenter.controller import K3sNodeJoin, controller_chart_values, k3s_node_user_data
from tests.cloud_init_schema import schema_errors

SCHEDULING = SystemScheduling(
    node_selector={"k8s-platform/node-pool": "system"},
    tolerations=[{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}],
)
JOIN = K3sNodeJoin(
    server_url="https://api.internal:6443",
    token_parameter_name="/k8s-platform/dev/k3s/agent-token",
    join_key_arn="arn:aws:kms:us-east-1:111111111111:key/x",
    k3s_version="v1.35.1+k3s1",
)


def values(kind: str, **over) -> dict:
    args = dict(
        cluster_name="c",
        cluster_endpoint="https://api",
        queue_name="c-karpenter-interruption",
        region="us-east-1",
        replicas=2,
        scheduling=SCHEDULING,
        kind=kind,
        irsa_role_arn="arn:aws:iam::111111111111:role/c-karpenter-controller" if kind == "k3s" else None,
    )
    return controller_chart_values(**{**args, **over})


def test_settings_scheduling_replicas_and_pdb():
    v = values("eks")
    assert v["settings"] == {
        "clusterName": "c",
        "clusterEndpoint": "https://api",
        "interruptionQueue": "c-karpenter-interruption",
        "reservedENIs": "1",
    }
    assert v["nodeSelector"] == {"k8s-platform/node-pool": "system"}
    assert v["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]
    assert v["replicas"] == 2 and v["podDisruptionBudget"] == {"name": "karpenter", "maxUnavailable": 1}
    assert v["serviceAccount"] == {"create": True, "name": "karpenter"}
    # Pod Identity: only the region (IMDS is out of reach with hop limit 1), no web-identity plumbing.
    assert v["controller"]["env"] == [{"name": "AWS_REGION", "value": "us-east-1"}]
    assert "extraVolumes" not in v


def test_k3s_values_project_the_irsa_token_and_keep_the_primary_eni():
    v = values("k3s", replicas=1)
    env = {e["name"]: e["value"] for e in v["controller"]["env"]}
    assert env == {
        "AWS_ROLE_ARN": "arn:aws:iam::111111111111:role/c-karpenter-controller",
        "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
        "AWS_REGION": "us-east-1",
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
    }
    (mount,) = v["controller"]["extraVolumeMounts"]
    (volume,) = v["extraVolumes"]
    assert mount["name"] == volume["name"] and mount["readOnly"] is True
    assert "reservedENIs" not in v["settings"]  # no VPC CNI on K3s
    assert "annotations" not in v["serviceAccount"]


def test_k3s_values_need_the_role():
    with pytest.raises(ValueError, match="IRSA role ARN"):
        values("k3s", irsa_role_arn=None)


def k3s_config(user_data: str) -> dict:
    files = {f["path"]: f["content"] for f in yaml.safe_load(user_data)["write_files"]}
    return yaml.safe_load(files[f"{K3S_CONFIG_DIR}/config.yaml"])


def test_k3s_node_user_data_joins_tainted_with_max_pods():
    config = k3s_config(k3s_node_user_data(JOIN, "https://api.internal:6443", "us-east-1", 98))
    assert config["server"] == "https://api.internal:6443"
    assert config["node-taint"] == ["karpenter.sh/unregistered:NoExecute"]
    assert config["kubelet-arg"] == ["cloud-provider=external", "max-pods=98"]
    assert config["token-file"] == f"{K3S_CONFIG_DIR}/token"  # fetched at boot, never rendered


def test_k3s_node_user_data_passes_cloud_init_schema():
    text = k3s_node_user_data(JOIN, "https://api.internal:6443", "us-east-1", 110)
    assert schema_errors({"karpenter node": text}) == {"karpenter node": ""}
