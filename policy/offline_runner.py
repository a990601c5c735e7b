"""Apply the pack to resources without the pulumi CLI, the way the engine's analyzer host does.

- Policy config: the JSON `--policy-pack-config` takes (`{"all": "advisory", "<id>": "mandatory"}` or
  `"<id>": {"enforcementLevel": ..., <knobs>}`), reconciled like the engine: schema defaults, then
  `all`, then per-policy entries; knobs validated against each policy's schema.
- Resource policies get the resource's camelCase inputs wrapped in
  `pulumi_policy.proxy.unknown_checking_proxy`; reading an unknown value ends that policy with an
  ADVISORY "can't run policy ... during preview" diagnostic, as in a real preview.
- Stack policies get `PolicyResource`s whose `parent`, `dependencies` and `property_dependencies`
  point at the other `PolicyResource` objects.
- `remediate` counts as mandatory; `disabled` policies do not run.

Inputs come from a mocked run (`resources_from_run`: `Secret` wrappers unwrapped, as the engine
hands policies plaintext) or a plan JSON (`resources_from_plan`: `"[secret]"` masks become
unknown values, since the real value is not in the file).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policy.registry import PACK_NAME, RULES
from policy.rules.common import Rule
from policy.secret_mask import SECRET_MASK

CONFIG_DIR = Path(__file__).resolve().parent / "config"
PACK_VERSION = "0.1.0"
_LEVELS = {level.value: level for level in EnforcementLevel}


class PolicyConfigError(ValueError):
    """A policy config file the engine would refuse; one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Resource:
    """One resource as the analyzer sees it."""

    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None = None
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    urn: str
    message: str
    severity: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"policy": self.policy, "level": self.level, "urn": self.urn, "message": self.message}
        if self.severity:
            out["severity"] = self.severity
        return out


@dataclass(frozen=True)
class PolicySettings:
    level: EnforcementLevel
    config: dict[str, Any]


# ---------------------------------------------------------------------------------------- config
def parse_pack_config(
    raw: Mapping[str, Any], source: str = "policy config"
) -> dict[str, tuple[EnforcementLevel | None, dict[str, Any]]]:
    """Engine parsing of a policy pack config document: each value a level string or an object."""
    problems: list[str] = []
    parsed: dict[str, tuple[EnforcementLevel | None, dict[str, Any]]] = {}
    if not isinstance(raw, Mapping):
        raise PolicyConfigError([f"{source}: must be a JSON object of policy name -> level or object"])
    for name, value in raw.items():
        if isinstance(value, str):
            if value not in _LEVELS:
                problems.append(f"{source}: {name}: '{value}' is not an enforcement level ({', '.join(_LEVELS)})")
                continue
            parsed[name] = (_LEVELS[value], {})
        elif isinstance(value, Mapping):
            props = dict(value)
            level = props.pop("enforcementLevel", None)
            if level is not None and level not in _LEVELS:
                problems.append(
                    f"{source}: {name}.enforcementLevel: '{level}' is not an enforcement level ({', '.join(_LEVELS)})"
                )
                continue
            parsed[name] = (_LEVELS[level] if level else None, props)
        else:
            problems.append(f"{source}: {name}: must be an enforcement level string or an object")
    if problems:
        raise PolicyConfigError(problems)
    return parsed


def load_pack_config(path: Path) -> dict[str, tuple[EnforcementLevel | None, dict[str, Any]]]:
    text = Path(path).read_text()
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyConfigError([f"{path}: not valid JSON ({exc})"]) from None
    return parse_pack_config(raw, str(path))


_JSON_TYPES = {"string": str, "boolean": bool, "object": dict, "array": list}


def _schema_problems(value: Any, schema: Mapping[str, Any], where: str) -> list[str]:
    """The subset of JSON Schema the pack's config schemas use: type, items, enum, minimum, maximum."""
    typ = schema.get("type")
    if typ == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif typ == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif typ in _JSON_TYPES:
        ok = isinstance(value, _JSON_TYPES[typ])
    else:
        ok = True
    if not ok:
        return [f"{where}: expected {typ}, got {json.dumps(value)}"]
    problems: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {json.dumps(value)} is not one of {schema['enum']}")
    if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
        problems.append(f"{where}: {value} is below the minimum {schema['minimum']}")
    if "maximum" in schema and isinstance(value, (int, float)) and value > schema["maximum"]:
        problems.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if typ == "array" and "items" in schema:
        for i, item in enumerate(value):
            problems.extend(_schema_problems(item, schema["items"], f"{where}[{i}]"))
    return problems


def reconcile(
    config: Mapping[str, tuple[EnforcementLevel | None, dict[str, Any]]],
    rules: Iterable[Rule] = RULES,
    default_level: EnforcementLevel = EnforcementLevel.ADVISORY,
    source: str = "policy config",
) -> dict[str, PolicySettings]:
    """Schema defaults, then `all`, then per-policy entries (the engine's ReconcilePolicyPackConfig)."""
    rules = list(rules)
    known = {r.id for r in rules}
    problems = [
        f"{source}: '{name}' is not a policy of {PACK_NAME} (known: see `platformctl policy list`)"
        for name in config
        if name != "all" and name not in known
    ]
    all_level = config.get("all", (None, {}))[0]
    settings: dict[str, PolicySettings] = {}
    for rule in rules:
        level = rule.policy.enforcement_level or default_level
        if all_level is not None:
            level = all_level
        props = rule.defaults()
        if rule.id in config:
            given_level, given_props = config[rule.id]
            level = given_level or level
            for key, value in given_props.items():
                if rule.config_schema and key not in rule.config_schema:
                    problems.append(
                        f"{source}: {rule.id}.{key}: not a knob of this policy "
                        f"(knobs: {', '.join(sorted(rule.config_schema)) or 'none'})"
                    )
                    continue
                props[key] = value
        for key, schema in rule.config_schema.items():
            if key in props:
                problems.extend(_schema_problems(props[key], schema, f"{source}: {rule.id}.{key}"))
        settings[rule.id] = PolicySettings(level, props)
    if problems:
        raise PolicyConfigError(problems)
    return settings


def config_path(stack: str, environment: str | None = None, config_dir: Path = CONFIG_DIR) -> Path:
    """policy/config/<stack>.json, else the stack's environment's file (dev/staging/prod)."""
    candidates = [config_dir / f"{stack}.json"]
    if environment:
        candidates.append(config_dir / f"{environment}.json")
    for path in candidates:
        if path.exists():
            return path
    expected = candidates[-1]  # the environment's file when there is an environment: the one to create
    try:
        shown = expected.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        shown = expected
    whose = f"environment '{environment}'" if environment else f"stack '{stack}'"
    raise FileNotFoundError(
        f"{shown}: no policy config for {whose}; create it (policy/README.md, "
        '"Enforcement per environment") or pass --policy-config FILE'
    )


# -------------------------------------------------------------------------------------- adapters
def _mask_to_unknown(value: Any) -> Any:
    if value == SECRET_MASK:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {k: _mask_to_unknown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_to_unknown(v) for v in value]
    return value


def resources_from_plan(plan: Mapping[str, Any]) -> list[Resource]:
    """Resources of a plan JSON; "[secret]" masks become unknowns (the value is not in the file)."""
    out = []
    for r in plan.get("resources", []):
        out.append(
            Resource(
                urn=r["urn"],
                type=r["type"],
                name=r["name"],
                inputs=_mask_to_unknown(r.get("inputs") or {}),
                parent=r.get("parent"),
                dependencies=list(r.get("dependencies") or []),
                property_dependencies=dict(r.get("propertyDependencies") or {}),
                protect=bool(r.get("protect")),
            )
        )
    return out


# ------------------------------------------------------------------------------------ evaluation
def _options(res: Resource) -> PolicyResourceOptions:
    return PolicyResourceOptions(res.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], res.parent)


def _effective(level: EnforcementLevel) -> EnforcementLevel:
    return EnforcementLevel.MANDATORY if level == EnforcementLevel.REMEDIATE else level


def _cant_run(rule: Rule, err: UnknownValueError, urn: str) -> Violation:
    return Violation(
        rule.id,
        EnforcementLevel.ADVISORY.value,
        urn,
        f"can't run policy '{rule.id}' from policy pack '{PACK_NAME}@v{PACK_VERSION}' during preview: {err.message}",
        rule.severity.value,
    )


def evaluate(
    resources: list[Resource],
    settings: Mapping[str, PolicySettings] | None = None,
    rules: Iterable[Rule] = RULES,
    stack_tags: Mapping[str, str] | None = None,
) -> list[Violation]:
    rules = list(rules)
    settings = settings if settings is not None else reconcile({}, rules)
    active = [(r, settings[r.id]) for r in rules if settings[r.id].level != EnforcementLevel.DISABLED]
    violations: list[Violation] = []

    def reporter(rule: Rule, level: EnforcementLevel, default_urn: str, fixed_urn: bool):
        def report(message: str, urn: str | None = None) -> None:
            target = default_urn if fixed_urn or not urn else urn
            violations.append(Violation(rule.id, _effective(level).value, target, message, rule.severity.value))

        return report

    def run_one(rule: Rule, call, urn: str) -> None:
        try:
            call()
        except UnknownValueError as err:
            violations.append(_cant_run(rule, err, urn))
        except _NotApplicableError:
            pass
        except Exception as exc:  # a policy bug must block, visibly, not vanish
            violations.append(
                Violation(
                    rule.id,
                    _effective(settings[rule.id].level).value,
                    urn,
                    f"policy raised {type(exc).__name__}: {exc}",
                    rule.severity.value,
                )
            )

    resource_rules = [(r, s) for r, s in active if r.kind == "resource"]
    # One read-only proxy per resource, shared by every policy (the engine builds an equal one per call).
    proxies = {res.urn: unknown_checking_proxy(res.inputs) for res in resources}
    by_type: dict[str, list[tuple[Rule, PolicySettings]]] = {}
    for res in resources:
        # Every policy's validate starts by filtering on its types; skip the calls that would be no-ops.
        applicable = by_type.get(res.type)
        if applicable is None:
            applicable = by_type[res.type] = [(r, s) for r, s in resource_rules if res.type in r.resource_types]
        if not applicable:
            continue
        props = proxies[res.urn]
        opts = _options(res)
        for rule, s in applicable:
            args = ResourceValidationArgs(
                res.type, props, res.urn, res.name, opts, None, dict(s.config), stack_tags or {}
            )
            report = reporter(rule, s.level, res.urn, fixed_urn=True)
            run_one(rule, lambda rule=rule, args=args, report=report: rule.policy.validate(args, report), res.urn)

    stack_rules = [(r, s) for r, s in active if r.kind == "stack"]
    if stack_rules:
        policy_resources = stack_view(resources, proxies)
        for rule, s in stack_rules:
            args = StackValidationArgs(policy_resources, dict(s.config), stack_tags or {})
            report = reporter(rule, s.level, "", fixed_urn=False)
            run_one(rule, lambda rule=rule, args=args, report=report: rule.policy.validate(args, report), "")
    return violations


def stack_view(resources: list[Resource], proxies: Mapping[str, Any] | None = None) -> list[PolicyResource]:
    """PolicyResources with parent/dependencies resolved to each other, as AnalyzeStack builds them."""
    by_urn: dict[str, PolicyResource] = {}
    for res in resources:
        props = proxies[res.urn] if proxies is not None else unknown_checking_proxy(res.inputs)
        by_urn[res.urn] = PolicyResource(res.type, props, res.urn, res.name, _options(res), None, None, [], {})
    for res in resources:
        pr = by_urn[res.urn]
        if res.parent in by_urn:
            pr.parent = by_urn[res.parent]
        pr.dependencies.extend(by_urn[d] for d in res.dependencies if d in by_urn)
        for key, deps in res.property_dependencies.items():
            pr.property_dependencies[key] = [by_urn[d] for d in deps if d in by_urn]
    return list(by_urn.values())


def check(resources: list[Resource], config_file: Path | None) -> list[Violation]:
    """Reconcile `config_file` (None: pack defaults) and evaluate every policy."""
    config = load_pack_config(config_file) if config_file is not None else {}
    return evaluate(resources, reconcile(config, source=str(config_file or "defaults")))
