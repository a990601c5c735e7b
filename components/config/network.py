"""`k8s-platform:network`: the VPC, its secondary pod CIDR, NAT layout, endpoints and flow logs."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import LogRetentionDays, Model, _KeyedError, ipv4_network
from components.config.checks import RFC1918, ZONE, in_ranges, shown

# Pod CIDRs must come from ranges VPCs accept as secondary blocks and that do not collide with
# corporate RFC 1918 space: the carrier-grade NAT range is what AWS documents for custom networking.
ALLOWED_POD_RANGES = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("198.19.0.0/16"))

InterfaceEndpoint = Literal[
    "sts",
    "ec2",
    "ecr.api",
    "ecr.dkr",
    "ssm",
    "ssmmessages",
    "ec2messages",
    "sqs",
    "logs",
    "kms",
    "elasticloadbalancing",
    "autoscaling",
    "eks",
    "eks-auth",
    "secretsmanager",
]


class FlowLogsConfig(Model):
    enabled: bool = Field(True, description="Publish VPC flow logs to a KMS-encrypted CloudWatch log group.")
    retention_days: LogRetentionDays = Field(
        90,
        description=(
            "Days the flow-log group keeps records (a CloudWatch Logs retention value); in `ci` at most 7, "
            "1 when unset."
        ),
    )
    traffic_type: Literal["ALL", "ACCEPT", "REJECT"] = Field(
        "ALL", description="Which traffic is logged: accepted, rejected or both."
    )


class NetworkConfig(Model):
    vpc_cidr: str = Field(
        "10.0.0.0/16",
        description=(
            "Primary VPC block, cut into node and public subnets: a private (RFC 1918) /16 to /20; on K3s outside "
            "`10.42.0.0/16` and `10.43.0.0/16` (K3s's own pod and service ranges)."
        ),
    )
    pod_cidr: str = Field(
        "100.64.0.0/16",
        description=(
            "Secondary VPC block for pod addresses (custom networking), split evenly across the zones: a /16 to /20 "
            "inside `100.64.0.0/10` or `198.19.0.0/16`, disjoint from `vpcCidr`."
        ),
    )
    availability_zones: list[str] = Field(
        description=(
            "Zones the subnets, NAT gateways and nodes use: 2 to 6 distinct zones of `aws:region` "
            "(e.g. `us-east-1a`); prod needs at least 3."
        )
    )
    nat_gateways: Literal["one-per-az", "single"] = Field(
        "one-per-az",
        description=(
            "NAT layout: one gateway per zone (a zone keeps egress when another fails) or a single shared one "
            "(cheaper, a zonal single point of failure); prod must keep `one-per-az`; unset in `ci`: `single`."
        ),
    )
    interface_endpoints: list[InterfaceEndpoint] = Field(
        default_factory=lambda: ["sts", "ec2", "ecr.api", "ecr.dkr", "ssm", "ssmmessages", "ec2messages", "sqs"],
        description=(
            "Interface VPC endpoints that keep node traffic to AWS APIs inside the VPC (an S3 gateway "
            "endpoint is always added); each service listed once."
        ),
    )
    flow_logs: FlowLogsConfig = Field(FlowLogsConfig(), description="VPC flow logs.")

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, v: str) -> str:
        net = ipv4_network(v)
        if not 16 <= net.prefixlen <= 20:
            raise ValueError(
                f"'{v}' must be a /16 to /20 (AWS allows /16-/28; smaller leaves no room for node subnets)"
            )
        # An explicit table: Python's is_private also admits loopback, link-local, 0/8, 198.18/15, 240/4.
        if not in_ranges(net, RFC1918):
            raise ValueError(
                f"'{v}' must be a private (RFC 1918) range: within 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
            )
        return v

    @field_validator("pod_cidr")
    @classmethod
    def _pod_cidr(cls, v: str) -> str:
        net = ipv4_network(v)
        if not any(net.subnet_of(r) for r in ALLOWED_POD_RANGES):
            allowed = ", ".join(str(r) for r in ALLOWED_POD_RANGES)
            raise ValueError(f"'{v}' must lie within {allowed} (secondary pod ranges for custom networking)")
        if not 16 <= net.prefixlen <= 20:
            raise ValueError(f"'{v}' must be a /16 to /20 (a VPC secondary block; pods need the room)")
        return v

    @field_validator("interface_endpoints")
    @classmethod
    def _endpoints(cls, v: list[str]) -> list[str]:
        dupes = sorted({e for e in v if v.count(e) > 1})
        if dupes:
            raise ValueError(f"listed twice: {', '.join(dupes)}; each service gets one endpoint")
        return v

    @field_validator("availability_zones")
    @classmethod
    def _azs(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("availability zones must be distinct")
        for az in v:
            m = ZONE.fullmatch(az)
            if not m or m.group("letter") not in "abcdef":
                raise ValueError(
                    f"'{shown(az)}' is not an availability zone name like us-east-1a (<region><letter a-f>)"
                )
        if not 2 <= len(v) <= 6:
            raise ValueError(f"{len(v)} zones given; 2 to 6 are allowed")
        return v

    @model_validator(mode="after")
    def _no_overlap(self) -> "NetworkConfig":
        if ipaddress.ip_network(self.vpc_cidr).overlaps(ipaddress.ip_network(self.pod_cidr)):
            raise _KeyedError(
                "network.podCidr", f"{self.pod_cidr} overlaps vpcCidr {self.vpc_cidr}; they must be disjoint"
            )
        return self
