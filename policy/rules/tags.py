"""Ownership and cost attribution: every taggable AWS resource carries the required tags."""

from __future__ import annotations

from pulumi_policy import Severity

from .common import Benchmark, get, resource_rule, tags_of

# Types of this platform that accept tags but might be registered without them. A resource of any
# other aws: type is checked whenever it passes `tags`.
TAGGABLE = [
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:ec2/instance:Instance",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/eip:Eip",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/vpcEndpoint:VpcEndpoint",
    "aws:ec2/flowLog:FlowLog",
    "aws:eks/cluster:Cluster",
    "aws:eks/nodeGroup:NodeGroup",
    "aws:eks/addon:Addon",
    "aws:eks/accessEntry:AccessEntry",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    "aws:kms/key:Key",
    "aws:iam/role:Role",
    "aws:iam/policy:Policy",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:sqs/queue:Queue",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/eventRule:EventRule",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/targetGroup:TargetGroup",
    "aws:ssm/parameter:Parameter",
    "aws:secretsmanager/secret:Secret",
    "aws:lambda/function:Function",
    "aws:rolesanywhere/trustAnchor:TrustAnchor",
    "aws:rolesanywhere/profile:Profile",
    "aws:autoscaling/group:Group",
    "aws:ebs/volume:Volume",
    "aws:cloudfront/distribution:Distribution",
]


class _AnyAwsTagged(tuple):
    """Membership test: the listed types, or any aws: resource (the check skips those without tags)."""

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and item.startswith("aws:") and not item.startswith("aws:index")


def _required_tags(props, cfg, report, args) -> None:
    if get(props, "tags") is None:
        if args.resource_type in TAGGABLE:
            report(f"no tags: required {cfg['requiredTags']}")
        return
    tags = tags_of(props)
    missing = [k for k in cfg["requiredTags"] if not tags.get(k)]
    if missing:
        report(f"missing required tag(s) {missing} (ownership and cost attribution)")


RULES = [
    resource_rule(
        "required-tags",
        "Taggable AWS resources carry the required ownership and cost tags.",
        Severity.LOW,
        [Benchmark("AWS Config", "required-tags")],
        _AnyAwsTagged(TAGGABLE),
        _required_tags,
        {"requiredTags": {"type": "array", "items": {"type": "string"}, "default": ["owner", "cost-center"]}},
    ),
]
