"""`OidcIssuer`: a self-hosted OIDC issuer for a K3s cluster's service-account tokens, and its IAM provider.

Publishes the two documents STS reads (`oidc_documents`: discovery + JWKS computed from the
Pulumi-held service-account public key) and registers the IAM OIDC provider. Hosting:

- `s3-public`: the documents are served by S3 itself. The public-access block refuses ACLs (and
  ownership is BucketOwnerEnforced) but lets one bucket policy grant `s3:GetObject` to everyone
  on exactly the two document keys; nothing else in the bucket is readable. Tagged
  `k8s-platform/oidc-issuer=true`, the marker the policy pack allows this one exception for.
- `cloudfront`: a fully private bucket behind CloudFront with Origin Access Control; the bucket
  policy admits only the CloudFront service for this distribution's ARN (`AWS:SourceArn`) on the
  two keys. The issuer is a custom domain so a replaced distribution keeps the URL.

Encryption is SSE-S3, deliberately not SSE-KMS: S3 refuses anonymous reads of KMS-encrypted
objects, and both documents are public by design (nothing confidential at rest).

The issuer URL comes from config (`IssuerConfig.url`), never from servers or distribution ids, so
a cluster rebuild keeps it. In prod the bucket, distribution and OIDC provider are protected.
No thumbprint is set: for an S3-hosted issuer IAM validates against its library of trusted root
CAs (thumbprints are ignored); for the CloudFront custom domain IAM retrieves the top
intermediate CA thumbprint itself when the provider is created without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import IssuerConfig, StackConfig
from components.core import iam_documents as iam
from components.core.trust_policies import STS_AUDIENCE
from components.identity import oidc_documents as docs

ISSUER_TAG = "k8s-platform/oidc-issuer"
# AWS managed cache policy "CachingOptimized".
CACHING_OPTIMIZED_POLICY_ID = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ORIGIN_ID = "oidc-issuer-bucket"


def document_arns(bucket_arn: str) -> list[str]:
    return [f"{bucket_arn}/{docs.DISCOVERY_KEY}", f"{bucket_arn}/{docs.JWKS_KEY}"]


def _deny_insecure_transport(bucket_arn: str) -> dict:
    return iam.deny_insecure_transport("s3:*", [bucket_arn, f"{bucket_arn}/*"])


def public_read_policy(bucket_arn: str) -> dict:
    """s3-public: anyone may GET exactly the discovery document and the JWKS, nothing else."""
    return iam.document(
        iam.statement(
            "s3:GetObject", document_arns(bucket_arn), principal={"AWS": "*"}, sid="PublicReadIssuerDocuments"
        ),
        _deny_insecure_transport(bucket_arn),
    )


def cloudfront_read_policy(bucket_arn: str, distribution_arn: str) -> dict:
    """cloudfront: only this distribution (through OAC) may GET the two documents."""
    return iam.document(
        iam.statement(
            "s3:GetObject",
            document_arns(bucket_arn),
            principal={"Service": "cloudfront.amazonaws.com"},
            conditions={"StringEquals": {"AWS:SourceArn": distribution_arn}},
            sid="CloudFrontOacReadIssuerDocuments",
        ),
        _deny_insecure_transport(bucket_arn),
    )


@dataclass(frozen=True)
class OidcIssuerArgs:
    config: IssuerConfig
    """One `identity.issuers[]` entry (or the default issuer): its name, hosting and host name."""
    cluster_name: str
    """Part of the issuer's bucket name and default URL."""
    account_id: str
    """Part of the issuer's bucket name and default URL."""
    region: str
    """The bucket's region, part of the issuer's default URL."""
    public_key_pems: list[pulumi.Input[str]]
    """The service-account public key(s) the JWKS publishes: during a key rotation both old and new."""
    tags: dict[str, str]
    """Tags for every taggable resource (plus the issuer-URL tag)."""
    protect: bool = False
    """Protect the bucket, the distribution and the IAM OIDC provider (the environment protects stateful
    resources): a replaced issuer breaks every IRSA token it signed. Default: unprotected."""
    force_destroy: bool = False
    """Empty the versioned bucket (every object version) when it is destroyed, as an ephemeral (ci) stack's
    destroy must. Default: no (a destroy stops at a non-empty bucket)."""

    @classmethod
    def from_stack(
        cls, cfg: StackConfig, issuer: IssuerConfig, public_key_pems: list[pulumi.Input[str]]
    ) -> "OidcIssuerArgs":
        return cls(
            config=issuer,
            cluster_name=cfg.cluster_name,
            account_id=cfg.account_id,
            region=cfg.region,
            public_key_pems=list(public_key_pems),
            tags=cfg.resource_tags(),
            protect=cfg.safeguards_in_force.protect_stateful_resources,
            force_destroy=cfg.safeguards_in_force.ephemeral,
        )


class OidcIssuer(pulumi.ComponentResource):
    issuer_name: str  # the config name (identity.issuers[].name)
    issuer_url: str  # known from config, before anything is created
    jwks_url: str
    bucket_name: str
    bucket: aws.s3.Bucket
    oidc_provider_arn: pulumi.Output[str]
    discovery_json: str
    jwks_json: pulumi.Output[str]
    distribution_domain: pulumi.Output[str] | None  # cloudfront hosting only

    def __init__(self, name: str, args: OidcIssuerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:identity:OidcIssuer", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        self.issuer_name = cfg.name
        self.issuer_url = cfg.url(args.cluster_name, args.account_id, args.region)
        self.jwks_url = docs.jwks_url(self.issuer_url)
        self.bucket_name = cfg.bucket(args.cluster_name, args.account_id)
        tags = {**args.tags, "k8s-platform/oidc-issuer-url": self.issuer_url}

        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=self.bucket_name,
            tags={**tags, ISSUER_TAG: "true"},
            opts=kept,
            **({"force_destroy": True} if args.force_destroy else {}),
        )
        self.bucket = bucket  # its access logging is wired by the control plane (k3s/access_logs.py)
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        public = cfg.hosting == "s3-public"
        access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            ignore_public_acls=True,
            # s3-public: the bucket policy is the one public grant; cloudfront: nothing public at all.
            block_public_policy=not public,
            restrict_public_buckets=not public,
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )

        self.discovery_json = docs.to_json(docs.discovery_document(self.issuer_url))
        self.jwks_json = pulumi.Output.all(*args.public_key_pems).apply(lambda pems: docs.to_json(docs.jwks(*pems)))
        objects = [
            aws.s3.BucketObjectv2(
                f"{name}-{slug}",
                bucket=bucket.id,
                key=key,
                content=content,
                content_type="application/json",
                cache_control="max-age=300",
                tags=tags,
                opts=child,
            )
            for slug, key, content in (
                ("discovery", docs.DISCOVERY_KEY, self.discovery_json),
                ("jwks", docs.JWKS_KEY, self.jwks_json),
            )
        ]

        serving: list[pulumi.Resource] = [*objects]
        if public:
            policy = bucket.arn.apply(lambda arn: iam.to_json(public_read_policy(arn)))
            serving.append(
                aws.s3.BucketPolicy(
                    f"{name}-policy",
                    bucket=bucket.id,
                    policy=policy,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[access_block]),
                )
            )
            self.distribution_domain = None
        else:
            serving += self._cloudfront(name, cfg, bucket, tags, args.protect, access_block)

        # Registered once the documents are served: IAM connects to the issuer host on creation.
        provider = aws.iam.OpenIdConnectProvider(
            f"{name}-provider",
            url=self.issuer_url,
            client_id_lists=[STS_AUDIENCE],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=serving),
        )
        self.oidc_provider_arn = provider.arn
        self.register_outputs(
            {
                "issuerUrl": self.issuer_url,
                "jwksUrl": self.jwks_url,
                "oidcProviderArn": self.oidc_provider_arn,
                "bucketName": self.bucket_name,
            }
        )

    def _cloudfront(
        self,
        name: str,
        cfg: IssuerConfig,
        bucket: aws.s3.Bucket,
        tags: dict[str, str],
        protect: bool,
        access_block: pulumi.Resource,
    ) -> list[pulumi.Resource]:
        child = pulumi.ResourceOptions(parent=self)
        oac = aws.cloudfront.OriginAccessControl(
            f"{name}-oac",
            name=self.bucket_name[:64],
            description=f"OIDC issuer {self.issuer_url}",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            opts=child,
        )
        distribution = aws.cloudfront.Distribution(
            f"{name}-distribution",
            enabled=True,
            comment=f"OIDC issuer {self.issuer_url}",
            aliases=[str(cfg.domain_name)],
            origins=[
                {
                    "domain_name": bucket.bucket_regional_domain_name,
                    "origin_id": ORIGIN_ID,
                    "origin_access_control_id": oac.id,
                }
            ],
            default_cache_behavior={
                "target_origin_id": ORIGIN_ID,
                "allowed_methods": ["GET", "HEAD"],
                "cached_methods": ["GET", "HEAD"],
                "viewer_protocol_policy": "https-only",
                "cache_policy_id": CACHING_OPTIMIZED_POLICY_ID,
                "compress": True,
            },
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            viewer_certificate={
                "acm_certificate_arn": cfg.certificate_arn,
                "ssl_support_method": "sni-only",
                "minimum_protocol_version": "TLSv1.2_2021",
            },
            http_version="http2and3",
            is_ipv6_enabled=True,
            price_class="PriceClass_100",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        self.distribution_domain = distribution.domain_name
        policy = pulumi.Output.all(bucket.arn, distribution.arn).apply(
            lambda a: iam.to_json(cloudfront_read_policy(a[0], a[1]))
        )
        serving: list[pulumi.Resource] = [
            distribution,
            aws.s3.BucketPolicy(
                f"{name}-policy",
                bucket=bucket.id,
                policy=policy,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[access_block]),
            ),
        ]
        if cfg.hosted_zone_id:
            for record_type in ("A", "AAAA"):
                serving.append(
                    aws.route53.Record(
                        f"{name}-alias-{record_type.lower()}",
                        zone_id=cfg.hosted_zone_id,
                        name=str(cfg.domain_name),
                        type=record_type,
                        aliases=[
                            {
                                "name": distribution.domain_name,
                                "zone_id": distribution.hosted_zone_id,
                                "evaluate_target_health": False,
                            }
                        ],
                        opts=child,
                    )
                )
        return serving
