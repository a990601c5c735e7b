"""S3 server access logs of the stack's sensitive buckets (the K3s etcd snapshots, which hold every
Kubernetes Secret, and the OIDC issuer buckets, whose write access would forge workload identity):
one log bucket per stack, and a `BucketLogging` per logged bucket.

The log bucket: SSE-S3 (server access log delivery does not support SSE-KMS on the target bucket),
every public access blocked, object ownership enforced (delivery is granted by bucket policy to
the S3 logging service, for this account's source buckets only, never by ACL), TLS only,
versioned, objects expired after `ACCESS_LOG_RETENTION_DAYS`, protected in prod. It does not log
itself (a log bucket that logs into itself loops).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import StackConfig
from components.core import iam_documents as iam

# Read by the policy pack's s3-bucket-kms-encryption (its `accessLogTag`): SSE-S3 is all log
# delivery supports on a target bucket.
ACCESS_LOG_TARGET_TAG = "k8s-platform/s3-access-log-target"

# A year of access logs (CIS/PCI keep one year); noncurrent versions a further 30 days.
ACCESS_LOG_RETENTION_DAYS = 365
NONCURRENT_DAYS = 30
LOGGING_SERVICE = "logging.s3.amazonaws.com"


def log_bucket_name(cluster_name: str, account_id: str) -> str:
    return f"{cluster_name}-s3-access-logs-{account_id}"


def log_bucket_policy(log_bucket_arn: str, account_id: str, partition: str = "aws") -> dict[str, Any]:
    """S3 log delivery may write under `s3/` only, for source buckets of this account."""
    return iam.document(
        iam.statement(
            "s3:PutObject",
            f"{log_bucket_arn}/s3/*",
            principal={"Service": LOGGING_SERVICE},
            conditions={
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:s3:::*"},
            },
            sid="S3ServerAccessLogDelivery",
        ),
        iam.deny_insecure_transport("s3:*", [log_bucket_arn, f"{log_bucket_arn}/*"]),
    )


def log_prefix(bucket_name: str) -> str:
    return f"s3/{bucket_name}/"


@dataclass(frozen=True)
class AccessLogBucketArgs:
    cluster_name: str
    """Part of the bucket's name (`log_bucket_name`)."""
    account_id: str
    """Part of the bucket's name; the only account whose buckets may deliver logs to it."""
    tags: dict[str, str]
    """Tags for the bucket."""
    protect: bool = False
    """Protect the bucket and refuse force-destroy (the environment protects stateful resources).
    Default: unprotected."""

    @classmethod
    def from_stack(cls, cfg: StackConfig) -> "AccessLogBucketArgs":
        return cls(
            cluster_name=cfg.cluster_name,
            account_id=cfg.account_id,
            tags=cfg.resource_tags(),
            protect=cfg.safeguards_in_force.protect_stateful_resources,
        )


class AccessLogBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket

    def __init__(self, name: str, args: AccessLogBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:k3s:AccessLogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=log_bucket_name(args.cluster_name, args.account_id),
            force_destroy=not args.protect,
            tags={**args.tags, ACCESS_LOG_TARGET_TAG: "true"},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: iam.to_json(log_bucket_policy(arn, args.account_id))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_block]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": ACCESS_LOG_RETENTION_DAYS},
                    "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_DAYS},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                }
            ],
            opts=child,
        )
        self.bucket = bucket
        self.register_outputs({"bucketName": bucket.bucket})

    def log(
        self, name: str, source: aws.s3.Bucket, source_name: pulumi.Input[str], parent: pulumi.Resource
    ) -> aws.s3.BucketLogging:
        """Server access logging of `source` into this bucket, under `s3/<source name>/`."""
        return aws.s3.BucketLogging(
            name,
            bucket=source.id,
            target_bucket=self.bucket.id,
            target_prefix=pulumi.Output.from_input(source_name).apply(log_prefix),
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[self]),
        )
