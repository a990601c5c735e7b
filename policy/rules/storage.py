"""Data at rest and public exposure: S3 public access (with the one allowed exception, the OIDC
issuer bucket serving its two documents), S3/EBS/SQS/Secrets Manager encryption, KMS rotation,
log retention and SSM SecureStrings."""

from __future__ import annotations

import json
import re

from pulumi_policy import Severity

from .common import (
    awsguard,
    checkov,
    cis_aws,
    get,
    is_set,
    is_wildcard_principal,
    policy_document,
    resource_rule,
    resources_of,
    stack_rule,
    statements,
    str_list,
    tags_of,
    transitive_dependencies,
    truthy,
)

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
BUCKET_OBJECTS = ("aws:s3/bucketObjectv2:BucketObjectv2", "aws:s3/bucketObject:BucketObject")
KMS_KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
QUEUE = "aws:sqs/queue:Queue"
SSM_PARAMETER = "aws:ssm/parameter:Parameter"
SECRET = "aws:secretsmanager/secret:Secret"
EBS_VOLUME = "aws:ebs/volume:Volume"
DISCOVERY_KEY = ".well-known/openid-configuration"
PAB_FLAGS = ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")
ACL_FLAGS = ("blockPublicAcls", "ignorePublicAcls")

ISSUER_SCHEMA = {
    "issuerTag": {
        "type": "string",
        "default": "k8s-platform/oidc-issuer",
        "description": "tag (value 'true') marking the one bucket allowed to serve public OIDC documents",
    },
}


# S3 server access log delivery supports only SSE-S3 on the target bucket (AWS S3 User Guide,
# "Enabling Amazon S3 server access logging"): the stack's log bucket is exempt from SSE-KMS.
ACCESS_LOG_SCHEMA = {
    "accessLogTag": {
        "type": "string",
        "default": "k8s-platform/s3-access-log-target",
        "description": "tag (value 'true') marking the server access log bucket (SSE-S3 only)",
    },
}


def is_issuer_bucket(bucket, cfg) -> bool:
    return tags_of(bucket.props).get(cfg["issuerTag"]) == "true"


def _bucket_of(resource, buckets):
    """The bucket a bucket-level resource configures: through its `bucket` input's dependency when
    the engine recorded it, else its direct dependencies, else anything it depends on."""
    urns = {b.urn: b for b in buckets}
    for deps in (
        resource.property_dependencies.get("bucket", []),
        resource.dependencies,
        transitive_dependencies(resource),
    ):
        found = [urns[d.urn] for d in deps if d.urn in urns]
        if found:
            return found[0]
    return None


def _public_access(resources, cfg, report, args) -> None:
    buckets = resources_of(resources, *BUCKET_TYPES)
    blocks: dict[str, object] = {}
    for pab in resources_of(resources, PUBLIC_ACCESS_BLOCK):
        bucket = _bucket_of(pab, buckets)
        if bucket is not None:
            blocks[bucket.urn] = pab
    for bucket in buckets:
        pab = blocks.get(bucket.urn)
        issuer = is_issuer_bucket(bucket, cfg)
        if pab is None:
            report(f"bucket '{bucket.name}' has no BucketPublicAccessBlock", bucket.urn)
            continue
        required = ACL_FLAGS if issuer else PAB_FLAGS
        off = [f for f in required if not truthy(get(pab.props, f, default=False))]
        if off:
            what = "the OIDC issuer bucket must still refuse ACLs" if issuer else "public access is not fully blocked"
            report(f"bucket '{bucket.name}': {', '.join(off)} not true ({what})", pab.urn)


def _object_key(resource_arn: str) -> str | None:
    if not resource_arn.startswith("arn:") or "/" not in resource_arn:
        return None
    return resource_arn.split("/", 1)[1]


def _jwks_keys(resources, bucket) -> set[str]:
    """The JWKS object key the bucket's discovery document points at, if the document is in the stack."""
    keys: set[str] = set()
    for obj in resources_of(resources, *BUCKET_OBJECTS):
        if get(obj.props, "key") != DISCOVERY_KEY or _bucket_of(obj, [bucket]) is None:
            continue
        content = get(obj.props, "content")
        try:
            doc = json.loads(content) if isinstance(content, str) else {}
        except json.JSONDecodeError:
            doc = {}
        issuer = str(doc.get("issuer", "")).rstrip("/") if isinstance(doc, dict) else ""
        jwks_uri = str(doc.get("jwks_uri", "")) if isinstance(doc, dict) else ""
        # Object keys are relative to the issuer URL (the bucket, or a path-style prefix in it).
        if issuer and jwks_uri.startswith(issuer + "/"):
            keys.add(jwks_uri[len(issuer) + 1 :])
        elif jwks_uri:
            keys.add(re.sub(r"^https://[^/]+/?", "", jwks_uri))
    return keys


def _issuer_policy_scope(resources, cfg, report, args) -> None:
    buckets = resources_of(resources, *BUCKET_TYPES)
    for bp in resources_of(resources, BUCKET_POLICY):
        bucket = _bucket_of(bp, buckets)
        issuer = bucket is not None and is_issuer_bucket(bucket, cfg)
        allowed_keys = {DISCOVERY_KEY, *cfg["jwksKeys"], *(_jwks_keys(resources, bucket) if issuer else set())}
        for stmt in statements(policy_document(get(bp.props, "policy"))):
            if stmt.get("Effect") != "Allow" or not is_wildcard_principal(stmt):
                continue
            label = f"bucket policy '{bp.name}'"
            if not issuer:
                report(
                    f"{label} allows {str_list(stmt.get('Action'))} to everyone on a bucket not tagged "
                    f"{cfg['issuerTag']}=true",
                    bp.urn,
                )
                continue
            actions = set(str_list(stmt.get("Action")))
            if actions - {"s3:GetObject"}:
                report(
                    f"{label}: the issuer bucket may grant the public only s3:GetObject, not {sorted(actions)}", bp.urn
                )
            for arn in str_list(stmt.get("Resource")):
                key = _object_key(arn)
                if key is None or key not in allowed_keys:
                    report(
                        f"{label}: public read of {arn} exceeds the issuer documents ({sorted(allowed_keys)})", bp.urn
                    )


def _bucket_kms(resources, cfg, report, args) -> None:
    buckets = resources_of(resources, *BUCKET_TYPES)
    encrypted: set[str] = set()
    for sse in resources_of(resources, *BUCKET_SSE):
        algos = {
            str(get(r, "applyServerSideEncryptionByDefault", "sseAlgorithm"))
            for r in get(sse.props, "rules", default=[])
        }
        bucket = _bucket_of(sse, buckets)
        if bucket is not None and algos & {"aws:kms", "aws:kms:dsse"}:
            encrypted.add(bucket.urn)
    for bucket in buckets:
        # The bucket's own (deprecated, still honoured) serverSideEncryptionConfiguration counts too.
        inline = get(
            bucket.props,
            "serverSideEncryptionConfiguration",
            "rule",
            "applyServerSideEncryptionByDefault",
            "sseAlgorithm",
        )
        access_log_target = tags_of(bucket.props).get(cfg["accessLogTag"]) == "true"
        if (
            is_issuer_bucket(bucket, cfg)
            or access_log_target
            or bucket.urn in encrypted
            or inline in ("aws:kms", "aws:kms:dsse")
        ):
            continue
        report(f"bucket '{bucket.name}' has no SSE-KMS default encryption configuration", bucket.urn)


def _kms_rotation(props, cfg, report, args) -> None:
    spec = get(props, "customerMasterKeySpec") or get(props, "keySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and not truthy(get(props, "enableKeyRotation", default=False)):
        report("enableKeyRotation is not true")


def _log_retention(props, cfg, report, args) -> None:
    days = get(props, "retentionInDays")
    if days is None:
        report("retentionInDays is not set (logs would be kept forever, or lost on a default)")
    elif int(days) != 0 and int(days) < cfg["minRetentionDays"]:
        report(f"retentionInDays {days} is below the minimum {cfg['minRetentionDays']}")


def _log_kms(props, cfg, report, args) -> None:
    if not is_set(props, "kmsKeyId"):
        report("kmsKeyId is not set: log data is encrypted only with the service key")


def _sqs_encrypted(props, cfg, report, args) -> None:
    if not truthy(get(props, "sqsManagedSseEnabled", default=False)) and not is_set(props, "kmsMasterKeyId"):
        report("neither sqsManagedSseEnabled nor kmsMasterKeyId is set")


_SECRET_NAME = re.compile(r"(?i)(token|password|passwd|secret|private[-_]?key|credential|kubeconfig)")


def _ssm_secure(props, cfg, report, args) -> None:
    name = str(get(props, "name", default=args.name))
    if _SECRET_NAME.search(name) and get(props, "type") != "SecureString":
        report(f"parameter '{name}' holds a secret but is of type {get(props, 'type')}; use SecureString")


def _secret_kms(props, cfg, report, args) -> None:
    if not is_set(props, "kmsKeyId"):
        report("kmsKeyId is not set: use a customer-managed key so access needs kms:Decrypt too")


def _ebs_encrypted(props, cfg, report, args) -> None:
    if not truthy(get(props, "encrypted", default=False)):
        report("encrypted is not true")


RULES = [
    stack_rule(
        "s3-public-access-blocked",
        "Every bucket blocks public access (the OIDC issuer bucket still refuses ACLs).",
        Severity.CRITICAL,
        [cis_aws("2.1.4"), checkov("CKV2_AWS_6")],
        [*BUCKET_TYPES, PUBLIC_ACCESS_BLOCK],
        _public_access,
        dict(ISSUER_SCHEMA),
    ),
    stack_rule(
        "s3-oidc-issuer-serves-only-discovery",
        "Only the tagged OIDC issuer bucket is public, and only for its discovery document and JWKS.",
        Severity.CRITICAL,
        [checkov("CKV_AWS_70")],
        [*BUCKET_TYPES, BUCKET_POLICY, *BUCKET_OBJECTS],
        _issuer_policy_scope,
        {
            **ISSUER_SCHEMA,
            "jwksKeys": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["openid/v1/jwks"],
                "description": "object keys the JWKS may be served from",
            },
        },
    ),
    stack_rule(
        "s3-bucket-kms-encryption",
        "Buckets (except the public issuer bucket) default to SSE-KMS.",
        Severity.MEDIUM,
        [checkov("CKV_AWS_145")],
        [*BUCKET_TYPES, *BUCKET_SSE],
        _bucket_kms,
        {**ISSUER_SCHEMA, **ACCESS_LOG_SCHEMA},
    ),
    resource_rule(
        "kms-key-rotation",
        "Symmetric KMS keys rotate automatically.",
        Severity.MEDIUM,
        [awsguard("cmk-backing-key-rotation-enabled"), checkov("CKV_AWS_7"), cis_aws("3.6")],
        [KMS_KEY],
        _kms_rotation,
    ),
    resource_rule(
        "log-group-retention",
        "Log groups set a retention of at least the configured days.",
        Severity.LOW,
        [checkov("CKV_AWS_66"), checkov("CKV_AWS_338")],
        [LOG_GROUP],
        _log_retention,
        {"minRetentionDays": {"type": "integer", "minimum": 1, "default": 90}},
    ),
    resource_rule(
        "log-group-kms",
        "Log groups are encrypted with a customer-managed KMS key.",
        Severity.MEDIUM,
        [checkov("CKV_AWS_158")],
        [LOG_GROUP],
        _log_kms,
    ),
    resource_rule(
        "sqs-queue-encrypted",
        "SQS queues are encrypted at rest.",
        Severity.MEDIUM,
        [checkov("CKV_AWS_27")],
        [QUEUE],
        _sqs_encrypted,
    ),
    resource_rule(
        "ssm-secret-parameter-secure-string",
        "SSM parameters holding secrets are SecureStrings.",
        Severity.HIGH,
        [checkov("CKV2_AWS_34")],
        [SSM_PARAMETER],
        _ssm_secure,
    ),
    resource_rule(
        "secretsmanager-secret-kms",
        "Secrets Manager secrets use a customer-managed KMS key.",
        Severity.MEDIUM,
        [checkov("CKV_AWS_149")],
        [SECRET],
        _secret_kms,
    ),
    resource_rule(
        "ebs-volume-encrypted",
        "Standalone EBS volumes are encrypted.",
        Severity.HIGH,
        [awsguard("encrypted-volumes"), checkov("CKV_AWS_3")],
        [EBS_VOLUME],
        _ebs_encrypted,
    ),
]
