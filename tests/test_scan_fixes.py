"""The weaknesses the independent scanners found, fixed: asserted on the real program's plans."""

from __future__ import annotations

import ipaddress
import json
import re

import pytest

from components.addons.pod_identity_webhook import CONTAINER_PORT, LABELS, NAMESPACE, WEBHOOK_IMAGE
from components.addons.policies import LB_WAF_SHIELD_ACTIONS_REMOVED_BY_DEFAULT
from components.k3s.access_logs import (
    ACCESS_LOG_RETENTION_DAYS,
    AccessLogBucket,
    AccessLogBucketArgs,
    log_bucket_policy,
    log_prefix,
)
from components.k3s.cluster import API_PORT
from programs.offline import reveal, run_offline
from tests.conftest import shipped_config
from tests.iam_eval import allows

BUCKET = "aws:s3/bucket:Bucket"
LOGGING = "aws:s3/bucketLogging:BucketLogging"


def test_prod_enables_all_five_control_plane_log_types(prod_run):
    cluster = prod_run.one("aws:eks/cluster:Cluster")
    assert sorted(cluster.inputs["enabledClusterLogTypes"]) == [
        "api",
        "audit",
        "authenticator",
        "controllerManager",
        "scheduler",
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_lb_controller_has_no_waf_or_shield_by_default(stack, request):
    run = request.getfixturevalue(f"{stack}_run")
    policy = next(r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if "load-balancer" in r.name)
    doc = json.loads(reveal(policy.inputs["policy"]))
    granted = {a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not granted & set(LB_WAF_SHIELD_ACTIONS_REMOVED_BY_DEFAULT)
    release = next(
        r
        for r in run.of_type("kubernetes:helm.sh/v3:Release")
        if r.inputs.get("chart") == "aws-load-balancer-controller"
    )
    values = reveal(release.inputs["values"])
    assert values["enableWaf"] is False and values["enableWafv2"] is False and values["enableShield"] is False


def test_waf_integration_turns_on_chart_and_permissions_together(mutate_config):
    run = run_offline("prod", mutate_config("prod", "addons.awsLoadBalancerController.wafIntegration", True))
    policy = next(r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if "load-balancer" in r.name)
    doc = json.loads(reveal(policy.inputs["policy"]))
    alb = "arn:aws:elasticloadbalancing:us-east-1:222222222222:loadbalancer/app/k8s-shared-0123/abc"
    assert allows(doc, "wafv2:AssociateWebACL", alb) and allows(doc, "shield:CreateProtection", alb)
    assert not allows(doc, "wafv2:AssociateWebACL", alb.replace("222222222222", "333333333333"))
    release = next(
        r
        for r in run.of_type("kubernetes:helm.sh/v3:Release")
        if r.inputs.get("chart") == "aws-load-balancer-controller"
    )
    assert reveal(release.inputs["values"])["enableWafv2"] is True


def test_snapshot_and_issuer_buckets_log_into_the_stacks_log_bucket(dev_run):
    by_urn = dev_run.by_urn()
    log_bucket = dev_run.one(BUCKET, "access-logs-bucket")
    logged = {}
    for logging in dev_run.of_type(LOGGING):
        assert logging.inputs["targetBucket"] == log_bucket.inputs["bucket"]
        source = next(by_urn[d] for d in logging.property_dependencies["bucket"] if by_urn[d].type == BUCKET)
        logged[source.name] = logging.inputs["targetPrefix"]
    assert set(logged) == {"k3s-etcd-snapshots", "oidc-primary-bucket", "oidc-edge-bucket"}
    assert all(p.startswith("s3/") and p.endswith("/") for p in logged.values())
    assert len(set(logged.values())) == 3  # one prefix per source bucket


def test_log_bucket_is_encrypted_private_expiring_and_only_writable_by_log_delivery(dev_run):
    def one(typ: str, name: str):
        return dev_run.one(typ, name)

    sse = one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "access-logs-encryption",
    )
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    block = one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "access-logs-public-access-block")
    assert all(
        block.inputs[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    lifecycle = one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "access-logs-lifecycle")
    assert lifecycle.inputs["rules"][0]["expiration"]["days"] == ACCESS_LOG_RETENTION_DAYS
    arn = "arn:aws:s3:::logs"
    doc = log_bucket_policy(arn, "111111111111")
    delivery = ("arn:aws:iam::111111111111:root",)  # any principal but the logging service is refused
    ctx = {
        "aws:SourceAccount": "111111111111",
        "aws:SourceArn": "arn:aws:s3:::dev-k3s-oidc-111111111111",
        "aws:SecureTransport": "true",
    }
    assert allows(
        doc, "s3:PutObject", f"{arn}/{log_prefix('b')}x", ctx, principal=("Service", "logging.s3.amazonaws.com")
    )
    assert not allows(
        doc,
        "s3:PutObject",
        f"{arn}/{log_prefix('b')}x",
        {**ctx, "aws:SourceAccount": "999999999999"},
        principal=("Service", "logging.s3.amazonaws.com"),
    )
    assert not allows(doc, "s3:PutObject", f"{arn}/{log_prefix('b')}x", ctx, principal=("AWS", delivery[0]))


def test_log_bucket_is_protected_in_prod():
    def program(cfg):
        AccessLogBucket(
            "access-logs",
            AccessLogBucketArgs(
                cluster_name=cfg.cluster_name, account_id=cfg.account_id, tags=cfg.resource_tags(), protect=True
            ),
        )
        return {}

    run = run_offline("dev", shipped_config("dev"), program=program)
    bucket = run.one(BUCKET, "access-logs-bucket")
    assert bucket.protect is True and bucket.inputs["forceDestroy"] is False


def test_webhook_image_is_pinned_by_digest(dev_run):
    deployment = dev_run.one("kubernetes:apps/v1:Deployment", "pod-identity-webhook-deployment")
    image = deployment.inputs["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == WEBHOOK_IMAGE
    assert re.fullmatch(r"public\.ecr\.aws/eks/amazon-eks-pod-identity-webhook:v[\d.]+@sha256:[0-9a-f]{64}", image)


def test_webhook_network_policy_admits_only_the_api_server_to_its_port(dev_run):
    policy = dev_run.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "pod-identity-webhook-network-policy")
    assert policy.inputs["metadata"]["namespace"] == NAMESPACE
    spec = policy.inputs["spec"]
    assert spec["podSelector"] == {"matchLabels": LABELS}
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": CONTAINER_PORT}]
    assert all(set(peer) == {"ipBlock"} for peer in ingress["from"])  # no pod or namespace selector
    vpc = dev_run.config.network.vpc_cidr
    assert {"ipBlock": {"cidr": vpc}} in ingress["from"]
    egress_ports = {p["port"] for rule in spec["egress"] for p in rule["ports"]}
    assert egress_ports == {API_PORT, 443}
    egress_cidrs = [peer["ipBlock"]["cidr"] for rule in spec["egress"] for peer in rule["to"]]
    assert vpc in egress_cidrs and "10.43.0.1/32" in egress_cidrs
    assert all(ipaddress.ip_network(c).prefixlen >= 16 for c in egress_cidrs)  # never 0.0.0.0/0
