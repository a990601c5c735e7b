"""Shared pieces of the typed config: the model base, the error types and value checks every section uses."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from components.core.instance_types import EC2_ARCHITECTURE, architecture

NAMESPACE = "k8s-platform"

# RFC 1123 label: what Kubernetes, AWS names and DNS all accept.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


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


def short_dns_label(value: str, max_length: int, embedded_in: str) -> str:
    """A DNS label short enough to be embedded in a longer AWS name (`embedded_in` says which)."""
    dns_label(value)
    if len(value) > max_length:
        raise ValueError(f"'{value}' is {len(value)} characters; at most {max_length} ({embedded_in})")
    return value


def ipv4_network(value: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a valid IPv4 CIDR ({exc}); e.g. 10.0.0.0/16") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise ValueError(f"'{value}' is not an IPv4 CIDR")
    return net



LogRetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653]
IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


def iam_role_arn(value: str) -> str:
    if not IAM_ROLE_ARN.match(value):
        raise ValueError(f"'{value}' is not an IAM role ARN like arn:aws:iam::123456789012:role/name")
    return value



INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")


def instance_architecture(instance_type: str) -> Literal["arm64", "x86_64"]:
    """EC2's name of the instance type's architecture (the rule: `components.core.instance_types`)."""
    return EC2_ARCHITECTURE[architecture(instance_type)]  # type: ignore[return-value]


def check_instance_type(v: str) -> str:
    if not INSTANCE_TYPE.match(v):
        raise ValueError(f"'{v}' is not an EC2 instance type like m7i.large")
    return v




def is_graviton(instance_type: str) -> bool:
    return architecture(instance_type) == "arm64"


class _KeyedError(ValueError):
    """A cross-field error that knows which key it belongs to."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)
