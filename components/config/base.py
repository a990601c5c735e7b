"""Shared pieces of the typed config: the model base, the error types and value checks every section uses."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from components.config.checks import IAM_ROLE_ARN as IAM_ROLE_ARN  # re-exported: defined once, with the IAM limits
from components.config.checks import role_arn_problem, shown
from components.core.instance_types import EC2_ARCHITECTURE, architecture

NAMESPACE = "k8s-platform"

# RFC 1123 label: what Kubernetes, AWS names and DNS all accept.
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", re.ASCII)  # used with fullmatch


class ConfigError(Exception):
    """All problems of one stack config, each `key: what is wrong and what is allowed`."""

    def __init__(self, problems: list[str], source: object = None):
        self.problems = problems
        self.source = source  # the stack file, when the problems were found reading one
        super().__init__("\n".join(problems))


class Model(BaseModel):
    """Base: camelCase keys, unknown keys refused (a typo must not silently fall back to a default), strict
    types (`true` is not the number 1, `"5"` is not 5: a YAML slip must not become a 1-day retention)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, strict=True)


def raise_problems(title: str, problems: list[tuple[str, str]]) -> None:
    """Raise every cross-field problem at once (a validator can raise one exception: one ValidationError
    carrying all of them). Each is `(absolute key path, message)`; parse_stack_config reports them by key."""
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(
                    type=PydanticCustomError("cross_field", "{message}", {"key": key, "message": message}),
                    loc=(),
                    input=None,
                )
                for key, message in problems
            ],
        )


def dns_label(value: str) -> str:
    if not DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"'{shown(value)}' is not DNS-safe: use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def short_dns_label(value: str, max_length: int, embedded_in: str) -> str:
    """A DNS label short enough to be embedded in a longer AWS name (`embedded_in` says which)."""
    dns_label(value)
    if len(value) > max_length:
        raise ValueError(f"'{shown(value)}' is {len(value)} characters; at most {max_length} ({embedded_in})")
    return value


def ipv4_network(value: str) -> ipaddress.IPv4Network:
    # ipaddress accepts what AWS does not (leading/trailing space is refused by it, but not a missing prefix);
    # require the a.b.c.d/n shape in ASCII digits first.
    if not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}", value, re.ASCII):
        raise ValueError(f"'{shown(value)}' is not a valid IPv4 CIDR (a.b.c.d/n); e.g. 10.0.0.0/16")
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"'{shown(value)}' is not a valid IPv4 CIDR ({shown(str(exc))}); e.g. 10.0.0.0/16") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise ValueError(f"'{shown(value)}' is not an IPv4 CIDR")
    return net


def not_bool(value: object) -> object:
    # A Literal of numbers compares by equality, and True == 1: `retentionDays: true` would be a 1-day retention.
    if isinstance(value, bool):
        raise ValueError(f"got {str(value).lower()}; a number is required")
    return value


LogRetentionDays = Annotated[
    Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653], BeforeValidator(not_bool)
]


def iam_role_arn(value: str) -> str:
    problem = role_arn_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# family.size; sizes are nano..metal, `<n>xlarge` with n >= 2 (no 0xlarge, no 1xlarge), metal-<n>xl.
INSTANCE_TYPE = re.compile(
    r"[a-z][a-z0-9-]*\.(nano|micro|small|medium|large|xlarge|([2-9]|[1-9][0-9]+)xlarge|"
    r"metal(-[0-9]+xl)?)",
    re.ASCII,
)


def instance_architecture(instance_type: str) -> Literal["arm64", "x86_64"]:
    """EC2's name of the instance type's architecture (the rule: `components.core.instance_types`)."""
    return EC2_ARCHITECTURE[architecture(instance_type)]  # type: ignore[return-value]


def check_instance_type(v: str) -> str:
    if not INSTANCE_TYPE.fullmatch(v):
        raise ValueError(f"'{shown(v)}' is not an EC2 instance type like m7i.large")
    return v


def is_graviton(instance_type: str) -> bool:
    return architecture(instance_type) == "arm64"


class _KeyedError(ValueError):
    """A cross-field error that knows which key it belongs to."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)
