"""The whole stack config: `StackConfig`, its cross-field rules, and `parse_stack_config`."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from components.config.addons import AddonsConfig, kubernetes_minor
from components.config.base import (
    NAMESPACE,
    ConfigError,
    Model,
    _KeyedError,
    short_dns_label,
)
from components.config.eks import EksConfig
from components.config.environments import Safeguards, SafeguardsConfig, effective_safeguards, safeguard_problems
from components.config.identity import IdentityConfig, WorkloadConfig
from components.config.k3s import K3S_INTERNAL_RANGES, K3sConfig
from components.config.karpenter import KarpenterConfig
from components.config.network import NetworkConfig
from components.config.identity_rules import identity_problems
from components.config.karpenter_rules import karpenter_problems
from components.core.chart_versions import CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS


class ClusterConfig(Model):
    kind: Literal["eks", "k3s"] = Field(description="Control plane: Amazon EKS, or K3s on EC2.")
    name: str = Field(description=(
        "Cluster name, a DNS label of at most 32 characters (it prefixes IAM role names)."))
    eks: EksConfig = Field(EksConfig(), description="EKS control-plane settings (`kind: eks`).")
    k3s: K3sConfig = Field(K3sConfig(), description="K3s-on-EC2 settings (`kind: k3s`).")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # EKS cluster names allow 100 characters, but names are embedded in IAM role names (64).
        return short_dns_label(v, 32, "it prefixes IAM role names")



class StackConfig(Model):
    environment: Literal["dev", "staging", "prod"] = Field(description=(
        "The stack's environment: `dev`, `staging` or `prod`, each with documented safeguards "
        "(`components/config/environments.py`: protection, AMI pinning, zones, replicas, NAT layout)."))
    region: str = Field(description=(
        "Region of every resource, like `us-east-1`; commercial partition only (not `cn-*`, `us-gov-*`: ARNs "
        "are built for `arn:aws`)."))
    account_id: str = Field(description=(
        "The only AWS account the stack may touch (the provider's `allowedAccountIds`), 12 digits, quoted in YAML."))
    tags: dict[str, str] = Field(default_factory=dict, description=(
        "Tags on every taggable resource: must include `owner` and `cost-center`; no `aws:` keys; keys 1-128 "
        "and values up to 256 characters; at most 40."))
    network: NetworkConfig = Field(description="The VPC, its pod CIDR, NAT layout, endpoints and flow logs.")
    cluster: ClusterConfig = Field(description="The Kubernetes control plane and its nodes.")
    addons: AddonsConfig = Field(AddonsConfig(), description=(
        "Cluster add-ons; each can be switched off (its IAM goes with it)."))
    identity: IdentityConfig = Field(IdentityConfig(), description="The K3s service-account issuers used by IRSA.")
    workloads: list[WorkloadConfig] = Field(default_factory=list, description=(
        "AWS identities for workloads: one IAM role per workload, bound to its ServiceAccount."))
    karpenter: KarpenterConfig = Field(KarpenterConfig(), description=(
        "Karpenter node autoscaling: node classes and pools."))
    safeguards: SafeguardsConfig = Field(SafeguardsConfig(), description=(
        "Tighten the environment's safeguards (protection, AMI pinning, zones, controller replicas, NAT per "
        "zone); a looser value than the environment's is refused."))

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", v):
            raise ValueError(f"'{v}' is not an AWS region like us-east-1")
        if v.startswith(("cn-", "us-gov-", "us-iso", "eu-isoe-")):
            # ARNs, service principals and endpoint names are built for the commercial partition.
            raise ValueError(f"'{v}' is outside the commercial 'aws' partition; only its regions are supported")
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
        # AWS refuses these at create time, half-way through an update; say so before anything runs.
        reserved = sorted(k for k in v if k.lower().startswith("aws:"))
        if reserved:
            raise ValueError(f"{', '.join(reserved)}: the aws: prefix is reserved for AWS")
        too_long = sorted(k for k, val in v.items() if not 1 <= len(k) <= 128 or len(val) > 256)
        if too_long:
            raise ValueError(f"{', '.join(too_long)}: tag keys are 1-128 characters, values at most 256")
        if len(v) > 40:
            raise ValueError(f"{len(v)} tags; at most 40 (AWS allows 50 per resource, the platform adds up to 10)")
        return v

    @model_validator(mode="after")
    def _cross_field(self) -> "StackConfig":
        azs = self.network.availability_zones
        wrong = [az for az in azs if not az.startswith(self.region)]
        if wrong:
            raise _KeyedError("network.availabilityZones", f"{', '.join(wrong)} not in region {self.region}")
        if self.cluster.kind == "k3s":
            vpc = ipaddress.ip_network(self.network.vpc_cidr)
            for k3s_range in K3S_INTERNAL_RANGES:
                if vpc.overlaps(ipaddress.ip_network(k3s_range)):
                    raise _KeyedError("network.vpcCidr", f"{vpc} overlaps K3s's pod/service range {k3s_range}; "
                                      "pick a VPC block outside 10.42.0.0/16 and 10.43.0.0/16")
        eks = self.cluster.eks
        if self.cluster.kind == "eks":
            if self.environment == "prod" and any(
                ipaddress.ip_network(c).prefixlen == 0 for c in eks.endpoint.public_access_cidrs
            ):
                raise _KeyedError("cluster.eks.endpoint.publicAccessCidrs",
                                  "0.0.0.0/0 opens the prod API server to the internet; list specific CIDRs "
                                  "or keep publicAccess: false (private endpoint only)")
            if not eks.access.admin_role_arns:
                raise _KeyedError("cluster.eks.access.adminRoleArns",
                                  "at least one admin role is required: the cluster creator gets no implicit access, "
                                  "and the deployment itself (ENIConfigs) runs as one of these roles")
        return self

    @model_validator(mode="after")
    def _access_instance_fits_cluster(self) -> "StackConfig":
        if self.cluster.kind == "k3s" and self.cluster.eks.access_instance.enabled:
            raise _KeyedError("cluster.eks.accessInstance.enabled",
                              "only EKS creates an access instance; on k3s `platformctl connect` forwards "
                              "through a K3s server (set false or remove the key)")
        return self

    @model_validator(mode="after")
    def _safeguards_fit_environment(self) -> "StackConfig":
        for key, message in safeguard_problems(self):
            raise _KeyedError(key, message)
        return self

    @model_validator(mode="after")
    def _addons_fit_cluster(self) -> "StackConfig":
        if self.cluster.kind == "eks" and self.addons.cloud_controller_manager.enabled:
            raise _KeyedError("addons.cloudControllerManager.enabled",
                              "only k3s runs the AWS cloud controller as an add-on; EKS runs it inside its "
                              "managed control plane (set false or remove the key)")
        if self.cluster.kind == "k3s" and self.addons.aws_load_balancer_controller.target_type == "ip":
            raise _KeyedError("addons.awsLoadBalancerController.targetType",
                              "'ip' needs pods on VPC addresses; K3s pods live on flannel's overlay, which a load "
                              "balancer cannot reach: use 'instance' (or remove the key)")
        if self.addons.cloud_controller_manager_enabled(self.cluster.kind):
            minor = kubernetes_minor(self.cluster.k3s.version)
            if minor not in CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS:
                raise _KeyedError("cluster.k3s.version",
                                  f"no AWS cloud controller image pinned for Kubernetes {minor}; pinned: "
                                  f"{', '.join(sorted(CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS))} (components/core/chart_versions.py)")
        return self

    @model_validator(mode="after")
    def _karpenter_fits_cluster(self) -> "StackConfig":
        for key, message in karpenter_problems(self):
            raise _KeyedError(key, message)
        return self

    @model_validator(mode="after")
    def _identity_fits_cluster(self) -> "StackConfig":
        for key, message in identity_problems(self):
            raise _KeyedError(key, message)
        return self

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def safeguards_in_force(self) -> Safeguards:
        """The environment's defaults tightened by `k8s-platform:safeguards` (components/config/environments.py)."""
        return effective_safeguards(self.environment, self.safeguards)

    @property
    def cluster_name(self) -> str:
        return self.cluster.name

    def resource_tags(self, **extra: str) -> dict[str, str]:
        """The tags every taggable resource carries: config tags plus provenance."""
        return {**self.tags, "environment": self.environment, "managed-by": "pulumi", "k8s-platform/cluster": self.cluster.name, **extra}


REQUIRED_TAGS = ("owner", "cost-center")


# Top-level keys read from the stack file: `k8s-platform:<key>` unless namespaced explicitly.
TOP_LEVEL_KEYS = {"environment", "accountId", "tags", "network", "cluster", "addons", "identity", "workloads",
                  "karpenter", "safeguards"}
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
