"""Typed stack configuration: the one place raw `k8s-platform:*` config becomes models.

Every key lives under the `k8s-platform:` namespace of a Pulumi stack file (plus `aws:region`).
Keys are camelCase in YAML, snake_case in Python. `parse_stack_config` returns a `StackConfig`
or raises `ConfigError` listing every problem, each naming its key path
(`k8s-platform:network.podCidr`) and what is allowed. Components receive these models, never
`pulumi.Config`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

NAMESPACE = "k8s-platform"

# RFC 1123 label: what Kubernetes, AWS names and DNS all accept.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

# Pod CIDRs must come from ranges VPCs accept as secondary blocks and that do not collide with
# corporate RFC 1918 space: the carrier-grade NAT range is what AWS documents for custom networking.
ALLOWED_POD_RANGES = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("198.19.0.0/16"))


class ConfigError(Exception):
    """All problems of one stack config, each `key: what is wrong and what is allowed`."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class Model(BaseModel):
    """Base: camelCase keys, unknown keys refused (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


def dns_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError(
            f"'{value}' is not DNS-safe: use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def ipv4_network(value: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a valid IPv4 CIDR ({exc}); e.g. 10.0.0.0/16") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise ValueError(f"'{value}' is not an IPv4 CIDR")
    return net


# --------------------------------------------------------------------------------------- network
InterfaceEndpoint = Literal[
    "sts", "ec2", "ecr.api", "ecr.dkr", "ssm", "ssmmessages", "ec2messages", "sqs", "logs",
    "kms", "elasticloadbalancing", "autoscaling", "eks", "eks-auth", "secretsmanager",
]


class FlowLogsConfig(Model):
    enabled: bool = True
    retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653] = 90
    traffic_type: Literal["ALL", "ACCEPT", "REJECT"] = "ALL"


class NetworkConfig(Model):
    vpc_cidr: str = "10.0.0.0/16"
    pod_cidr: str = "100.64.0.0/16"
    availability_zones: list[str]
    nat_gateways: Literal["one-per-az", "single"] = "one-per-az"
    interface_endpoints: list[InterfaceEndpoint] = Field(
        default_factory=lambda: ["sts", "ec2", "ecr.api", "ecr.dkr", "ssm", "ssmmessages", "ec2messages", "sqs"]
    )
    flow_logs: FlowLogsConfig = FlowLogsConfig()

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, v: str) -> str:
        net = ipv4_network(v)
        if not 16 <= net.prefixlen <= 20:
            raise ValueError(f"'{v}' must be a /16 to /20 (AWS allows /16-/28; smaller leaves no room for node subnets)")
        if not net.is_private:
            raise ValueError(f"'{v}' must be a private (RFC 1918) range")
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

    @field_validator("availability_zones")
    @classmethod
    def _azs(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("availability zones must be distinct")
        for az in v:
            if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$", az):
                raise ValueError(f"'{az}' is not an availability zone name like us-east-1a")
        if not 2 <= len(v) <= 6:
            raise ValueError(f"{len(v)} zones given; 2 to 6 are allowed")
        return v

    @model_validator(mode="after")
    def _no_overlap(self) -> "NetworkConfig":
        if ipaddress.ip_network(self.vpc_cidr).overlaps(ipaddress.ip_network(self.pod_cidr)):
            raise _KeyedError("network.podCidr", f"{self.pod_cidr} overlaps vpcCidr {self.vpc_cidr}; they must be disjoint")
        return self


# --------------------------------------------------------------------------------------- cluster
class EksConfig(Model):
    """EKS control-plane settings (extended by the EKS component's issue)."""

    version: str = "1.35"


class K3sConfig(Model):
    """K3s-on-EC2 settings (extended by the K3s component's issue)."""

    version: str = "v1.35.0+k3s1"


class ClusterConfig(Model):
    kind: Literal["eks", "k3s"]
    name: str
    eks: EksConfig = EksConfig()
    k3s: K3sConfig = K3sConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        dns_label(v)
        # EKS cluster names allow 100 characters, but names are embedded in IAM role names (64).
        if len(v) > 32:
            raise ValueError(f"'{v}' is {len(v)} characters; at most 32 (it prefixes IAM role names)")
        return v


# ----------------------------------------------------------------------------------------- stack
class StackConfig(Model):
    environment: Literal["dev", "staging", "prod"]
    region: str
    account_id: str
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkConfig
    cluster: ClusterConfig

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", v):
            raise ValueError(f"'{v}' is not an AWS region like us-east-1")
        return v

    @field_validator("account_id")
    @classmethod
    def _account(cls, v: str) -> str:
        if not re.match(r"^\d{12}$", v):
            raise ValueError(f"'{v}' must be a 12-digit AWS account id")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        missing = [k for k in REQUIRED_TAGS if not v.get(k)]
        if missing:
            raise ValueError(f"required tags missing: {', '.join(missing)} (ownership and cost attribution)")
        return v

    @model_validator(mode="after")
    def _cross_field(self) -> "StackConfig":
        azs = self.network.availability_zones
        if self.environment == "prod" and len(azs) < 3:
            raise _KeyedError("network.availabilityZones", f"prod needs at least 3 zones, {len(azs)} given")
        wrong = [az for az in azs if not az.startswith(self.region)]
        if wrong:
            raise _KeyedError("network.availabilityZones", f"{', '.join(wrong)} not in region {self.region}")
        if self.environment == "prod" and self.network.nat_gateways == "single":
            raise _KeyedError("network.natGateways", "prod needs 'one-per-az' (a single NAT is a zonal SPOF)")
        return self

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def cluster_name(self) -> str:
        return self.cluster.name

    def resource_tags(self, **extra: str) -> dict[str, str]:
        """The tags every taggable resource carries: config tags plus provenance."""
        return {**self.tags, "environment": self.environment, "managed-by": "pulumi", "k8s-platform/cluster": self.cluster.name, **extra}


REQUIRED_TAGS = ("owner", "cost-center")


class _KeyedError(ValueError):
    """A cross-field error that knows which key it belongs to."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)


# Top-level keys read from the stack file: `k8s-platform:<key>` unless namespaced explicitly.
TOP_LEVEL_KEYS = {"environment", "accountId", "tags", "network", "cluster"}
EXTERNAL_KEYS = {"aws:region": "region"}


def _key_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    if not parts:
        return f"{NAMESPACE}:(root)"
    head, rest = parts[0], parts[1:]
    if head == "region":
        head_key = "aws:region"
    else:
        head_key = f"{NAMESPACE}:{head}"
    path = head_key
    for p in rest:
        path += f"[{p}]" if p.isdigit() else f".{p}"
    return path


def _message(err: dict[str, Any]) -> str:
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err["type"] == "literal_error":
        msg = f"got {err.get('input')!r}; {msg[0].lower()}{msg[1:]}"
    elif err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "extra_forbidden":
        msg = "is not a known key (check the spelling; keys are camelCase)"
    return msg


def parse_stack_config(raw: dict[str, Any]) -> StackConfig:
    """Validate fully-qualified config (`{"k8s-platform:network": {...}, "aws:region": ...}`).

    Raises ConfigError with one line per problem, each `key.path: message`.
    """
    data: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        if key in EXTERNAL_KEYS:
            data[EXTERNAL_KEYS[key]] = value
        elif key.startswith(f"{NAMESPACE}:"):
            short = key.split(":", 1)[1]
            if short not in TOP_LEVEL_KEYS:
                allowed = ", ".join(f"{NAMESPACE}:{k}" for k in sorted(TOP_LEVEL_KEYS))
                problems.append(f"{key}: is not a known key; allowed: {allowed}")
                continue
            data[short] = value
    try:
        cfg = StackConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = err["loc"]
            ctx_err = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_err, _KeyedError):
                loc = tuple(ctx_err.key.split("."))
                problems.append(f"{_key_path(loc)}: {ctx_err}")
                continue
            problems.append(f"{_key_path(loc)}: {_message(err)}")
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return cfg


def decode_config_values(values: dict[str, Any]) -> dict[str, Any]:
    """Pulumi hands structured config values to programs as JSON text; decode them."""
    import json

    decoded: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        decoded[key] = value
    return decoded


def read_pulumi_config() -> dict[str, Any]:
    """The raw, fully-qualified config of the running Pulumi program (real engine or mocks)."""
    from pulumi.runtime import config as runtime_config

    values = {**runtime_config.get_config_env(), **(runtime_config.CONFIG.get() or {})}
    return decode_config_values(values)
