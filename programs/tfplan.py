"""A Terraform-plan view of the offline plan, for scanners that read Terraform plan JSON (checkov's
`terraform_plan` framework, trivy, conftest).

pulumi-aws, pulumi-tls and pulumi-random bridge the Terraform providers of the same names: each
Pulumi type is one Terraform resource type and each input one Terraform attribute, so a plan can
be shown to those scanners faithfully:

- Types: `TERRAFORM_TYPES` below. The installed pulumi_aws Python package carries no token map
  (its `pulumi-plugin.json` holds only name and version, the bridged schema is not shipped and the
  docstrings name Pulumi types, not Terraform ones), so the table is explicit: one line per type
  this project registers, each checked against the provider's resource documentation. A custom
  resource whose type is not in it is listed under `k8s_platform.unmapped` and left out of the
  plan, never guessed.
- Attributes: the shape comes from the installed SDK's own input types (`pulumi._types.
  input_type_types` of `<Resource>Args`): an input whose type is an input class is a Terraform
  block, written as a list of one object (Pulumi flattens `MaxItems: 1` blocks, Terraform does
  not); a sequence of input classes is a list of blocks; mappings (`tags`) stay objects. Names are
  the SDK's Python names (the snake_case of the engine name), except where the bridge renamed a
  Terraform attribute (mostly plural names of repeated blocks): `ATTRIBUTE_RENAMES`.
- References: a top-level input whose value is the mock ID or ARN of one of the resource's
  dependencies is what Terraform shows as unknown in a first plan; it is left out of
  `planned_values` and written into `configuration` as `references` (`aws_s3_bucket.x.id`), which
  is how checkov's graph connects, e.g., a bucket to its public-access block.

Kubernetes objects are not part of this view (`k8s_yaml.py` writes them for the `kubernetes`
framework); Pulumi components are grouping only. Both are counted under `k8s_platform`.
"""

from __future__ import annotations

import functools
import importlib
import keyword
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from programs.mock_resources import MockContext, arn_for, resource_id

FORMAT_VERSION = "1.2"
TERRAFORM_VERSION = "1.9.8"  # the plan JSON format this view follows (format_version 1.2)

# Pulumi type token -> Terraform resource type (provider docs: registry.terraform.io/providers/
# hashicorp/aws, /tls, /random). pulumi-aws v7 names the former `BucketV2`-style resources plainly
# (`aws:s3/bucket:Bucket` is `aws_s3_bucket`, `aws:s3/bucketObjectv2:BucketObjectv2` is `aws_s3_object`).
TERRAFORM_TYPES: dict[str, str] = {
    "aws:autoscaling/group:Group": "aws_autoscaling_group",
    "aws:cloudfront/distribution:Distribution": "aws_cloudfront_distribution",
    "aws:cloudfront/originAccessControl:OriginAccessControl": "aws_cloudfront_origin_access_control",
    "aws:cloudwatch/eventRule:EventRule": "aws_cloudwatch_event_rule",
    "aws:cloudwatch/eventTarget:EventTarget": "aws_cloudwatch_event_target",
    "aws:cloudwatch/logGroup:LogGroup": "aws_cloudwatch_log_group",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "aws_default_security_group",
    "aws:ec2/eip:Eip": "aws_eip",
    "aws:ec2/flowLog:FlowLog": "aws_flow_log",
    "aws:ec2/instance:Instance": "aws_instance",
    "aws:ec2/internetGateway:InternetGateway": "aws_internet_gateway",
    "aws:ec2/launchTemplate:LaunchTemplate": "aws_launch_template",
    "aws:ec2/natGateway:NatGateway": "aws_nat_gateway",
    "aws:ec2/route:Route": "aws_route",
    "aws:ec2/routeTable:RouteTable": "aws_route_table",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "aws_route_table_association",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:ec2/subnet:Subnet": "aws_subnet",
    "aws:ec2/vpc:Vpc": "aws_vpc",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "aws_vpc_endpoint",
    "aws:ec2/vpcIpv4CidrBlockAssociation:VpcIpv4CidrBlockAssociation": "aws_vpc_ipv4_cidr_block_association",
    "aws:eks/accessEntry:AccessEntry": "aws_eks_access_entry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": "aws_eks_access_policy_association",
    "aws:eks/addon:Addon": "aws_eks_addon",
    "aws:eks/cluster:Cluster": "aws_eks_cluster",
    "aws:eks/nodeGroup:NodeGroup": "aws_eks_node_group",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": "aws_eks_pod_identity_association",
    "aws:iam/instanceProfile:InstanceProfile": "aws_iam_instance_profile",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "aws_iam_openid_connect_provider",
    "aws:iam/policy:Policy": "aws_iam_policy",
    "aws:iam/role:Role": "aws_iam_role",
    "aws:iam/rolePolicy:RolePolicy": "aws_iam_role_policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "aws_iam_role_policy_attachment",
    "aws:kms/alias:Alias": "aws_kms_alias",
    "aws:kms/key:Key": "aws_kms_key",
    "aws:lambda/eventSourceMapping:EventSourceMapping": "aws_lambda_event_source_mapping",
    "aws:lambda/function:Function": "aws_lambda_function",
    "aws:lb/listener:Listener": "aws_lb_listener",
    "aws:lb/loadBalancer:LoadBalancer": "aws_lb",
    "aws:lb/targetGroup:TargetGroup": "aws_lb_target_group",
    "aws:rolesanywhere/profile:Profile": "aws_rolesanywhere_profile",
    "aws:rolesanywhere/trustAnchor:TrustAnchor": "aws_rolesanywhere_trust_anchor",
    "aws:route53/record:Record": "aws_route53_record",
    "aws:s3/bucket:Bucket": "aws_s3_bucket",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "aws_s3_bucket_lifecycle_configuration",
    "aws:s3/bucketLogging:BucketLogging": "aws_s3_bucket_logging",
    "aws:s3/bucketObjectv2:BucketObjectv2": "aws_s3_object",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "aws_s3_bucket_ownership_controls",
    "aws:s3/bucketPolicy:BucketPolicy": "aws_s3_bucket_policy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "aws_s3_bucket_public_access_block",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "aws_s3_bucket_server_side_encryption_configuration"
    ),
    "aws:s3/bucketVersioning:BucketVersioning": "aws_s3_bucket_versioning",
    "aws:secretsmanager/secret:Secret": "aws_secretsmanager_secret",
    "aws:secretsmanager/secretVersion:SecretVersion": "aws_secretsmanager_secret_version",
    "aws:sqs/queue:Queue": "aws_sqs_queue",
    "aws:sqs/queuePolicy:QueuePolicy": "aws_sqs_queue_policy",
    "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy": "aws_sqs_queue_redrive_allow_policy",
    "aws:ssm/parameter:Parameter": "aws_ssm_parameter",
    "aws:ssm/document:Document": "aws_ssm_document",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "aws_vpc_security_group_egress_rule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "aws_vpc_security_group_ingress_rule",
    "random:index/randomPassword:RandomPassword": "random_password",
    "tls:index/certRequest:CertRequest": "tls_cert_request",
    "tls:index/locallySignedCert:LocallySignedCert": "tls_locally_signed_cert",
    "tls:index/privateKey:PrivateKey": "tls_private_key",
    "tls:index/selfSignedCert:SelfSignedCert": "tls_self_signed_cert",
}

# Where the bridge named an attribute differently from Terraform: (Terraform type, Pulumi Python
# path) -> Terraform name. Repeated blocks are plural in Pulumi, singular in Terraform.
ATTRIBUTE_RENAMES: dict[tuple[str, str], str] = {
    ("aws_iam_role", "inline_policies"): "inline_policy",
    ("aws_lb_listener", "default_actions"): "default_action",
    ("aws_lb", "subnet_mappings"): "subnet_mapping",
    ("aws_autoscaling_group", "tags"): "tag",
    ("aws_cloudfront_distribution", "origins"): "origin",
    ("aws_cloudfront_distribution", "ordered_cache_behaviors"): "ordered_cache_behavior",
    ("aws_cloudfront_distribution", "custom_error_responses"): "custom_error_response",
    ("aws_cloudfront_distribution", "origin_groups"): "origin_group",
    ("aws_s3_bucket_lifecycle_configuration", "rules"): "rule",
    ("aws_s3_bucket_lifecycle_configuration", "rules.transitions"): "transition",
    ("aws_s3_bucket_server_side_encryption_configuration", "rules"): "rule",
    ("aws_route53_record", "aliases"): "alias",
    ("aws_route_table", "routes"): "route",
    ("aws_secretsmanager_secret", "replicas"): "replica",
}

PROVIDERS = {
    "aws": "registry.terraform.io/hashicorp/aws",
    "tls": "registry.terraform.io/hashicorp/tls",
    "random": "registry.terraform.io/hashicorp/random",
}
SDK_PACKAGES = {"aws": "pulumi_aws", "tls": "pulumi_tls", "random": "pulumi_random"}


# ------------------------------------------------------------------------- schema from the SDK
@functools.cache
def args_class(token: str) -> type | None:
    """`<Resource>Args` of the installed SDK for a type token, or None."""
    package, module_path, name = token.split(":")
    sdk = SDK_PACKAGES.get(package)
    if sdk is None:
        return None
    module = module_path.split("/")[0]
    module = f"{module}_" if keyword.iskeyword(module) else module  # `lambda` is `pulumi_aws.lambda_`
    try:
        mod = importlib.import_module(sdk if module == "index" else f"{sdk}.{module}")
    except ImportError:
        return None
    resource = getattr(mod, name, None)
    if resource is None:
        return None
    # The class defined in the resource's own module: where a nested input type has the name
    # `<Name>Args` (`s3.BucketServerSideEncryptionConfigurationArgs` is a block of the legacy
    # Bucket input), the SDK calls the resource's own `<Name>InitArgs`.
    own = importlib.import_module(resource.__module__)
    for candidate in (f"{name}InitArgs", f"{name}Args"):
        cls = getattr(own, candidate, None)
        if cls is not None and cls.__module__ == own.__name__:
            return cls
    return None


def _members(tp: Any) -> list[Any]:
    """The concrete types of an SDK annotation: Union/Optional/Awaitable/Output wrappers removed."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        out: list[Any] = []
        for arg in typing.get_args(tp):
            out += _members(arg)
        return out
    if tp is type(None) or origin is not None and getattr(origin, "__name__", "") in ("Awaitable", "Output"):
        return []
    if getattr(tp, "__name__", "") == "Output" or getattr(origin, "__name__", "") == "Output":
        return []
    return [tp]


def _is_input_class(tp: Any) -> bool:
    from pulumi._types import is_input_type

    return isinstance(tp, type) and is_input_type(tp)


def _field_shapes(cls: type) -> dict[str, tuple[str, str, type | None]]:
    """engine (camelCase) name -> (python name, shape, nested input class); shape is one of
    "block", "blocks", "map", "value"."""
    from pulumi._types import input_type_py_to_pulumi_names, input_type_types

    py_names = {pulumi: py for py, pulumi in input_type_py_to_pulumi_names(cls).items()}
    shapes: dict[str, tuple[str, str, type | None]] = {}
    for pulumi_name, tp in input_type_types(cls).items():
        shape, nested = "value", None
        for member in _members(tp):
            origin = typing.get_origin(member)
            if _is_input_class(member):
                shape, nested = "block", member
            elif isinstance(origin, type) and issubclass(origin, Sequence) and not issubclass(origin, str):
                inner = [m for a in typing.get_args(member) for m in _members(a)]
                cls_inner = next((m for m in inner if _is_input_class(m)), None)
                if cls_inner is not None:
                    shape, nested = "blocks", cls_inner
            elif origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
                shape = "map"
        shapes[pulumi_name] = (py_names.get(pulumi_name, _snake(pulumi_name)), shape, nested)
    return shapes


@functools.cache
def field_shapes(cls: type) -> dict[str, tuple[str, str, type | None]]:
    return _field_shapes(cls)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def terraform_values(tf_type: str, cls: type | None, inputs: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Pulumi inputs (engine names) -> Terraform attribute values."""
    shapes = field_shapes(cls) if cls is not None else {}
    out: dict[str, Any] = {}
    for key, value in inputs.items():
        py_name, shape, nested = shapes.get(key, (_snake(key), "value", None))
        dotted = f"{path}{py_name}"
        tf_name = ATTRIBUTE_RENAMES.get((tf_type, dotted), py_name)
        if shape == "block" and isinstance(value, dict):
            out[tf_name] = [terraform_values(tf_type, nested, value, f"{dotted}.")]
        elif shape == "blocks" and isinstance(value, list):
            out[tf_name] = [
                terraform_values(tf_type, nested, v, f"{dotted}.") if isinstance(v, dict) else v for v in value
            ]
        else:
            out[tf_name] = value
    return out


# --------------------------------------------------------------------------------- the plan view
def _address_names(resources: list[dict[str, Any]]) -> dict[str, str]:
    """URN -> Terraform resource name (the Pulumi name made an identifier, unique per type)."""
    taken: dict[tuple[str, str], int] = {}
    names: dict[str, str] = {}
    for r in resources:
        base = re.sub(r"[^A-Za-z0-9_]", "_", r["name"]) or "r"
        if base[0].isdigit():
            base = f"r_{base}"
        key = (r["type"], base)
        taken[key] = taken.get(key, 0) + 1
        names[r["urn"]] = base if taken[key] == 1 else f"{base}_{taken[key]}"
    return names


def _mock_context(plan: dict[str, Any]) -> MockContext:
    """The context the offline run computed IDs and ARNs with, from the plan's AWS provider."""
    import json

    region, account = "us-east-1", "123456789012"
    for r in plan["resources"]:
        if r["type"] == "pulumi:providers:aws":
            inputs = r.get("inputs") or {}
            region = inputs.get("region") or region
            ids = inputs.get("allowedAccountIds")
            if isinstance(ids, str):
                ids = json.loads(ids) if ids.startswith("[") else [ids]
            if ids:
                account = ids[0]
            break
    return MockContext(region=region, account_id=account, stack=plan["stack"])


def _identities(ctx: MockContext, r: dict[str, Any]) -> dict[str, str]:
    """The values another resource would read from `r` (its ID and ARN), as the offline run gave them."""
    inputs = r.get("inputs") or {}
    rid = resource_id(ctx, r["type"], r["name"], inputs)
    found = {rid: "id"}
    arn = arn_for(ctx, r["type"], r["name"], rid, inputs)
    if arn:
        found[arn] = "arn"
    return found


def is_kubernetes(token: str) -> bool:
    return token.startswith("kubernetes:")


def to_terraform_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """The Terraform plan JSON (format 1.2 subset scanners read) of an offline plan."""
    custom = [r for r in plan["resources"] if r["custom"] and not r["type"].startswith("pulumi:providers:")]
    mapped = [r for r in custom if r["type"] in TERRAFORM_TYPES]
    unmapped = sorted({r["type"] for r in custom if r["type"] not in TERRAFORM_TYPES and not is_kubernetes(r["type"])})
    names = _address_names(mapped)
    address = {r["urn"]: f"{TERRAFORM_TYPES[r['type']]}.{names[r['urn']]}" for r in mapped}
    ctx = _mock_context(plan)
    identity = {r["urn"]: _identities(ctx, r) for r in mapped}
    deps_of = {r["urn"]: set(r.get("dependencies") or []) for r in mapped}

    planned, configured, changes = [], [], []
    for r in mapped:
        tf_type = TERRAFORM_TYPES[r["type"]]
        values = terraform_values(tf_type, args_class(r["type"]), r.get("inputs") or {})
        known = _known_values([d for d in r.get("dependencies") or [] if d in identity], identity, address, deps_of)
        values, expressions = split_references(values, known)
        provider = r["type"].split(":")[0]
        entry = {
            "address": address[r["urn"]],
            "mode": "managed",
            "type": tf_type,
            "name": names[r["urn"]],
            "provider_name": PROVIDERS[provider],
            "schema_version": 0,
            "values": values,
            "sensitive_values": {},
        }
        planned.append(entry)
        configured.append(
            {
                "address": entry["address"],
                "mode": "managed",
                "type": tf_type,
                "name": entry["name"],
                "provider_config_key": provider,
                "expressions": expressions,
                "schema_version": 0,
                **(
                    {"depends_on": sorted({address[d] for d in r["dependencies"] if d in address})}
                    if r.get("dependencies")
                    else {}
                ),
            }
        )
        changes.append(
            {
                "address": entry["address"],
                "mode": "managed",
                "type": tf_type,
                "name": entry["name"],
                "provider_name": PROVIDERS[provider],
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": values,
                    "after_unknown": {k: True for k in expressions},
                },
            }
        )
    return {
        "format_version": FORMAT_VERSION,
        "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {
            "provider_config": {
                p: {"name": p, "full_name": PROVIDERS[p]} for p in sorted({r["type"].split(":")[0] for r in mapped})
            },
            "root_module": {"resources": configured},
        },
        "k8s_platform": {
            "project": plan.get("project"),
            "stack": plan.get("stack"),
            "addresses": {address[r["urn"]]: r["urn"] for r in mapped},
            "unmapped": unmapped,
            # Mapped types whose SDK input class was not found: attribute names and blocks unconverted.
            "without_schema": sorted({r["type"] for r in mapped if args_class(r["type"]) is None}),
            "kubernetes_objects": sum(1 for r in custom if is_kubernetes(r["type"])),
            "components": sum(1 for r in plan["resources"] if not r["custom"]),
        },
    }


def _known_values(
    deps: list[str], identity: dict[str, dict[str, str]], address: dict[str, str], deps_of: dict[str, set[str]]
) -> dict[str, str]:
    """Value -> `address.attr` over a resource's dependencies. Sub-resources share their parent's ID
    (a bucket's versioning is identified by the bucket name): of several claimants of one value,
    the one that depends on none of the others (the bucket itself) is the source."""
    claimants: dict[str, list[str]] = {}
    for dep in deps:
        for value in identity[dep]:
            claimants.setdefault(value, []).append(dep)
    known: dict[str, str] = {}
    for value, urns in claimants.items():
        roots = [u for u in urns if not (deps_of.get(u, set()) & set(urns))] or urns
        known[value] = f"{address[roots[0]]}.{identity[roots[0]][value]}"
    return known


def _references_of(value: Any, known: dict[str, str]) -> list[str] | None:
    """Terraform `references` of a value read from dependencies (`aws_x.y.id`, `aws_x.y`): a list
    with one element from a dependency is unknown as a whole in a first Terraform plan."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) for v in items) or not any(v in known for v in items):
        return None
    refs: list[str] = []
    for v in items:
        if v in known:
            refs += [known[v], known[v].rsplit(".", 1)[0]]
    return list(dict.fromkeys(refs))


def split_references(values: dict[str, Any], known: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values without what comes from dependencies, configuration expressions with their references),
    through nested blocks; maps (`tags`) are data, never references."""
    kept: dict[str, Any] = {}
    expressions: dict[str, Any] = {}
    for key, value in values.items():
        refs = _references_of(value, known)
        if refs:
            expressions[key] = {"references": refs}
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            pairs = [split_references(v, known) for v in value]
            kept[key] = [p[0] for p in pairs]
            if any(p[1] for p in pairs):
                expressions[key] = [p[1] for p in pairs]
        else:
            kept[key] = value
    return kept, expressions
