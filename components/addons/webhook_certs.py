"""`WebhookCertificates`: a private CA and a serving certificate for an in-cluster admission webhook.

Why Pulumi-minted (pulumi_tls) rather than cert-manager: the certificates and the `caBundle` are
known at deploy time, so the webhook configuration is complete in one `pulumi up` (no CA
injector racing the first pod admissions), there is no extra controller to run before the
webhooks it would serve, and everything is visible and testable under mocks. Renewal: the
serving certificate is re-issued by the first `pulumi up` inside its last 30 days (components/core/tls_certs.py);
the webhooks we run reload their certificate files when the mounted Secret changes.

Reusable for any webhook (pod-identity-webhook here; add-on webhooks may use it too): give the
Service name and namespace, get `ca_bundle` for the webhook configuration and a
`kubernetes.io/tls` Secret (`secret_name`) to mount.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.core.tls_certs import issue_certificate, private_ca

SERVING_USES = ["server_auth", "digital_signature", "key_encipherment"]


def service_dns_names(service: str, namespace: str) -> list[str]:
    """Every name the API server may use to reach `service` (it dials `<svc>.<ns>.svc`)."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def ca_bundle(ca_cert_pem: str) -> str:
    """The `caBundle` field of a webhook configuration: base64 of the PEM."""
    return base64.b64encode(ca_cert_pem.encode()).decode()


@dataclass(frozen=True)
class WebhookCertificatesArgs:
    """Built per webhook by the component that runs it (the pod-identity webhook, the add-ons), not
    from the stack: no `from_stack`."""

    service_name: str
    """The webhook's Service: the certificate names `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`, ..."""
    namespace: str
    """The Service's (and the Secret's) namespace."""
    k8s_provider: k8s.Provider | None = None
    """With a provider, the serving pair is also written to a `kubernetes.io/tls` Secret. Default: none
    (no Secret; the caller mounts the PEMs itself)."""
    secret_name: str | None = None
    """The Secret's name. Default: `<service>-tls`."""
    labels: dict[str, str] | None = None
    """The Secret's labels. Default: none."""
    namespace_resource: pulumi.Resource | None = None
    """The namespace resource the Secret waits for. Default: none (the namespace exists already)."""


class WebhookCertificates(pulumi.ComponentResource):
    ca_cert_pem: pulumi.Output[str]
    ca_bundle: pulumi.Output[str]
    cert_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]  # secret
    secret_name: str
    dns_names: list[str]
    secret: k8s.core.v1.Secret | None

    def __init__(self, name: str, args: WebhookCertificatesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:identity:WebhookCertificates", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.dns_names = service_dns_names(args.service_name, args.namespace)
        self.secret_name = args.secret_name or f"{args.service_name}-tls"

        ca = private_ca(f"{name}-ca", f"{args.service_name}.{args.namespace} webhook CA", child)
        serving = issue_certificate(
            f"{name}-serving",
            ca,
            child,
            common_name=self.dns_names[2],
            dns_names=self.dns_names,
            allowed_uses=SERVING_USES,
        )
        self.ca_cert_pem = ca.cert_pem
        self.ca_bundle = ca.cert_pem.apply(ca_bundle)
        self.cert_pem = serving.cert_pem
        self.private_key_pem = serving.private_key_pem

        self.secret = None
        if args.k8s_provider is not None:
            depends = [args.namespace_resource] if args.namespace_resource is not None else []
            self.secret = k8s.core.v1.Secret(
                f"{name}-tls",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=self.secret_name, namespace=args.namespace, labels=args.labels
                ),
                type="kubernetes.io/tls",
                string_data={"tls.crt": self.cert_pem, "tls.key": self.private_key_pem, "ca.crt": self.ca_cert_pem},
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.k8s_provider,
                    depends_on=depends,
                    additional_secret_outputs=["stringData", "data"],
                ),
            )
        self.register_outputs({"caBundle": self.ca_bundle, "certPem": self.cert_pem, "secretName": self.secret_name})
