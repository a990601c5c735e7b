"""Pure renderers for a self-hosted OIDC issuer: the discovery document and the JWKS.

AWS STS fetches `<issuer>/.well-known/openid-configuration`, follows its `jwks_uri`, and picks the
key whose `kid` matches the token header. kube-apiserver (and so K3s) stamps every service-account
token with `kid = base64url(SHA-256(DER SubjectPublicKeyInfo))` of its signing key (no padding;
kubernetes `pkg/serviceaccount/jwt.go` keyIDFromPublicKey), so the JWKS published here derives the
`kid` the same way from the Pulumi-held public key: the two always agree with nothing read back.

Where things live is also decided here (`DISCOVERY_KEY`, `JWKS_KEY`): the hosting component
uploads exactly these two objects, and its bucket policy makes exactly these two keys readable.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DISCOVERY_KEY = ".well-known/openid-configuration"
# The name the pod-identity-webhook self-hosted guide uses; any path works as long as jwks_uri says it.
JWKS_KEY = "keys.json"
SIGNING_ALGORITHM = "RS256"
# Claims a projected service-account token carries that relying parties may use.
CLAIMS_SUPPORTED = ["sub", "iss", "aud", "exp", "iat", "nbf", "jti", "kubernetes.io"]


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def load_rsa_public_key(public_key_pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(public_key_pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        # STS verifies RS256 service-account tokens; K3sPki mints an RSA key for that reason.
        raise ValueError(f"service-account key must be RSA (RS256), got {type(key).__name__}")
    return key


def key_id(public_key_pem: str) -> str:
    """The `kid` kube-apiserver puts in token headers: base64url(SHA-256(DER SPKI)), unpadded."""
    key = load_rsa_public_key(public_key_pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


def issuer_base(issuer_url: str) -> str:
    if not issuer_url.startswith("https://"):
        raise ValueError(f"issuer URL must be https:// (STS refuses anything else), got '{issuer_url}'")
    return issuer_url.rstrip("/")


def jwks_url(issuer_url: str) -> str:
    return f"{issuer_base(issuer_url)}/{JWKS_KEY}"


def discovery_document(issuer_url: str) -> dict[str, Any]:
    """What STS reads: the issuer (must equal the token's `iss` exactly) and where the keys are."""
    base = issuer_base(issuer_url)
    return {
        "issuer": base,
        "jwks_uri": jwks_url(base),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [SIGNING_ALGORITHM],
        "claims_supported": list(CLAIMS_SUPPORTED),
    }


def jwk(public_key_pem: str) -> dict[str, str]:
    numbers = load_rsa_public_key(public_key_pem).public_numbers()
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": SIGNING_ALGORITHM,
        "kid": key_id(public_key_pem),
        "n": _b64url_uint(numbers.n),
        "e": _b64url_uint(numbers.e),
    }


def jwks(*public_key_pems: str) -> dict[str, Any]:
    """The key set; several keys while a signing key is rotated (old tokens keep verifying)."""
    if not public_key_pems:
        raise ValueError("a JWKS needs at least one public key")
    keys = [jwk(pem) for pem in public_key_pems]
    kids = [k["kid"] for k in keys]
    if len(set(kids)) != len(kids):
        raise ValueError("the same public key is listed twice")
    return {"keys": keys}


def to_json(document: dict[str, Any]) -> str:
    """Stable serialisation: an unchanged key gives byte-identical objects (no spurious uploads)."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
