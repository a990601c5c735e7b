"""`Network`: the platform VPC with a secondary pod CIDR, three subnet tiers per zone, NAT,
VPC endpoints and flow logs. Layout comes from `network_layout` (pure); this file only wires it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import NetworkConfig, StackConfig
from components.core import iam_documents as iam
from components.core.kms_keys import rotating_key
from components.network.layout import (
    endpoint_service_name,
    nat_for_az,
    nat_gateway_azs,
    plan_subnets,
    subnet_tags,
)


@dataclass(frozen=True)
class NetworkArgs:
    config: NetworkConfig
    """The `network` section: CIDRs, zones, NAT layout, endpoints, flow logs."""
    cluster_name: str
    """Names every resource and carries the Kubernetes/Karpenter discovery tags."""
    region: str
    """Interface endpoint service names (`com.amazonaws.<region>.<service>`)."""
    account_id: str
    """The flow-log KMS key policy's account."""
    tags: dict[str, str]
    """Tags for every taggable resource."""
    protect: bool = False
    """Prod: keys and log groups holding audit data survive a mistaken destroy."""

    @classmethod
    def from_stack(cls, cfg: StackConfig) -> "NetworkArgs":
        return cls(
            config=cfg.network,
            cluster_name=cfg.cluster_name,
            region=cfg.region,
            account_id=cfg.account_id,
            tags=cfg.resource_tags(),
            protect=cfg.safeguards_in_force.protect_stateful_resources,
        )


class Network(pulumi.ComponentResource):
    """Outputs: vpc_id, vpc_cidr, pod_cidr, and per tier `{az: subnet_id}` maps."""

    azs: list[str]
    vpc_cidr: str
    pod_cidr: str
    vpc_id: pulumi.Output[str]
    public_subnet_ids: dict[str, pulumi.Output[str]]
    private_subnet_ids: dict[str, pulumi.Output[str]]
    pod_subnet_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:network:Network", name, None, opts)
        cfg, tags, cluster = args.config, args.tags, args.cluster_name
        child = pulumi.ResourceOptions(parent=self)
        self.azs = list(cfg.availability_zones)
        self.vpc_cidr = cfg.vpc_cidr
        self.pod_cidr = cfg.pod_cidr

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=cfg.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={**tags, "Name": f"{cluster}-vpc"},
            opts=child,
        )
        self.vpc_id = vpc.id
        # The secondary block must exist before any pod subnet is carved from it.
        pod_block = aws.ec2.VpcIpv4CidrBlockAssociation(
            f"{name}-pod-cidr", vpc_id=vpc.id, cidr_block=cfg.pod_cidr, opts=child
        )
        # Lock down the default security group: nothing may silently use it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, tags={**tags, "Name": f"{cluster}-default-locked"}, opts=child
        )

        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={**tags, "Name": f"{cluster}-igw"}, opts=child)

        subnets: dict[str, aws.ec2.Subnet] = {}
        for plan in plan_subnets(cfg.vpc_cidr, cfg.pod_cidr, self.azs):
            subnets[plan.key] = aws.ec2.Subnet(
                f"{name}-{plan.key}",
                vpc_id=vpc.id,
                cidr_block=plan.cidr,
                availability_zone=plan.az,
                map_public_ip_on_launch=False,
                tags={**tags, **subnet_tags(plan, cluster)},
                opts=child if plan.tier != "pod" else pulumi.ResourceOptions(parent=self, depends_on=[pod_block]),
            )
        self.public_subnet_ids = {az: subnets[f"public-{az}"].id for az in self.azs}
        self.private_subnet_ids = {az: subnets[f"private-{az}"].id for az in self.azs}
        self.pod_subnet_ids = {az: subnets[f"pod-{az}"].id for az in self.azs}

        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={**tags, "Name": f"{cluster}-public"},
            opts=child,
        )
        for az in self.azs:
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{az}", subnet_id=subnets[f"public-{az}"].id, route_table_id=public_rt.id, opts=child
            )

        nat_azs = nat_gateway_azs(self.azs, cfg.nat_gateways)
        nats: dict[str, aws.ec2.NatGateway] = {}
        for az in nat_azs:
            eip = aws.ec2.Eip(
                f"{name}-nat-{az}", domain="vpc", tags={**tags, "Name": f"{cluster}-nat-{az}"}, opts=child
            )
            nats[az] = aws.ec2.NatGateway(
                f"{name}-nat-{az}",
                allocation_id=eip.id,
                subnet_id=subnets[f"public-{az}"].id,
                tags={**tags, "Name": f"{cluster}-nat-{az}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )

        # One private route table per zone (node and pod subnets of that zone share it), so a zone's
        # egress survives the loss of another zone's NAT when NAT is per zone.
        private_rts: list[aws.ec2.RouteTable] = []
        for az in self.azs:
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{az}",
                vpc_id=vpc.id,
                routes=[
                    aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nats[nat_for_az(az, nat_azs)].id)
                ],
                tags={**tags, "Name": f"{cluster}-private-{az}"},
                opts=child,
            )
            private_rts.append(rt)
            for tier in ("private", "pod"):
                aws.ec2.RouteTableAssociation(
                    f"{name}-{tier}-{az}", subnet_id=subnets[f"{tier}-{az}"].id, route_table_id=rt.id, opts=child
                )

        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=endpoint_service_name(args.region, "s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_rts],
            tags={**tags, "Name": f"{cluster}-s3"},
            opts=child,
        )
        if cfg.interface_endpoints:
            endpoint_sg = aws.ec2.SecurityGroup(
                f"{name}-endpoints",
                vpc_id=vpc.id,
                description="HTTPS from the VPC (nodes and pods) to AWS interface endpoints",
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        protocol="tcp",
                        from_port=443,
                        to_port=443,
                        cidr_blocks=[cfg.vpc_cidr, cfg.pod_cidr],
                        description="HTTPS from nodes and pods",
                    )
                ],
                tags={**tags, "Name": f"{cluster}-endpoints"},
                opts=child,
            )
            for service in cfg.interface_endpoints:
                aws.ec2.VpcEndpoint(
                    f"{name}-{service.replace('.', '-')}",
                    vpc_id=vpc.id,
                    service_name=endpoint_service_name(args.region, service),
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=list(self.private_subnet_ids.values()),
                    security_group_ids=[endpoint_sg.id],
                    tags={**tags, "Name": f"{cluster}-{service}"},
                    opts=child,
                )

        if cfg.flow_logs.enabled:
            self._flow_logs(name, args, vpc)

        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "podSubnetIds": self.pod_subnet_ids,
            }
        )

    def _flow_logs(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc) -> None:
        cfg, tags = args.config.flow_logs, args.tags
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)  # audit data survives a mistaken destroy
        key = rotating_key(
            f"{name}-flow-logs",
            alias=f"{args.cluster_name}-flow-logs",
            description=f"{args.cluster_name} VPC flow logs",
            policy=iam.to_json(
                iam.kms_key_policy(args.account_id, iam.logs_kms_statement(args.account_id, args.region))
            ),
            tags=tags,
            parent=self,
            protect=args.protect,
        )
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/aws/vpc/{args.cluster_name}/flow-logs",
            retention_in_days=cfg.retention_days,
            kms_key_id=key.arn,
            tags=tags,
            opts=stateful,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            # Confused-deputy guard (AWS's recommendation): only this account's flow logs may assume it.
            assume_role_policy=iam.to_json(
                iam.service_trust(
                    "vpc-flow-logs.amazonaws.com",
                    conditions={
                        "StringEquals": {"aws:SourceAccount": args.account_id},
                        "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:{args.region}:{args.account_id}:vpc-flow-log/*"},
                    },
                )
            ),
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            # The group exists (no CreateLogGroup); the service also lists groups before delivering, and
            # DescribeLogGroups authorises on the region's log-group namespace, not on one group.
            policy=group.arn.apply(
                lambda arn: iam.to_json(
                    iam.document(
                        iam.statement(
                            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"], [arn, f"{arn}:*"]
                        ),
                        iam.statement(
                            "logs:DescribeLogGroups", f"arn:aws:logs:{args.region}:{args.account_id}:log-group:*"
                        ),
                    )
                )
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type=cfg.traffic_type,
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=tags,
            opts=child,
        )
