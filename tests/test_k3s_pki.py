"""The Pulumi-minted K3s PKI, checked with `cryptography` on the real certificates of the dev run."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from programs.offline import Secret, reveal

# What K3s's custom-CA support requires in /var/lib/rancher/k3s/server/tls (docs: "k3s certificate").
K3S_CUSTOM_CA_FILES = {
    "server-ca.crt",
    "server-ca.key",
    "client-ca.crt",
    "client-ca.key",
    "request-header-ca.crt",
    "request-header-ca.key",
    "etcd/peer-ca.crt",
    "etcd/peer-ca.key",
    "etcd/server-ca.crt",
    "etcd/server-ca.key",
    "service.key",
}


@pytest.fixture(scope="module")
def bundle(dev_run) -> dict[str, str]:
    version = dev_run.one("aws:secretsmanager/secretVersion:SecretVersion", "k3s-pki")
    assert isinstance(version.inputs["secretString"], Secret)
    return json.loads(reveal(version.inputs["secretString"]))


def cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def public_der(key_or_cert) -> bytes:
    pub = key_or_cert.public_key()
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def private_key(pem: str):
    return serialization.load_pem_private_key(pem.encode(), password=None)


def cn(c: x509.Certificate) -> str:
    return c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_bundle_holds_exactly_what_k3s_custom_ca_support_needs(bundle):
    assert set(bundle) == K3S_CUSTOM_CA_FILES


@pytest.mark.parametrize("ca", ["server-ca", "client-ca", "request-header-ca", "etcd/peer-ca", "etcd/server-ca"])
def test_each_ca_is_a_self_signed_ca_matching_its_key(bundle, ca):
    c = cert(bundle[f"{ca}.crt"])
    assert c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    c.verify_directly_issued_by(c)
    assert public_der(private_key(bundle[f"{ca}.key"])) == public_der(c)


def test_cas_are_distinct(bundle):
    keys = {
        public_der(cert(bundle[f"{ca}.crt"]))
        for ca in ("server-ca", "client-ca", "request-header-ca", "etcd/peer-ca", "etcd/server-ca")
    }
    assert len(keys) == 5


def test_admin_kubeconfig_client_cert_chains_to_the_client_ca(dev_run, bundle):
    kubeconfig = yaml.safe_load(reveal(dev_run.outputs["kubeconfig"]))
    user = kubeconfig["users"][0]["user"]
    client = cert(base64.b64decode(user["client-certificate-data"]).decode())
    client.verify_directly_issued_by(cert(bundle["client-ca.crt"]))
    with pytest.raises((ValueError, InvalidSignature)):  # another issuer's name, or not its signature
        client.verify_directly_issued_by(cert(bundle["server-ca.crt"]))
    assert cn(client) == "k8s-platform:admin"
    assert client.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    key = private_key(base64.b64decode(user["client-key-data"]).decode())
    assert public_der(key) == public_der(client)
    # The kubeconfig trusts the server CA that will sign the API's serving certificate.
    ca_data = base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    assert public_der(cert(ca_data)) == public_der(cert(bundle["server-ca.crt"]))


def test_drainer_credentials_are_a_client_cert_of_its_own_user(dev_run, bundle):
    version = dev_run.one("aws:secretsmanager/secretVersion:SecretVersion", "k3s-interruption-drainer")
    creds = json.loads(reveal(version.inputs["secretString"]))
    client = cert(creds["cert"])
    client.verify_directly_issued_by(cert(bundle["client-ca.crt"]))
    assert cn(client) == "k8s-platform:node-drainer"
    assert not client.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)  # no group, no system:masters
    assert public_der(private_key(creds["key"])) == public_der(client)
    assert creds["server"] == dev_run.outputs["clusterEndpoint"]
    assert public_der(cert(creds["ca"])) == public_der(cert(bundle["server-ca.crt"]))


def test_published_jwks_is_the_service_account_key_the_servers_sign_with(dev_run, bundle):
    """The OIDC issuer publishes the public half of exactly the key placed on the servers."""
    sa_key = private_key(bundle["service.key"])
    numbers = sa_key.public_key().public_numbers()
    jwks = json.loads(dev_run.one("aws:s3/bucketObjectv2:BucketObjectv2", "oidc-primary-jwks").inputs["content"])
    n = int.from_bytes(base64.urlsafe_b64decode(jwks["keys"][0]["n"] + "=="), "big")
    assert n == numbers.n
