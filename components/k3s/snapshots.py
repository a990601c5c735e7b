"""The etcd snapshot bucket of a K3s cluster: SSE-KMS, versioned, private, TLS-only, protected in prod."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.core import iam_documents as iam
from components.k3s.policies import snapshot_bucket_policy

# Snapshots K3s prunes (retention) stay recoverable this long as noncurrent versions.
NONCURRENT_DAYS = 30


def snapshot_bucket(
    name: str,
    *,
    key_arn: pulumi.Input[str],
    protect: bool,
    tags: dict[str, str],
    parent: pulumi.Resource,
    noncurrent_days: int = NONCURRENT_DAYS,
) -> aws.s3.Bucket:
    child = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(
        name, force_destroy=not protect, tags=tags, opts=pulumi.ResourceOptions(parent=parent, protect=protect)
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=key_arn
                ),
                bucket_key_enabled=True,
            )
        ],
        opts=child,
    )
    aws.s3.BucketVersioning(
        name,
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=child,
    )
    access_block = aws.s3.BucketPublicAccessBlock(
        name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketOwnershipControls(
        name,
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=child,
    )
    aws.s3.BucketPolicy(
        name,
        bucket=bucket.id,
        policy=bucket.arn.apply(lambda arn: iam.to_json(snapshot_bucket_policy(arn))),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[access_block]),
    )
    aws.s3.BucketLifecycleConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-noncurrent-snapshots",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=noncurrent_days
                ),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=7
                ),
            )
        ],
        opts=child,
    )
    return bucket
