"""Stack-level safety: stateful resources are protected from deletion, and functions run in the VPC."""

from __future__ import annotations

from pulumi_policy import Severity

from .common import Benchmark, checkov, is_set, resource_rule

LAMBDA = "aws:lambda/function:Function"
DEFAULT_PROTECTED = [
    "aws:eks/cluster:Cluster",
    "aws:kms/key:Key",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    "aws:efs/fileSystem:FileSystem",
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
]


class _AnyType(tuple):
    def __contains__(self, item: object) -> bool:
        return isinstance(item, str)


def _protected(props, cfg, report, args) -> None:
    if args.resource_type in cfg["protectedTypes"] and not args.opts.protect:
        report(
            f"{args.resource_type} holds state that cannot be recreated (data, keys, identity); register it "
            "with protect=True so a refactor or destroy cannot delete it"
        )


def _lambda_in_vpc(props, cfg, report, args) -> None:
    # Subnet ids are unknown at preview when the subnets are created in the same stack: set is enough.
    if not is_set(props, "vpcConfig", "subnetIds"):
        report("the function runs outside the VPC (vpcConfig.subnetIds empty)")


RULES = [
    resource_rule(
        "stateful-resources-protected",
        "Stateful resources (cluster, keys, buckets, OIDC providers, EFS file systems, databases) are protected.",
        Severity.HIGH,
        [Benchmark("Pulumi", "protect resource option")],
        _AnyType(),
        _protected,
        {
            "protectedTypes": {
                "type": "array",
                "items": {"type": "string"},
                "default": DEFAULT_PROTECTED,
                "description": "resource types that must be registered with protect=True",
            }
        },
    ),
    resource_rule(
        "lambda-in-vpc",
        "Lambda functions run inside the VPC.",
        Severity.MEDIUM,
        [checkov("CKV_AWS_117")],
        [LAMBDA],
        _lambda_in_vpc,
    ),
]
