"""The self-hosted K3s issuer end to end, on the offline plan of the shipped dev stack.

The chain a pod's credentials depend on: K3s signs a projected token with the service-account key
Pulumi minted -> STS reads `<iss>/.well-known/openid-configuration` -> `jwks_uri` -> the key with
the token's kid -> verifies. Every link is taken from what the plan would create: the key from
the server bundle the K3s servers receive, the documents from the S3 objects' content.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import re
import time

import jwt
import pulumi_tls as tls
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from components.config import ConfigError, IssuerConfig, parse_stack_config
from components.identity.oidc_issuer import OidcIssuer, OidcIssuerArgs
from programs.offline import reveal, run_offline
from tests.conftest import DELETE, shipped_config

OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
BUCKET = "aws:s3/bucket:Bucket"
PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
PRIMARY_URL = "https://dev-k3s-oidc-111111111111.s3.us-east-1.amazonaws.com"
EDGE_URL = "https://oidc.dev-k3s.platform.example.com"


def documents(run, issuer: str) -> tuple[dict, dict]:
    discovery = json.loads(run.one(OBJECT, f"oidc-{issuer}-discovery").inputs["content"])
    key_set = json.loads(run.one(OBJECT, f"oidc-{issuer}-jwks").inputs["content"])
    return discovery, key_set


def service_account_private_key(run) -> str:
    """The signing key as the K3s servers receive it (the custom-CA bundle in Secrets Manager)."""
    for res in run.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        raw = reveal(res.inputs.get("secretString"))
        if isinstance(raw, str) and "service.key" in raw:
            return json.loads(raw)["service.key"]
    raise AssertionError("no secret version carries the service-account key")


def server_user_data(run) -> str:
    for lt in run.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        raw = base64.b64decode(reveal(lt.inputs["userData"]))
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
        if "service-account-issuer=" in text:
            return text
    raise AssertionError("no launch template configures service-account-issuer")


def k3s_token(private_pem: str, issuer: str, namespace: str, service_account: str) -> str:
    """A projected token as kube-apiserver mints it for the pod-identity-webhook's volume."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": f"system:serviceaccount:{namespace}:{service_account}",
        "aud": ["sts.amazonaws.com"],
        "iat": now,
        "nbf": now,
        "exp": now + 86400,
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": service_account, "uid": "0"}},
    }
    return jwt.encode(claims, private_pem, algorithm="RS256", headers={"kid": kid})


def sts_verify(token: str, discovery: dict, key_set: dict) -> dict:
    """What STS does with the documents: pick the key by kid, check signature, issuer and audience."""
    kid = jwt.get_unverified_header(token)["kid"]
    keys = [k for k in jwt.PyJWKSet.from_dict(key_set).keys if k.key_id == kid]
    assert keys, f"no JWKS key with kid {kid}"
    return jwt.decode(
        token,
        keys[0].key,
        algorithms=discovery["id_token_signing_alg_values_supported"],
        audience="sts.amazonaws.com",
        issuer=discovery["issuer"],
    )


@pytest.mark.parametrize("issuer,url", [("primary", PRIMARY_URL), ("edge", EDGE_URL)])
def test_token_signed_with_the_servers_key_verifies_against_the_published_jwks(dev_run, issuer, url):
    discovery, key_set = documents(dev_run, issuer)
    assert discovery["issuer"] == url
    # STS follows jwks_uri: it must point at the JWKS object of the same issuer.
    assert discovery["jwks_uri"] == f"{url}/{dev_run.one(OBJECT, f'oidc-{issuer}-jwks').inputs['key']}"
    token = k3s_token(service_account_private_key(dev_run), url, "reports", "reports-writer")
    claims = sts_verify(token, discovery, key_set)
    assert claims["sub"] == "system:serviceaccount:reports:reports-writer"


def test_token_from_another_key_or_issuer_is_rejected(dev_run):
    discovery, key_set = documents(dev_run, "primary")
    stranger = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        .decode()
    )
    with pytest.raises(AssertionError, match="no JWKS key"):
        sts_verify(k3s_token(stranger, PRIMARY_URL, "reports", "reports-writer"), discovery, key_set)
    with pytest.raises(jwt.InvalidIssuerError):
        sts_verify(
            k3s_token(service_account_private_key(dev_run), EDGE_URL, "reports", "reports-writer"), discovery, key_set
        )


def test_discovery_document_carries_the_fields_sts_needs(dev_run):
    discovery, _ = documents(dev_run, "primary")
    assert discovery["issuer"] == PRIMARY_URL
    assert discovery["response_types_supported"] == ["id_token"]
    assert discovery["subject_types_supported"] == ["public"]
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"sub", "iss", "aud"} <= set(discovery["claims_supported"])


def test_k3s_signs_with_the_active_issuer_and_accepts_the_standby(dev_run):
    issuers = re.findall(r"service-account-issuer=(\S+)", server_user_data(dev_run))
    assert issuers[:2] == [PRIMARY_URL, EDGE_URL]  # the first one signs new tokens
    assert re.search(rf"service-account-jwks-uri={re.escape(PRIMARY_URL)}/keys.json", server_user_data(dev_run))
    provider_urls = {p.name: p.inputs["url"] for p in dev_run.of_type(PROVIDER) if p.name.startswith("oidc-")}
    assert provider_urls == {"oidc-primary-provider": PRIMARY_URL, "oidc-edge-provider": EDGE_URL}


def test_iam_providers_use_sts_audience_and_no_thumbprint(dev_run):
    for name in ("oidc-primary-provider", "oidc-edge-provider"):
        provider = dev_run.one(PROVIDER, name)
        assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
        # IAM validates S3/CloudFront (ACM) endpoints with its trusted-CA library; a pinned
        # thumbprint would only break at the next certificate rotation.
        assert not provider.inputs.get("thumbprintLists")


def test_s3_public_bucket_exposes_exactly_the_two_documents(dev_run):
    bucket = dev_run.one(BUCKET, "oidc-primary-bucket")
    assert bucket.inputs["tags"]["k8s-platform/oidc-issuer"] == "true"
    pab = dev_run.one(PAB, "oidc-primary-public-access-block").inputs
    assert pab["blockPublicAcls"] is True and pab["ignorePublicAcls"] is True
    assert pab["blockPublicPolicy"] is False and pab["restrictPublicBuckets"] is False
    policy = json.loads(dev_run.one(POLICY, "oidc-primary-policy").inputs["policy"])
    public = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    arn = "arn:aws:s3:::dev-k3s-oidc-111111111111"
    assert public == [
        {
            "Sid": "PublicReadIssuerDocuments",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "s3:GetObject",
            "Resource": [f"{arn}/.well-known/openid-configuration", f"{arn}/keys.json"],
        }
    ]
    assert (
        dev_run.one("aws:s3/bucketVersioning:BucketVersioning", "oidc-primary-versioning").inputs[
            "versioningConfiguration"
        ]["status"]
        == "Enabled"
    )
    sse = dev_run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "oidc-primary-encryption",
    ).inputs
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    assert (
        dev_run.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "oidc-primary-ownership").inputs["rule"][
            "objectOwnership"
        ]
        == "BucketOwnerEnforced"
    )


def test_cloudfront_bucket_is_private_and_readable_only_by_its_distribution(dev_run):
    pab = dev_run.one(PAB, "oidc-edge-public-access-block").inputs
    assert all(
        pab[f] is True for f in ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")
    )
    [stmt] = [
        s
        for s in json.loads(dev_run.one(POLICY, "oidc-edge-policy").inputs["policy"])["Statement"]
        if s["Effect"] == "Allow"
    ]
    assert stmt["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert re.fullmatch(
        r"arn:aws:cloudfront::111111111111:distribution/E[0-9A-F]+", stmt["Condition"]["StringEquals"]["AWS:SourceArn"]
    )
    dist = dev_run.one("aws:cloudfront/distribution:Distribution", "oidc-edge-distribution").inputs
    assert dist["aliases"] == ["oidc.dev-k3s.platform.example.com"]
    assert dist["origins"][0]["originAccessControlId"]
    assert dist["defaultCacheBehavior"]["viewerProtocolPolicy"] == "https-only"
    assert dist["viewerCertificate"]["minimumProtocolVersion"] == "TLSv1.2_2021"
    oac = dev_run.one("aws:cloudfront/originAccessControl:OriginAccessControl", "oidc-edge-oac").inputs
    assert (oac["signingBehavior"], oac["signingProtocol"]) == ("always", "sigv4")
    records = {
        r.inputs["type"]: r.inputs
        for r in dev_run.of_type("aws:route53/record:Record")
        if r.name.startswith("oidc-edge")
    }
    assert set(records) == {"A", "AAAA"} and records["A"]["name"] == "oidc.dev-k3s.platform.example.com"


def test_a_prod_k3s_stack_protects_its_issuers():
    raw = copy.deepcopy(shipped_config("dev"))
    raw["k8s-platform:environment"] = "prod"
    raw["k8s-platform:network"] = {
        **raw["k8s-platform:network"],
        "natGateways": "one-per-az",
        "availabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"],
    }
    raw["k8s-platform:cluster"]["k3s"]["servers"]["count"] = 3
    run = run_offline("prod", raw)
    for issuer in ("primary", "edge"):
        assert run.one(BUCKET, f"oidc-{issuer}-bucket").protect
        assert run.one(PROVIDER, f"oidc-{issuer}-provider").protect
    assert run.one("aws:cloudfront/distribution:Distribution", "oidc-edge-distribution").protect
    assert run.one("tls:index/privateKey:PrivateKey", "roles-anywhere-ca").protect
    # ... and the service-account signing key whose JWKS they publish.
    assert run.one("tls:index/privateKey:PrivateKey", "k3s-pki-service-account").protect


def _issuer_program(cfg):
    key = tls.PrivateKey("sa", algorithm="RSA", rsa_bits=2048)
    issuer = OidcIssuer(
        "oidc",
        OidcIssuerArgs(
            config=IssuerConfig(),
            cluster_name=cfg.cluster_name,
            account_id=cfg.account_id,
            region=cfg.region,
            public_key_pems=[key.public_key_pem],
            tags=cfg.resource_tags(),
            protect=True,
        ),
    )
    return {"issuerUrl": issuer.issuer_url}


def test_bucket_and_provider_are_protected_when_asked():
    run = run_offline("dev", shipped_config("dev"), program=_issuer_program)
    assert run.one(BUCKET, "oidc-bucket").protect and run.one(PROVIDER, "oidc-provider").protect
    assert not run.one(OBJECT, "oidc-jwks").protect  # the documents are re-rendered, not state


def test_issuer_url_change_without_the_flag_is_refused(mutate_config):
    raw = mutate_config("dev", "cluster.name", "dev-k3s2")  # would move the bucket, so the issuer
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    [problem] = [p for p in err.value.problems if "identity.issuerUrl" in p]
    assert problem.startswith("k8s-platform:identity.issuerUrl:")
    assert "https://dev-k3s2-oidc-111111111111.s3.us-east-1.amazonaws.com" in problem and "allowIssuerChange" in problem


def test_issuer_url_change_with_the_flag_is_accepted(mutate_config):
    raw = mutate_config("dev", "cluster.name", "dev-k3s2")
    raw["k8s-platform:identity"]["allowIssuerChange"] = True
    assert parse_stack_config(raw).cluster_name == "dev-k3s2"


def test_renaming_the_issuer_bucket_is_refused(mutate_config):
    raw = mutate_config(
        "dev", "identity.issuers", [{"name": "primary", "hosting": "s3-public", "bucketName": "renamed-oidc"}]
    )
    with pytest.raises(
        ConfigError, match=r"identity\.issuerUrl: the config now derives the issuer 'https://renamed-oidc\.s3"
    ):
        parse_stack_config(raw)


def test_unpinned_issuer_is_refused_with_the_url_to_pin(mutate_config):
    with pytest.raises(
        ConfigError, match=rf"identity\.issuerUrl: is required on k3s: pin .*'{re.escape(PRIMARY_URL)}'"
    ):
        parse_stack_config(mutate_config("dev", "identity.issuerUrl", DELETE))


def test_cloudfront_issuer_needs_a_custom_domain(mutate_config):
    raw = mutate_config("dev", "identity.issuers", [{"name": "primary"}, {"name": "edge", "hosting": "cloudfront"}])
    with pytest.raises(
        ConfigError, match=r"identity\.issuers\[1\]: cloudfront hosting needs domainName and certificateArn"
    ):
        parse_stack_config(raw)


def test_cloudfront_certificate_must_be_in_us_east_1(mutate_config):
    raw = mutate_config(
        "dev",
        "identity.issuers",
        [
            {"name": "primary"},
            {
                "name": "edge",
                "hosting": "cloudfront",
                "domainName": "oidc.example.com",
                "certificateArn": "arn:aws:acm:eu-west-1:111111111111:certificate/5e1f0c2a-8d3b-4c6e-9f7a-1b2c3d4e5f60",
            },
        ],
    )
    with pytest.raises(ConfigError, match=r"identity\.issuers\[1\]\.certificateArn: .*us-east-1"):
        parse_stack_config(raw)


def test_eks_refuses_self_hosted_issuers(mutate_config):
    raw = mutate_config("prod", "identity.issuers", [{"name": "primary"}])
    with pytest.raises(ConfigError, match=r"k8s-platform:identity\.issuers: EKS serves its own OIDC issuer"):
        parse_stack_config(raw)
