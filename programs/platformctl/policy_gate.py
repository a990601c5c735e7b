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
