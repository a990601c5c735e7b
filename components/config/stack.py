"""The whole stack config: `StackConfig`, its cross-field rules, and `parse_stack_config`."""

from __future__ import annotations

import ipaddress
import re
import typing
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from components.config.addons import AddonsConfig, kubernetes_minor
from components.config.auto_mode import auto_mode_problems
from components.config.base import (
    NAMESPACE,
    ConfigError,
    Model,
    _KeyedError,
    raise_problems,
    short_dns_label,
)
from components.config.checks import (
    ACCOUNT_ID,
    AWS_TAGS_PER_RESOURCE,
    REGION,
    did_you_mean,
    shown,
    tag_text_ok,
)
from components.config.ci import EXPIRY_TAG, CiConfig, apply_ci_defaults, ci_problems
from components.config.data_plane_rules import data_plane_problems
from components.config.eks import EksConfig
from components.config.eks_resilience import eks_resilience_problems
from components.config.environments import SAFEGUARD_RULES, Safeguards, SafeguardsConfig, effective_safeguards
from components.config.identity import IdentityConfig, WorkloadConfig
from components.config.identity_rules import identity_problems
from components.config.k3s import K3S_INTERNAL_RANGES, K3sConfig
from components.config.k3s_datastore import datastore_problems
from components.config.k3s_rules import k3s_problems
from components.config.karpenter import KarpenterConfig
from components.config.karpenter_rules import karpenter_problems
from components.config.network import NetworkConfig
from components.config.version_rules import version_problems
from components.core.pins import CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS

Problem = tuple[str, str]


class ClusterConfig(Model):
    kind: Literal["eks", "k3s"] = Field(description="Control plane: Amazon EKS, or K3s on EC2.")
    name: str = Field(description=("Cluster name, a DNS label of at most 32 characters (it prefixes IAM role names)."))
    eks: EksConfig = Field(EksConfig(), description="EKS control-plane settings (`kind: eks`).")
    k3s: K3sConfig = Field(K3sConfig(), description="K3s-on-EC2 settings (`kind: k3s`).")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # EKS cluster names allow 100 characters, but names are embedded in IAM role names (64).
        return short_dns_label(v, 32, "it prefixes IAM role names")

    @model_validator(mode="after")
    def _one_kind(self) -> "ClusterConfig":
        # A block for the other kind would be silently ignored: the user believes it configures something.
        other = "k3s" if self.kind == "eks" else "eks"
        if other in self.model_fields_set:
            raise _KeyedError(
                f"cluster.{other}",
                f"applies to kind {other}; this cluster is kind {self.kind} (remove the block, or set kind: {other})",
            )
        return self


class StackConfig(Model):
    environment: Literal["dev", "staging", "prod", "ci"] = Field(
        description=(
            "The stack's environment: `dev`, `staging` or `prod`, each with documented safeguards "
            "(`components/config/environments.py`: protection, AMI pinning, zones, replicas, NAT layout), or `ci`: "
            "an ephemeral K3s cluster of a pipeline run (one untainted server, no agents, nothing protected, short "
            "retentions, `ci.expiresAt` tagged on every resource; `platformctl ci`)."
        )
    )
    region: str = Field(
        description=(
            "Region of every resource, like `us-east-1`; commercial partition only (not `cn-*`, `us-gov-*`: ARNs "
            "are built for `arn:aws`)."
        )
    )
    account_id: str = Field(
        description=(
            "The only AWS account the stack may touch (the provider's `allowedAccountIds`), 12 digits, quoted in YAML."
        )
    )
    tags: dict[str, str] = Field(
        description=(
            "Tags on every taggable resource, required: must include `owner` and `cost-center`; no `aws:` keys and "
            "none of the keys the platform sets itself (`environment`, `managed-by`, `Name`, `k8s-platform/*`, "
            "`kubernetes.io/*`, `karpenter.sh/*`); AWS's tag character set; keys 1-128 and values up to 256 "
            "characters; at most 40."
        )
    )
    network: NetworkConfig = Field(description="The VPC, its pod CIDR, NAT layout, endpoints and flow logs.")
    cluster: ClusterConfig = Field(description="The Kubernetes control plane and its nodes.")
    addons: AddonsConfig = Field(
        AddonsConfig(), description=("Cluster add-ons; each can be switched off (its IAM goes with it).")
    )
    identity: IdentityConfig = Field(IdentityConfig(), description="The K3s service-account issuers used by IRSA.")
    workloads: list[WorkloadConfig] = Field(
        default_factory=list,
        description=("AWS identities for workloads: one IAM role per workload, bound to its ServiceAccount."),
    )
    karpenter: KarpenterConfig = Field(
        KarpenterConfig(), description=("Karpenter node autoscaling: node classes and pools.")
    )
    ci: CiConfig | None = Field(
        None, description="The expiry of an ephemeral stack; required with `environment: ci`, refused otherwise."
    )
    safeguards: SafeguardsConfig = Field(
        SafeguardsConfig(),
        description=(
            "Tighten the environment's safeguards (protection, AMI pinning, zones, controller replicas, NAT per "
            "zone); a looser value than the environment's is refused."
        ),
    )

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", v, re.ASCII):
            raise ValueError(f"'{shown(v)}' is not an AWS region like us-east-1")
        if v.startswith(("cn-", "us-gov-", "us-iso", "eu-isoe-")):
            # ARNs, service principals and endpoint names are built for the commercial partition.
            raise ValueError(f"'{v}' is outside the commercial 'aws' partition; only its regions are supported")
        if not REGION.fullmatch(v):
            raise ValueError(f"'{v}' is not an AWS region like us-east-1 (no commercial region has this shape)")
        return v

    @field_validator("account_id", mode="before")
    @classmethod
    def _account(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool) or isinstance(v, str) and v.isascii() and v.isdigit():
            if isinstance(v, int) or not ACCOUNT_ID.fullmatch(v):
                # An unquoted id is a YAML number: leading zeros vanish, and 0-prefixed ones are read as octal.
                raise ValueError(
                    f"'{v}' must be a 12-digit AWS account id; if you wrote it unquoted, YAML read it "
                    'as a number (a leading 0 even as octal): quote it, e.g. accountId: "011111111111"'
                )
        elif not isinstance(v, str) or not ACCOUNT_ID.fullmatch(v):
            raise ValueError(f"'{shown(v)}' must be a 12-digit AWS account id (ASCII digits)")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        problems: list[tuple[str, str]] = []
        missing = [k for k in REQUIRED_TAGS if not v.get(k)]
        if missing:
            problems.append(("tags", f"required tags missing: {', '.join(missing)} (ownership and cost attribution)"))
        for key, value in v.items():
            where = f"tags.{shown(key)}"
            # AWS refuses these at create time, half-way through an update; say so before anything runs.
            if key.lower().startswith("aws:"):
                problems.append((where, "the aws: prefix is reserved for AWS"))
            elif key in RESERVED_TAG_KEYS or key.startswith(RESERVED_TAG_PREFIXES):
                problems.append(
                    (
                        where,
                        f"set by the platform on every resource ({RESERVED_TAG_REASON}); "
                        "a value here would be silently overwritten: use another key",
                    )
                )
            elif not 1 <= len(key) <= 128 or len(value) > 256:
                problems.append((where, "tag keys are 1-128 characters, values at most 256"))
            elif not tag_text_ok(key) or not tag_text_ok(value):
                problems.append(
                    (
                        where,
                        f"'{shown(value)}': tag keys and values may hold letters, digits, spaces "
                        "and + - = . _ : / @ only (IAM, S3 and EKS refuse other characters)",
                    )
                )
        if len(v) > 40:
            problems.append(
                (
                    "tags",
                    f"{len(v)} tags; at most 40 (AWS allows {AWS_TAGS_PER_RESOURCE} per resource, "
                    "the platform adds up to 10)",
                )
            )
        raise_problems("tags", problems)
        return v

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        # The ci profile's defaults for unset keys (parse_stack_config applies them too, for partial configs).
        return apply_ci_defaults(data)

    @model_validator(mode="after")
    def _rules(self) -> "StackConfig":
        raise_problems("StackConfig", stack_rule_problems(self))
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
        return {
            **self.tags,
            "environment": self.environment,
            "managed-by": "pulumi",
            "k8s-platform/cluster": self.cluster.name,
            # An ephemeral stack's expiry on everything it creates (`platformctl ci reap`, account sweepers).
            **({EXPIRY_TAG: self.ci.expires_at} if self.ci is not None else {}),
            **extra,
        }


def _zone_rules(cfg: "StackConfig") -> Iterator[Problem]:
    azs = cfg.network.availability_zones
    wrong = [az for az in azs if az[:-1] != cfg.region]
    if wrong:
        yield "network.availabilityZones", f"{', '.join(wrong)} not in region {cfg.region} (zones are <region><letter>)"


def _access_instance_rule(cfg: "StackConfig") -> Iterator[Problem]:
    if cfg.cluster.kind == "k3s" and cfg.cluster.eks.access_instance.enabled:
        yield (
            "cluster.eks.accessInstance.enabled",
            "only EKS creates an access instance; on k3s `platformctl connect` forwards "
            "through a K3s server (set false or remove the key)",
        )


def _k3s_vpc_rule(cfg: "StackConfig") -> Iterator[Problem]:
    if cfg.cluster.kind == "k3s":
        vpc = ipaddress.ip_network(cfg.network.vpc_cidr)
        for k3s_range in K3S_INTERNAL_RANGES:
            if vpc.overlaps(ipaddress.ip_network(k3s_range)):
                yield (
                    "network.vpcCidr",
                    f"{vpc} overlaps K3s's pod/service range {k3s_range}; "
                    "pick a VPC block outside 10.42.0.0/16 and 10.43.0.0/16",
                )


def _eks_rules(cfg: "StackConfig") -> Iterator[Problem]:
    if cfg.cluster.kind != "eks":
        return
    eks = cfg.cluster.eks
    if cfg.environment == "prod" and any(
        ipaddress.ip_network(c).prefixlen == 0 for c in eks.endpoint.public_access_cidrs
    ):
        yield (
            "cluster.eks.endpoint.publicAccessCidrs",
            "0.0.0.0/0 opens the prod API server to the internet; list specific CIDRs "
            "or keep publicAccess: false (private endpoint only)",
        )
    if not eks.access.admin_role_arns:
        yield (
            "cluster.eks.access.adminRoleArns",
            "at least one admin role is required: the cluster creator gets no implicit access, "
            "and the deployment itself (ENIConfigs) runs as one of these roles",
        )


def _addons_rules(cfg: "StackConfig") -> Iterator[Problem]:
    if cfg.cluster.kind == "eks" and cfg.addons.cloud_controller_manager.enabled:
        yield (
            "addons.cloudControllerManager.enabled",
            "only k3s runs the AWS cloud controller as an add-on; EKS runs it inside its "
            "managed control plane (set false or remove the key)",
        )
    if cfg.cluster.kind == "k3s" and cfg.addons.aws_load_balancer_controller.target_type == "ip":
        yield (
            "addons.awsLoadBalancerController.targetType",
            "'ip' needs pods on VPC addresses; K3s pods live on flannel's overlay, which a load "
            "balancer cannot reach: use 'instance' (or remove the key)",
        )
    if cfg.addons.cloud_controller_manager_enabled(cfg.cluster.kind):
        minor = kubernetes_minor(cfg.cluster.k3s.version)
        if minor not in CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS:
            yield (
                "cluster.k3s.version",
                f"no AWS cloud controller image pinned for Kubernetes {minor}; pinned: "
                f"{', '.join(sorted(CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS))} (components/core/pins.py)",
            )


def _k3s_datastore_rules(cfg: "StackConfig") -> Iterator[Problem]:
    yield from datastore_problems(cfg)


def _karpenter_rules(cfg: "StackConfig") -> Iterator[Problem]:
    yield from karpenter_problems(cfg)


def _identity_rules(cfg: "StackConfig") -> Iterator[Problem]:
    yield from identity_problems(cfg)


def _ci_rules(cfg: "StackConfig") -> Iterator[Problem]:
    yield from ci_problems(cfg)


def _data_plane_rules(cfg: "StackConfig") -> Iterator[Problem]:
    yield from data_plane_problems(cfg)


def _k3s_rules(cfg: "StackConfig") -> Iterator[Problem]:
    yield from k3s_problems(cfg)


def _auto_mode_rules(cfg: "StackConfig") -> Iterator[Problem]:
    yield from auto_mode_problems(cfg)


# Every cross-field rule of the whole stack; each yields (key.path, message) and all of them run.
STACK_RULES: tuple[Callable[["StackConfig"], Iterator[Problem]], ...] = (
    # The environment's safeguards: none loosened, its zone count, its NAT layout.
    _zone_rules,
    *SAFEGUARD_RULES,
    _k3s_vpc_rule,
    _eks_rules,
    eks_resilience_problems,
    _access_instance_rule,
    _addons_rules,
    _k3s_datastore_rules,
    _karpenter_rules,
    _identity_rules,
    _ci_rules,
    _data_plane_rules,
    _k3s_rules,
    _auto_mode_rules,
    version_problems,  # one minor per control-plane update, node/control-plane skew
)


def stack_rule_problems(cfg: "StackConfig", partial: bool = False) -> list[Problem]:
    """Every cross-field problem. `partial`: `cfg` lacks the fields that failed validation; a rule that
    needs one of them is skipped (its field error is already reported)."""
    problems: list[Problem] = []
    for rule in STACK_RULES:
        found: list[Problem] = []
        try:
            for problem in rule(cfg):
                found.append(problem)
        except Exception:  # noqa: BLE001 - only on a partial config: the rule read a field that failed
            if not partial:
                raise
        problems += found
    return problems


REQUIRED_TAGS = ("owner", "cost-center")
# Tags the platform sets on every resource (resource_tags) or on its nodes: a user value would be overwritten.
RESERVED_TAG_KEYS = ("environment", "managed-by", "Name")
RESERVED_TAG_PREFIXES = ("k8s-platform/", "kubernetes.io/", "karpenter.sh/", "karpenter.k8s.aws/")
RESERVED_TAG_REASON = "environment, managed-by, Name, k8s-platform/*, kubernetes.io/*, karpenter.sh/*"


# Top-level keys read from the stack file: `k8s-platform:<key>` unless namespaced explicitly.
TOP_LEVEL_KEYS = {
    "environment",
    "accountId",
    "tags",
    "network",
    "cluster",
    "addons",
    "identity",
    "workloads",
    "karpenter",
    "safeguards",
    "ci",
}
EXTERNAL_KEYS = {"aws:region": "region"}
# Namespaces whose keys the platform does not read but the engine does (`pulumi:tags`,
# `pulumi:disable-default-providers`).
ENGINE_NAMESPACES = ("pulumi",)


_UNION_MEMBERS = {"str", "int", "bool", "float", "none", "list[str]", "dict[str,str]"}


def _key_path(loc: tuple[Any, ...]) -> str:
    # Union members add their type to the location (`limits.cpu.str`); the key is the field's.
    parts = [str(p) for p in loc if not str(p).startswith("function-") and str(p) not in _UNION_MEMBERS]
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


_PLAIN_LOC = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def _model_of(annotation: Any) -> Any:
    """The Model class an annotation holds (through list/dict/Optional), or None."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, Model):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at `loc` (a location inside StackConfig) allows."""
    model: Any = StackConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = next((f for n, f in model.model_fields.items() if part in (f.alias, n)), None)
        if field is None:
            return []
        model = _model_of(field.annotation)
    if model is None:
        return []
    return [_written(n, f.alias) for n, f in model.model_fields.items()]


def _written(name: str, alias: str | None) -> str:
    """The key as users write it: the camelCase alias, except where to_camel mangles (`k3s` -> `k3S`)."""
    if not alias or alias.lower() == name.lower():
        return name
    return alias


def _message(err: dict[str, Any]) -> str:
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    given = err.get("input")
    if err["type"] == "literal_error":
        hint = did_you_mean(given, re.findall(r"'([^']*)'", msg)) if isinstance(given, str) else ""
        msg = f"got {shown(given)!r}{hint}; {msg[0].lower()}{msg[1:]}"
    elif err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "extra_forbidden":
        key = str(err["loc"][-1])
        hint = did_you_mean(key, _fields_at(err["loc"][:-1]))
        msg = f"is not a known key{hint or ' (check the spelling; keys are camelCase)'}"
    elif err["type"] in (
        "int_type",
        "bool_type",
        "string_type",
        "list_type",
        "dict_type",
        "model_type",
        "float_type",
        "model_attributes_type",
        "dataclass_type",
    ):
        # pydantic names the model class ("a valid dictionary or instance of EksAutoModeConfig"): users
        # write mappings, not Python objects.
        msg = re.sub(r" or instance of \w+", "", msg).replace("a valid dictionary", "a mapping (key: value)")
        msg = f"{msg} (got {_type_name(given)} {shown(given, 40)})"
    else:
        # Values echoed by validators: escape control characters, shorten long ones.
        for value in given if isinstance(given, list) else [given]:
            if isinstance(value, str) and value and value != shown(value):
                msg = msg.replace(value, shown(value))
    return msg


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _line(problem: str) -> str:
    """A problem as exactly one printable line of bounded length."""
    return shown(problem, 600)


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    key = repr(annotation)
    if key not in _ADAPTERS:
        _ADAPTERS[key] = TypeAdapter(annotation)
    return _ADAPTERS[key]


def _partial(model: Any, data: Any, bad: list[tuple[Any, ...]], prefix: tuple[Any, ...]) -> Any:
    """`model` built from `data` with only the fields that validated (failed fields are absent), so the
    cross-field rules can still run on everything else."""
    if not isinstance(data, dict):
        return None
    values: dict[str, Any] = {}
    given: set[str] = set()  # fields the input sets (rules read `model_fields_set` to tell them from defaults)
    for name, field in model.model_fields.items():
        alias = field.alias or name
        key = alias if alias in data else name if name in data else None
        if key is not None:
            given.add(name)
        here = prefix + (key or alias,)  # error locations use the key the input used
        failed = [loc for loc in bad if loc[: len(here)] == here]
        if key is None:
            if not failed and not field.is_required():
                values[name] = field.get_default(call_default_factory=True)
            continue
        if not failed:
            try:
                values[name] = _adapter(field.annotation).validate_python(data[key], strict=True)
            except ValidationError:
                pass
            continue
        sub = _model_of(field.annotation)
        if sub is not None and field.annotation is sub:
            part = _partial(sub, data[key], bad, here)
            if part is not None:
                values[name] = part
        elif sub is not None and typing.get_origin(field.annotation) is list and isinstance(data[key], list):
            # A list of models keeps every item, at its index: the valid ones whole, the failed ones
            # partial, so that rules about the other items (references, duplicates) still run.
            items = _partial_items(sub, data[key], bad, here)
            if items is not None:
                values[name] = items
    built = model.model_construct(_fields_set=given & set(values), **values)
    for name in model.model_fields:
        if name not in values:
            built.__dict__.pop(name, None)
    return built


def _partial_items(
    item_model: Any, items: list[Any], bad: list[tuple[Any, ...]], here: tuple[Any, ...]
) -> list[Any] | None:
    out = []
    for i, item in enumerate(items):
        at = here + (i,)
        if any(loc[: len(at)] == at for loc in bad):
            part = _partial(item_model, item, bad, at)
        else:
            try:
                part = _adapter(item_model).validate_python(item, strict=True)
            except ValidationError:
                part = _partial(item_model, item, bad, at)
        if part is None:
            return None  # an item that is not even a mapping: the list's own rules cannot run
        out.append(part)
    return out


def config_key_problem(key: Any) -> str | None:
    """Why a fully-qualified config key is not one the platform reads (None if it is)."""
    if isinstance(key, str) and key.startswith(f"{NAMESPACE}:"):
        short = key.split(":", 1)[1]
        if short in TOP_LEVEL_KEYS:
            return None
        allowed = ", ".join(f"{NAMESPACE}:{k}" for k in sorted(TOP_LEVEL_KEYS))
        return f"{shown(key)}: is not a known key{did_you_mean(short, TOP_LEVEL_KEYS)}; allowed: {allowed}"
    if key in EXTERNAL_KEYS:
        return None
    return _namespace_problems(key)


def _namespace_problems(key: Any) -> str | None:
    if not isinstance(key, str):
        return f"{shown(key)}: config keys are strings like {NAMESPACE}:environment"
    if ":" not in key:
        return f"{shown(key)}: is not a config key: keys are <namespace>:<name>, e.g. {NAMESPACE}:{shown(key)}"
    namespace, short = key.split(":", 1)
    if namespace == "aws":
        return (
            f"{shown(key)}: is not an aws provider key the platform reads{did_you_mean(key, EXTERNAL_KEYS)}; "
            f"allowed: {', '.join(EXTERNAL_KEYS)} (the platform's AWS provider is explicit)"
        )
    if namespace in ENGINE_NAMESPACES:
        return None
    known = [f"{NAMESPACE}:{k}" for k in sorted(TOP_LEVEL_KEYS)] + list(EXTERNAL_KEYS)
    hint = did_you_mean(key, known) or did_you_mean(namespace, [NAMESPACE])
    return (
        f"{shown(key)}: unknown namespace '{shown(namespace)}'{hint}; keys are {NAMESPACE}:<key>, "
        f"{', '.join(EXTERNAL_KEYS)} or {', '.join(n + ':*' for n in ENGINE_NAMESPACES)}"
    )


def parse_stack_config(raw: dict[str, Any]) -> StackConfig:
    """Validate fully-qualified config (`{"k8s-platform:network": {...}, "aws:region": ...}`).

    Raises ConfigError with every problem at once, one line each, `key.path: message`: field errors and
    every cross-field rule (rules run on the fields that did validate when others failed).
    """
    data: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        if key in EXTERNAL_KEYS:
            data[EXTERNAL_KEYS[key]] = value
        elif isinstance(key, str) and key.startswith(f"{NAMESPACE}:"):
            short = key.split(":", 1)[1]
            problem = config_key_problem(key)
            if problem:
                problems.append(_line(problem))
                continue
            data[short] = value
        else:
            problem = _namespace_problems(key)
            if problem:
                problems.append(_line(problem))
    data = apply_ci_defaults(data)
    # A misspelt key leaves the key it meant missing: say so on the misspelling's line, not on a second one.
    meant = {m.group(1): i for i, p in enumerate(problems) if (m := re.search(r"did you mean '([^']+)'", p))}
    try:
        cfg = StackConfig.model_validate(data)
    except ValidationError as exc:
        bad: list[tuple[Any, ...]] = []
        for err in exc.errors():
            loc = err["loc"]
            bad.append(tuple(loc))
            ctx = err.get("ctx") or {}
            if err["type"] == "cross_field":
                problems.append(_line(f"{_key_path(tuple(ctx['key'].split('.')))}: {ctx['message']}"))
                continue
            ctx_err = ctx.get("error")
            if isinstance(ctx_err, _KeyedError):
                problems.append(_line(f"{_key_path(tuple(ctx_err.key.split('.')))}: {ctx_err}"))
                continue
            path = _key_path(loc)
            if err["type"] == "missing" and len(loc) == 1 and path in meant:
                problems[meant[path]] += f"; {path} is required"
                continue
            if any(str(p) in _UNION_MEMBERS for p in loc):
                # Each member of a union reports its own mismatch; one line per key says it.
                if any(p.startswith(path + ":") for p in problems):
                    continue
                err = {
                    **err,
                    "msg": 'must be a string like "100" or a whole number'
                    if err["type"] in ("int_type", "string_type")
                    else err["msg"],
                }
            line = _line(f"{path}: {_message(err)}")
            if line not in problems:
                problems.append(line)
        if not any(p.startswith(f"{NAMESPACE}:(root)") for p in problems):
            partial = _partial(StackConfig, data, bad, ())
            for key, message in stack_rule_problems(partial, partial=True):
                line = _line(f"{_key_path(tuple(key.split('.')))}: {message}")
                if line not in problems:
                    problems.append(line)
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
