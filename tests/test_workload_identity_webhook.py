"""amazon-eks-pod-identity-webhook on K3s and the reusable Pulumi-minted webhook certificates."""

from __future__ import annotations

import base64

import celpy
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from components.addons.pod_identity_webhook import NAMESPACE, SERVICE, WEBHOOK_IMAGE
from components.addons.webhook_certs import WebhookCertificates, WebhookCertificatesArgs, service_dns_names
from programs.offline import Secret, reveal, run_offline
from tests.conftest import shipped_config

WEBHOOK = "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration"


@pytest.fixture(scope="module")
def webhook(dev_run):
    return dev_run.one(WEBHOOK, "pod-identity-webhook-webhook")


def test_webhook_runs_on_k3s_only(dev_run, prod_run):
    assert dev_run.of_type(WEBHOOK)
    assert not [w for w in prod_run.of_type(WEBHOOK) if w.name.startswith("pod-identity-webhook")]  # EKS has its own


def test_serving_certificate_chains_to_the_ca_bundle_for_the_service_name(dev_run, webhook):
    [hook] = webhook.inputs["webhooks"]
    ca = x509.load_pem_x509_certificate(base64.b64decode(hook["clientConfig"]["caBundle"]))
    secret = dev_run.one("kubernetes:core/v1:Secret", "pod-identity-webhook-certs-tls").inputs
    assert isinstance(secret["stringData"], Secret)
    leaf = x509.load_pem_x509_certificate(reveal(secret["stringData"])["tls.crt"].encode())
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    # The API server dials <service>.<namespace>.svc.
    assert f"{SERVICE}.{NAMESPACE}.svc" in sans
    assert ExtendedKeyUsageOID.SERVER_AUTH in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert secret["type"] == "kubernetes.io/tls" and secret["metadata"]["namespace"] == NAMESPACE


def test_webhook_mutates_pod_creation_and_fails_closed(webhook):
    [hook] = webhook.inputs["webhooks"]
    assert hook["clientConfig"]["service"] == {"name": SERVICE, "namespace": NAMESPACE, "path": "/mutate", "port": 443}
    assert hook["rules"] == [
        {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
    ]
    assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
    # Its own namespace is exempt, so the webhook can always restart itself.
    [expr] = hook["namespaceSelector"]["matchExpressions"]
    assert (expr["key"], expr["operator"], expr["values"]) == ("kubernetes.io/metadata.name", "NotIn", [NAMESPACE])


def test_pods_projecting_their_own_sts_token_skip_the_webhook(webhook):
    """The AWS cloud controller must start on a fresh node before the webhook can: no deadlock."""
    [hook] = webhook.inputs["webhooks"]
    [condition] = hook["matchConditions"]
    env = celpy.Environment()
    calls_webhook = env.program(env.compile(condition["expression"]))

    def decide(pod):
        return bool(calls_webhook.evaluate({"object": celpy.json_to_cel(pod)}))

    sts = {"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}
    vault = {"serviceAccountToken": {"audience": "vault", "path": "token"}}
    assert decide({"spec": {"containers": [{"name": "app"}]}}) is True
    assert (
        decide({"spec": {"volumes": [{"name": "t", "projected": {"sources": [vault]}}, {"name": "e", "emptyDir": {}}]}})
        is True
    )
    assert decide({"spec": {"volumes": [{"name": "aws-iam-token", "projected": {"sources": [sts]}}]}}) is False


def test_webhook_is_registered_after_its_pods_and_service(dev_run, webhook):
    deployment = dev_run.one("kubernetes:apps/v1:Deployment", "pod-identity-webhook-deployment")
    service = dev_run.one("kubernetes:core/v1:Service", "pod-identity-webhook-service")
    assert {deployment.urn, service.urn} <= set(webhook.dependencies)


def test_deployment_pins_the_image_and_uses_the_minted_certificate(dev_run):
    spec = dev_run.one("kubernetes:apps/v1:Deployment", "pod-identity-webhook-deployment").inputs["spec"]
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == WEBHOOK_IMAGE and not WEBHOOK_IMAGE.endswith(":latest")
    cmd = container["command"]
    for flag in (
        "--in-cluster=false",
        "--token-audience=sts.amazonaws.com",
        "--annotation-prefix=eks.amazonaws.com",
        "--aws-default-region=us-east-1",
        "--sts-regional-endpoint=true",
    ):
        assert flag in cmd
    [volume] = pod["volumes"]
    assert volume["secret"]["secretName"] == "pod-identity-webhook-tls"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["replicas"] == 2 and pod["priorityClassName"] == "system-cluster-critical"
    assert pod["tolerations"], "runs on the K3s servers (system scheduling)"


def test_rbac_is_read_only_on_service_accounts(dev_run):
    role = dev_run.one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "pod-identity-webhook-role").inputs
    assert role["rules"] == [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "watch", "list"]}]


def _certs_only(cfg):
    certs = WebhookCertificates("hook", WebhookCertificatesArgs(service_name="svc", namespace="ns"))
    return {"caBundle": certs.ca_bundle, "names": certs.dns_names}


def test_webhook_certificates_are_reusable_without_a_cluster():
    run = run_offline("dev", shipped_config("dev"), program=_certs_only)
    assert not run.of_type("kubernetes:core/v1:Secret")
    assert (
        run.outputs["names"]
        == service_dns_names("svc", "ns")
        == ["svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local"]
    )
    ca = x509.load_pem_x509_certificate(base64.b64decode(run.outputs["caBundle"]))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
