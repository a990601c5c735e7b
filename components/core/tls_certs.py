"""Shared pulumi_tls recipes: a private CA, and certificates it signs.

Used by the K3s PKI, webhook serving certificates and the Roles Anywhere workload CA. Keys are
ECDSA P-256 (what K3s generates for its own CAs; certificates signed with ECDSA-SHA256, which
Roles Anywhere requires). CAs live 10 years; issued certificates 1 year and are re-issued by the
first `pulumi up` inside their last 30 days.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

CA_VALIDITY_HOURS = 10 * 365 * 24
ISSUED_VALIDITY_HOURS = 365 * 24
EARLY_RENEWAL_HOURS = 30 * 24
CA_USES = ["cert_signing", "crl_signing", "digital_signature"]


@dataclass(frozen=True)
class CertificateAuthority:
    key: tls.PrivateKey
    cert: tls.SelfSignedCert

    @property
    def cert_pem(self) -> pulumi.Output[str]:
        return self.cert.cert_pem

    @property
    def private_key_pem(self) -> pulumi.Output[str]:
        return pulumi.Output.secret(self.key.private_key_pem)


@dataclass(frozen=True)
class IssuedCertificate:
    cert_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]  # secret


def _p256_key(name: str, opts: pulumi.ResourceOptions) -> tls.PrivateKey:
    return tls.PrivateKey(name, algorithm="ECDSA", ecdsa_curve="P256", opts=opts)


def private_ca(
    name: str,
    common_name: str,
    opts: pulumi.ResourceOptions,
    *,
    organization: str = "k8s-platform",
    allowed_uses: list[str] | None = None,
    validity_hours: int = CA_VALIDITY_HOURS,
) -> CertificateAuthority:
    """Key `<name>` and self-signed CA certificate `<name>` (CA:TRUE, keyCertSign)."""
    key = _p256_key(name, opts)
    cert = tls.SelfSignedCert(
        name,
        private_key_pem=key.private_key_pem,
        subject=tls.SelfSignedCertSubjectArgs(common_name=common_name, organization=organization),
        is_ca_certificate=True,
        validity_period_hours=validity_hours,
        allowed_uses=allowed_uses or CA_USES,
        opts=opts,
    )
    return CertificateAuthority(key, cert)


def issue_certificate(
    name: str,
    ca: CertificateAuthority,
    opts: pulumi.ResourceOptions,
    *,
    common_name: str,
    allowed_uses: list[str],
    organization: str | None = None,
    dns_names: list[str] | None = None,
) -> IssuedCertificate:
    """Key, CSR and CA-signed end-entity certificate (CA:FALSE), all named `<name>`."""
    key = _p256_key(name, opts)
    csr = tls.CertRequest(
        name,
        private_key_pem=key.private_key_pem,
        subject=tls.CertRequestSubjectArgs(common_name=common_name, organization=organization),
        dns_names=dns_names,
        opts=opts,
    )
    cert = tls.LocallySignedCert(
        name,
        cert_request_pem=csr.cert_request_pem,
        ca_cert_pem=ca.cert.cert_pem,
        ca_private_key_pem=ca.key.private_key_pem,
        validity_period_hours=ISSUED_VALIDITY_HOURS,
        early_renewal_hours=EARLY_RENEWAL_HOURS,
        allowed_uses=allowed_uses,
        is_ca_certificate=False,
        opts=opts,
    )
    return IssuedCertificate(cert.cert_pem, pulumi.Output.secret(key.private_key_pem))
