"""Validate Karpenter objects the way the API server would, offline, against the vendored v1 CRDs.

Three layers, all from `../shared/reference/karpenter-crds/*.yaml` (published by aws/karpenter-provider-aws;
read in place, never copied into the project; tests skip with the reason when it is absent):

1. structural defaulting: the schema's `default`s are applied first, as the API server does before
   validating (so CEL rules see e.g. `metadataOptions` even when omitted);
2. `openAPIV3Schema` with `jsonschema` (types, enums, patterns, required, min/max), plus a check that
   every field we send is declared: the API server silently prunes unknown fields, which would turn a
   typo in a builder into a setting that never arrives;
3. every `x-kubernetes-validations` CEL rule, evaluated with cel-python plus the two Kubernetes CEL
   library functions these CRDs use (`split`, `find`). Transition rules (those reading `oldSelf`) are
   skipped: they only apply to updates.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import celpy
import jsonschema
from celpy import celtypes

from tests import fast_yaml
from tests.upstream_reference import reference_file

CRD_FILES = {
    ("karpenter.sh/v1", "NodePool"): "karpenter.sh_nodepools.yaml",
    ("karpenter.k8s.aws/v1", "EC2NodeClass"): "karpenter.k8s.aws_ec2nodeclasses.yaml",
}


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    text = reference_file(f"karpenter-crds/{CRD_FILES[(api_version, kind)]}").read_text()
    doc = fast_yaml.load(text)
    version = api_version.split("/")[1]
    (entry,) = [v for v in doc["spec"]["versions"] if v["name"] == version]
    return entry["schema"]["openAPIV3Schema"]


# ------------------------------------------------------------------------------- defaulting
def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    value = copy.deepcopy(value)
    _default(schema, value)
    return value


def _default(schema: dict[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _default(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in value:
                if name not in (schema.get("properties") or {}):
                    _default(extra, value[name])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(schema["items"], item)


# --------------------------------------------------------------------------- unknown fields
def unknown_fields(schema: dict[str, Any], value: Any, path: str = "") -> Iterator[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for name, sub_value in value.items():
            if props is not None and name in props:
                yield from unknown_fields(props[name], sub_value, f"{path}.{name}")
            elif isinstance(extra, dict):
                yield from unknown_fields(extra, sub_value, f"{path}.{name}")
            elif props is not None and path != ".metadata":
                yield f"{path}.{name}"
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from unknown_fields(schema["items"], item, f"{path}[{i}]")


# ------------------------------------------------------------------------------------- CEL
def _split(s: Any, sep: Any) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(p) for p in str(s).split(str(sep))])


def _find(s: Any, pattern: Any) -> celtypes.StringType:
    match = re.search(str(pattern), str(s))
    return celtypes.StringType(match.group(0) if match else "")


_CEL_FUNCTIONS = {"split": _split, "find": _find}


@cache
def _cel_env() -> celpy.Environment:
    # Built on first use: its parser takes 0.2 s, paid at collection otherwise.
    return celpy.Environment()


@cache
def _program(rule: str):
    return _cel_env().program(_cel_env().compile(rule), functions=_CEL_FUNCTIONS)


def cel_rules(schema: dict[str, Any], value: Any, path: str = "") -> Iterator[tuple[str, str, str, Any]]:
    """(path, rule, message, value) for every CEL rule that applies to a present value."""
    for rule in schema.get("x-kubernetes-validations") or []:
        if "oldSelf" not in rule["rule"]:
            yield path, rule["rule"], rule.get("message", ""), value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for name, sub_value in value.items():
            if name in props:
                yield from cel_rules(props[name], sub_value, f"{path}.{name}")
            elif isinstance(extra, dict):
                yield from cel_rules(extra, sub_value, f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from cel_rules(schema["items"], item, f"{path}[{i}]")


def cel_failures(schema: dict[str, Any], value: Any, *, structurally_valid: bool = True) -> list[str]:
    failures = []
    for path, rule, message, sub_value in cel_rules(schema, value):
        result = _program(rule).evaluate({"self": celpy.json_to_cel(sub_value)})
        if isinstance(result, celpy.CELEvalError):
            if not structurally_valid:
                continue  # the API server skips CEL on values that failed the schema; so do we
            raise AssertionError(f"{path or '.'}: CEL rule could not be evaluated: {rule}: {result}")
        if not bool(result):
            failures.append(f"{path or '.'}: {message} ({rule})")
    return failures


# ------------------------------------------------------------------------------------ entry
def validation_errors(obj: dict[str, Any]) -> list[str]:
    """Everything the API server would refuse about `obj` (empty when valid)."""
    schema = crd_schema(obj["apiVersion"], obj["kind"])
    defaulted = apply_defaults(schema, obj)
    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '.'}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(defaulted)
    ]
    errors += [f"{p}: unknown field (the API server would prune it)" for p in unknown_fields(schema, obj)]
    errors += cel_failures(schema, defaulted, structurally_valid=not errors)
    return errors


def assert_valid(obj: dict[str, Any]) -> None:
    errors = validation_errors(obj)
    assert not errors, f"{obj['kind']} {obj['metadata']['name']} is invalid:\n  " + "\n  ".join(errors)
