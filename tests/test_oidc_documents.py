"""Pure OIDC renderers: the discovery document STS reads and the JWKS kube-apiserver's tokens verify against."""

from __future__ import annotations

import base64
import hashlib
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from components.core.oidc_hosting import cloudfront_issuer_url, default_bucket_name, s3_issuer_url
from components.identity import oidc_documents as docs

ISSUER = "https://dev-k3s-oidc-111111111111.s3.us-east-1.amazonaws.com"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def private_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


def apiserver_kid(key) -> str:
    """kube-apiserver's keyIDFromPublicKey, written out independently of the code under test."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def test_discovery_document_has_what_sts_needs():
    doc = docs.discovery_document(ISSUER + "/")
    assert doc["issuer"] == ISSUER  # exactly the token's iss: no trailing slash
    assert doc["jwks_uri"] == f"{ISSUER}/keys.json"
    assert doc["response_types_supported"] == ["id_token"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"sub", "iss", "aud"} <= set(doc["claims_supported"])


def test_discovery_refuses_a_non_https_issuer():
    with pytest.raises(ValueError, match="https"):
        docs.discovery_document("http://example.com")


def test_kid_is_what_kube_apiserver_puts_in_token_headers(rsa_key):
    assert docs.key_id(public_pem(rsa_key)) == apiserver_kid(rsa_key)


def test_jwks_key_verifies_a_token_signed_like_kube_apiserver(rsa_key):
    key_set = docs.jwks(public_pem(rsa_key))
    claims = {"iss": ISSUER, "sub": "system:serviceaccount:ns:sa", "aud": ["sts.amazonaws.com"], "exp": 4102444800}
    token = jwt.encode(claims, private_pem(rsa_key), algorithm="RS256", headers={"kid": apiserver_kid(rsa_key)})
    published = jwt.PyJWKSet.from_dict(json.loads(docs.to_json(key_set)))
    [match] = [k for k in published.keys if k.key_id == jwt.get_unverified_header(token)["kid"]]
    assert (
        jwt.decode(token, match.key, algorithms=["RS256"], audience="sts.amazonaws.com", issuer=ISSUER)["sub"]
        == claims["sub"]
    )
    assert key_set["keys"][0]["use"] == "sig" and key_set["keys"][0]["alg"] == "RS256"


def test_jwks_does_not_verify_another_keys_token(rsa_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"iss": ISSUER, "aud": "sts.amazonaws.com"}, private_pem(other), algorithm="RS256")
    [published] = jwt.PyJWKSet.from_dict(docs.jwks(public_pem(rsa_key))).keys
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, published.key, algorithms=["RS256"], audience="sts.amazonaws.com")


def test_jwks_lists_both_keys_during_rotation_and_refuses_duplicates(rsa_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_set = docs.jwks(public_pem(rsa_key), public_pem(other))
    assert [k["kid"] for k in key_set["keys"]] == [apiserver_kid(rsa_key), apiserver_kid(other)]
    with pytest.raises(ValueError, match="twice"):
        docs.jwks(public_pem(rsa_key), public_pem(rsa_key))


def test_non_rsa_signing_key_is_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError, match="RSA"):
        docs.jwks(public_pem(key))


def test_documents_serialise_stably(rsa_key):
    assert docs.to_json(docs.jwks(public_pem(rsa_key))) == docs.to_json(docs.jwks(public_pem(rsa_key)))


def test_issuer_urls_come_from_names_only():
    bucket = default_bucket_name("dev-k3s", "111111111111")
    assert bucket == "dev-k3s-oidc-111111111111"
    assert s3_issuer_url(bucket, "us-east-1") == ISSUER
    assert default_bucket_name("dev-k3s", "111111111111", "edge") == "dev-k3s-oidc-edge-111111111111"
    assert cloudfront_issuer_url("oidc.example.com") == "https://oidc.example.com"
