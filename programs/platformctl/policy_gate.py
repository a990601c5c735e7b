"""Applies the CrossGuard pack (policy/) to an offline run and records violations in the plan.

The stack's enforcement comes from `policy/config/<stack>.json` (else `<environment>.json`), the
same file `pulumi preview --policy-pack policy --policy-pack-config ...` takes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from policy.offline_runner import PACK_NAME, check, config_path, resources_from_plan
from programs.plan import resources_from_run


def _summary(plan: dict[str, Any], violations: list[dict[str, Any]], config_file: Path) -> dict[str, Any]:
    policy = plan.setdefault("policy", {})
    policy["violations"] = violations
    policy["pack"] = PACK_NAME
    policy["config"] = _display(config_file)
    return plan


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def resolve_policy_config(stack: str, raw_config: dict[str, Any], given: Path | None = None) -> Path | None:
    """The policy config a run will use, found before the program runs (FileNotFoundError naming one
    path). None when the stack file's environment is itself invalid: config validation reports that."""
    from components.config.environments import ENVIRONMENTS

    if given is not None:
        if not given.is_file():
            raise FileNotFoundError(f"{given}: no such policy config file (--policy-config)")
        return given
    environment = raw_config.get("k8s-platform:environment")
    if not isinstance(environment, str) or environment not in ENVIRONMENTS:
        return None
    return config_path(stack, environment)


def apply_policies(plan: dict[str, Any], run: Any, stack: str, config_file: Path | None = None) -> dict[str, Any]:
    """Evaluate the pack on the run's resources (secrets revealed, as the engine does) into `plan`."""
    path = config_file or config_path(stack, run.config.environment)
    violations = [v.as_dict() for v in check(resources_from_run(run), path)]
    return _summary(plan, violations, path)


def check_plan(plan: dict[str, Any], stack: str, config_file: Path | None = None) -> dict[str, Any]:
    """Evaluate the pack on a saved plan JSON (secret masks are unknowns) and record the result."""
    environment = (plan.get("outputs") or {}).get("environment")
    path = config_file or config_path(stack, environment if isinstance(environment, str) else None)
    violations = [v.as_dict() for v in check(resources_from_plan(plan), path)]
    return _summary(plan, violations, path)
