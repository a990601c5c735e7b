"""Applies the CrossGuard pack to an offline plan. Until the pack exists this records no violations."""

from __future__ import annotations

from typing import Any


def apply_policies(plan: dict[str, Any], run: Any, stack: str) -> dict[str, Any]:
    return plan
