"""`platformctl doctor`: the troubleshooting playbook as checks (one module per check family)."""

from __future__ import annotations

from programs.platformctl.doctor import access, addons, capacity, identity, ingress, k3s, karpenter, nodes
from programs.platformctl.doctor.framework import Check, Context, Result

CHECKS: list[Check] = [
    *access.CHECKS,
    *capacity.CHECKS,
    *identity.CHECKS,
    *karpenter.CHECKS,
    *ingress.CHECKS,
    *addons.CHECKS,
    *k3s.CHECKS,
    *nodes.CHECKS,
]
BY_ID = {c.id: c for c in CHECKS}
assert len(BY_ID) == len(CHECKS), "check ids must be unique"

__all__ = ["BY_ID", "CHECKS", "Check", "Context", "Result"]
