"""`K3sPki`: the whole K3s cluster identity, minted by Pulumi before any server exists.

K3s skips generating its CAs when it finds them in `/var/lib/rancher/k3s/server/tls` on the first
start of the first server ("custom CA" support). Minting them here means the admin kubeconfig,
the drainer's credentials and the service-account public key (published by the OIDC issuer) are
known at deploy time, with nothing read back from a node.

Everything private is a Pulumi secret. The bundle for the servers (`server_bundle`: file path
under the K3s tls dir -> PEM) is stored by `K3sCluster` in Secrets Manager under a KMS key only the
server role can use; it never appears in user-data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

from components.config import StackConfig
from components.core.tls_certs import CertificateAuthority, issue_certificate, private_ca

# CAs live 10 years like K3s's own; client certificates 1 year, renewed by `pulumi up` in the last 30 days
# (lifetimes in components/core/tls_certs.py).
CA_USES = ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"]
CLIENT_USES = ["client_auth", "digital_signature", "key_encipherment"]

# File names K3s expects (relative to /var/lib/rancher/k3s/server/tls) -> CA key in this component.
CA_FILES = {
    "server-ca": "server-ca",
    "client-ca": "client-ca",
    "request-header-ca": "request-header-ca",
    "etcd/peer-ca": "etcd-peer-ca",
    "etcd/server-ca": "etcd-server-ca",
}
SERVICE_ACCOUNT_KEY_FILE = "service.key"

ADMIN_USER = "k8s-platform:admin"
ADMIN_GROUP = "system:masters"


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate signed by the client CA; the user is the CN, groups the O."""

    common_name: str
    cert_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]  # secret


@dataclass(frozen=True)
class K3sPkiArgs:
    cluster_name: str
    """Names every CA and certificate subject (`<cluster> server CA`, ...)."""

    @classmethod
    def from_stack(cls, cfg: StackConfig) -> "K3sPkiArgs":
        return cls(cluster_name=cfg.cluster_name)


class K3sPki(pulumi.ComponentResource):
    """Outputs: `ca_cert_pems`/`ca_private_key_pems` per CA, `service_account_public_key_pem`,
    `service_account_private_key_pem` (secret), `admin` (ClientCertificate), `server_bundle` (secret JSON)."""

    ca_cert_pems: dict[str, pulumi.Output[str]]
    ca_private_key_pems: dict[str, pulumi.Output[str]]
    service_account_public_key_pem: pulumi.Output[str]
    service_account_private_key_pem: pulumi.Output[str]
    admin: ClientCertificate
    server_ca_cert_pem: pulumi.Output[str]
    client_ca_cert_pem: pulumi.Output[str]
    server_bundle: pulumi.Output[str]  # secret JSON {path: PEM} for the servers

    def __init__(self, name: str, args: K3sPkiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:k3s:K3sPki", name, None, opts)
        cluster_name = args.cluster_name
        self._name = name
        self._cluster = cluster_name
        self._cas: dict[str, CertificateAuthority] = {}
        for ca in CA_FILES.values():
            self._cas[ca] = self._self_signed_ca(ca)
        self.ca_cert_pems = {name: ca.cert_pem for name, ca in self._cas.items()}
        self.ca_private_key_pems = {name: ca.private_key_pem for name, ca in self._cas.items()}
        self.server_ca_cert_pem = self.ca_cert_pems["server-ca"]
        self.client_ca_cert_pem = self.ca_cert_pems["client-ca"]

        # RSA: what every OIDC relying party (AWS STS included) verifies (RS256).
        sa_key = tls.PrivateKey(
            f"{name}-service-account", algorithm="RSA", rsa_bits=2048, opts=pulumi.ResourceOptions(parent=self)
        )
        self.service_account_public_key_pem = sa_key.public_key_pem
        self.service_account_private_key_pem = pulumi.Output.secret(sa_key.private_key_pem)

        self.admin = self.client_certificate("admin", ADMIN_USER, ADMIN_GROUP)
        self.server_bundle = self._server_bundle()
        self.register_outputs(
            {
                "serverCaCertPem": self.server_ca_cert_pem,
                "clientCaCertPem": self.client_ca_cert_pem,
                "serviceAccountPublicKeyPem": self.service_account_public_key_pem,
            }
        )

    def _self_signed_ca(self, ca: str) -> CertificateAuthority:
        return private_ca(
            f"{self._name}-{ca}", f"{self._cluster}-{ca}", pulumi.ResourceOptions(parent=self), allowed_uses=CA_USES
        )

    def client_certificate(self, name: str, user: str, group: str | None = None) -> ClientCertificate:
        """A client certificate for `user` (and optionally one group), signed by the cluster's client CA."""
        issued = issue_certificate(
            f"{self._name}-{name}-client",
            self._cas["client-ca"],
            pulumi.ResourceOptions(parent=self),
            common_name=user,
            organization=group,
            allowed_uses=CLIENT_USES,
        )
        return ClientCertificate(user, issued.cert_pem, issued.private_key_pem)

    def _server_bundle(self) -> pulumi.Output[str]:
        """JSON {relative path: PEM} of every file K3s's custom-CA support needs (secret)."""
        parts: dict[str, pulumi.Output[str]] = {}
        for path, ca in CA_FILES.items():
            parts[f"{path}.crt"] = self._cas[ca].cert_pem
            parts[f"{path}.key"] = self._cas[ca].private_key_pem
        parts[SERVICE_ACCOUNT_KEY_FILE] = self.service_account_private_key_pem
        return pulumi.Output.secret(pulumi.Output.all(**parts).apply(lambda files: json.dumps(files, sort_keys=True)))
