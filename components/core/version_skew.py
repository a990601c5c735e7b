"""Kubernetes minor versions: one-minor control-plane upgrades and the node/control-plane skew (pure, no Pulumi).

Facts this module encodes:
- EKS upgrades a control plane one minor at a time: `UpdateClusterVersion` to anything but the next
  minor fails with `InvalidParameterException`, and a control plane is never downgraded.
- Kubernetes version-skew policy (since 1.28): a kubelet may be up to three minors older than
  kube-apiserver and never newer; kube-proxy likewise (never newer than kube-apiserver, up to three
  minors older).
"""

from __future__ import annotations

import re

# Since Kubernetes 1.28 (KEP-3935): kubelet and kube-proxy may be up to 3 minors older than kube-apiserver.
MAX_NODE_MINORS_BEHIND = 3

_MINOR = re.compile(r"^v?(\d+)\.(\d+)(?:[.+-].*)?$")


def minor_of(version: str) -> tuple[int, int] | None:
    """(major, minor) of "1.35", "v1.35.3-eksbuild.29", "v1.35.8+k3s1"; None when not a version."""
    m = _MINOR.match(version.strip()) if isinstance(version, str) else None
    return (int(m.group(1)), int(m.group(2))) if m else None


def minor_str(version: str) -> str:
    parsed = minor_of(version)
    if parsed is None:
        raise ValueError(f"'{version}' is not a Kubernetes version")
    return f"{parsed[0]}.{parsed[1]}"


def minors_between(current: str, target: str) -> list[str]:
    """The minors a control plane passes through from `current` to `target`, one at a time (target last)."""
    (cmaj, cmin), (tmaj, tmin) = minor_of(current), minor_of(target)  # type: ignore[misc]
    if cmaj != tmaj:
        raise ValueError(f"{current} -> {target}: not the same major version")
    return [f"{cmaj}.{m}" for m in range(cmin + 1, tmin + 1)]


def upgrade_problem(deployed: str, target: str) -> str | None:
    """Why the control plane cannot go from `deployed` to `target` in one update, or None (same or next minor)."""
    d, t = minor_of(deployed), minor_of(target)
    if d is None or t is None:
        return f"cannot compare the versions '{deployed}' and '{target}'"
    if t < d:
        return (
            f"{minor_str(deployed)} -> {minor_str(target)} is a downgrade: EKS never downgrades a control plane; "
            f"keep {minor_str(deployed)} (the deployed minor) or upgrade"
        )
    if t[0] != d[0] or t[1] - d[1] > 1:
        path = " -> ".join([minor_str(deployed), *minors_between(deployed, target)])
        skipped = ", ".join(minors_between(deployed, target)[:-1])
        return (
            f"{minor_str(deployed)} -> {minor_str(target)} skips {skipped}: EKS upgrades the control plane one minor "
            f"at a time (UpdateClusterVersion rejects the jump mid-update); upgrade along {path}, one "
            f"`platformctl upgrade --to <next>` per step, starting with {minors_between(deployed, target)[0]}"
        )
    return None


def node_skew_problem(control_plane: str, node: str, what: str = "nodes") -> str | None:
    """Why `what` at `node` cannot run against a control plane at `control_plane` (skew policy), or None."""
    c, n = minor_of(control_plane), minor_of(node)
    if c is None or n is None:
        return f"cannot compare the versions '{control_plane}' and '{node}'"
    if n[0] != c[0] or n > c:
        return (
            f"{what} at {minor_str(node)} would be newer than the control plane at {minor_str(control_plane)}; "
            "the Kubernetes version-skew policy never allows a kubelet or kube-proxy newer than kube-apiserver"
        )
    if c[1] - n[1] > MAX_NODE_MINORS_BEHIND:
        oldest = f"{c[0]}.{c[1] - MAX_NODE_MINORS_BEHIND}"
        return (
            f"{what} at {minor_str(node)} would be {c[1] - n[1]} minors behind the control plane at "
            f"{minor_str(control_plane)}; the Kubernetes version-skew policy allows at most "
            f"{MAX_NODE_MINORS_BEHIND} (nodes at {oldest} or newer): upgrade the nodes first"
        )
    return None
