"""`k8s-platform:addons` config: defaults, refusals with clear messages, and the K3s hand-off."""

from __future__ import annotations

import dataclasses

import pytest

from components.config import ConfigError, parse_stack_config
from components.k3s.user_data import K3sServerSettings, server_k3s_config
from tests.conftest import shipped_config


def _parse(stack: str, addons: dict | None = None, **cluster_patch):
    raw = shipped_config(stack)
    if addons is not None:
        raw["k8s-platform:addons"] = addons
    if cluster_patch:
        raw["k8s-platform:cluster"] = {**raw["k8s-platform:cluster"], **cluster_patch}
    return parse_stack_config(raw)


def test_every_addon_is_on_by_default_and_the_cloud_controller_only_on_k3s():
    dev, prod = _parse("dev"), _parse("prod")
    for cfg in (dev, prod):
        a = cfg.addons
        assert a.aws_load_balancer_controller.enabled and a.ebs_csi.enabled and a.metrics_server.enabled
        assert a.aws_load_balancer_controller.ingress_group == "shared"
    assert dev.addons.cloud_controller_manager_enabled("k3s")
    assert not prod.addons.cloud_controller_manager_enabled("eks")


def test_cloud_controller_refused_on_eks_with_the_key_path():
    with pytest.raises(ConfigError) as err:
        _parse("prod", {"cloudControllerManager": {"enabled": True}})
    assert err.value.problems == [
        "k8s-platform:addons.cloudControllerManager.enabled: only k3s runs the AWS cloud controller as an add-on; "
        "EKS runs it inside its managed control plane (set false or remove the key)"
    ]


def test_cloud_controller_off_is_accepted_on_both():
    assert not _parse("prod", {"cloudControllerManager": {"enabled": False}}).addons.cloud_controller_manager_enabled(
        "eks"
    )
    assert not _parse("dev", {"cloudControllerManager": {"enabled": False}}).addons.cloud_controller_manager_enabled(
        "k3s"
    )


def test_k3s_minor_without_a_pinned_cloud_controller_image_is_refused():
    raw_cluster = shipped_config("dev")["k8s-platform:cluster"]
    with pytest.raises(ConfigError) as err:
        _parse("dev", k3s={**raw_cluster.get("k3s", {}), "version": "v1.31.4+k3s1"})
    assert any(
        p.startswith("k8s-platform:cluster.k3s.version: no AWS cloud controller image pinned for Kubernetes 1.31")
        for p in err.value.problems
    ), err.value.problems


@pytest.mark.parametrize(
    "addons,key",
    [
        (
            {"awsLoadBalancerController": {"ingressGroup": "Shared_Group"}},
            "addons.awsLoadBalancerController.ingressGroup",
        ),
        ({"awsLoadBalancerController": {"scheme": "public"}}, "addons.awsLoadBalancerController.scheme"),
        ({"ebsCsi": {"kmsKeyArn": "alias/ebs"}}, "addons.ebsCsi.kmsKeyArn"),
        ({"metricsServer": {"enable": False}}, "addons.metricsServer.enable"),
        ({"karpenter": {"enabled": True}}, "addons.karpenter"),
    ],
)
def test_bad_addon_values_name_their_key(addons, key):
    with pytest.raises(ConfigError) as err:
        _parse("dev", addons)
    assert any(p.startswith(f"k8s-platform:{key}: ") for p in err.value.problems), err.value.problems


def test_k3s_servers_disable_what_the_addons_replace():
    settings = K3sServerSettings(
        role="bootstrap",
        cluster_name="dev-k3s",
        k3s_version="v1.35.1+k3s1",
        region="us-east-1",
        server_url="https://nlb:6443",
        api_host="nlb",
        token_parameter_name="/t",
        agent_token_parameter_name="/a",
        pki_secret_id="pki",
        service_account_issuer_url="https://issuer",
        service_account_jwks_uri="https://issuer/jwks",
        snapshot_bucket="b",
        snapshot_schedule_cron="0 */6 * * *",
        snapshot_retention=28,
    )
    # Default: all add-ons on -> every packaged replacement off, cloud controller external.
    config = server_k3s_config(settings)
    assert config["disable"] == ["servicelb", "traefik", "local-storage", "metrics-server"]
    assert config["disable-cloud-controller"] is True
    cfg = _parse("dev", {"awsLoadBalancerController": {"enabled": False}, "cloudControllerManager": {"enabled": False}})
    custom = dataclasses.replace(
        settings,
        disable_components=cfg.addons.k3s_disabled_components(),
        disable_cloud_controller=cfg.addons.cloud_controller_manager_enabled("k3s"),
    )
    config = server_k3s_config(custom)
    assert "servicelb" not in config["disable"] and "traefik" not in config["disable"]
    assert config["disable-cloud-controller"] is False  # K3s's own controller initialises the nodes


def test_target_type_defaults_by_cluster_and_ip_is_refused_on_k3s():
    assert _parse("prod").addons.aws_load_balancer_controller.effective_target_type("eks") == "ip"
    assert _parse("dev").addons.aws_load_balancer_controller.effective_target_type("k3s") == "instance"
    with pytest.raises(ConfigError) as err:
        _parse("dev", {"awsLoadBalancerController": {"targetType": "ip"}})
    assert err.value.problems == [
        "k8s-platform:addons.awsLoadBalancerController.targetType: 'ip' needs pods on VPC addresses; K3s pods live "
        "on flannel's overlay, which a load balancer cannot reach: use 'instance' (or remove the key)"
    ]
    assert (
        _parse(
            "prod", {"awsLoadBalancerController": {"targetType": "instance"}}
        ).addons.aws_load_balancer_controller.effective_target_type("eks")
        == "instance"
    )


def test_waf_integration_is_off_by_default_and_must_be_a_boolean():
    assert not _parse("prod").addons.aws_load_balancer_controller.waf_integration
    assert _parse(
        "prod", {"awsLoadBalancerController": {"wafIntegration": True}}
    ).addons.aws_load_balancer_controller.waf_integration
    with pytest.raises(ConfigError) as exc:
        _parse("prod", {"awsLoadBalancerController": {"wafIntegration": "yes"}})
    assert any(
        p.startswith("k8s-platform:addons.awsLoadBalancerController.wafIntegration:") for p in exc.value.problems
    )
