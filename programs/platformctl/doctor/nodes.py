"""Node clocks: a node whose clock is 5 minutes off fails every SigV4 request and every token
validation (the benchmark's clock-skew scenario). The kubelet stamps its node Lease with its own
clock every 10 s, so renewTime against now (for a node the control plane still sees Ready) shows it."""

from __future__ import annotations

from datetime import datetime

from programs.platformctl.doctor.framework import Check, Context, Result, fail, ok, skipped, warn

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
RENEW_INTERVAL_SECONDS = 10  # the kubelet renews at a quarter of its 40 s lease
SKEW_FAIL_SECONDS = 300  # STS and SigV4 reject requests signed more than 5 minutes off
SKEW_WARN_SECONDS = 30


def _ready(node: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def clock_skew(ctx: Context) -> Result:
    queried = [f"GET {LEASES}", "GET /api/v1/nodes"]
    leases = ctx.kube_items(LEASES) or []
    ready = {n["metadata"]["name"] for n in ctx.kube_items("/api/v1/nodes") or [] if _ready(n)}
    now = ctx.now()
    skews: list[tuple[float, str]] = []
    for lease in leases:
        name, renew = lease["metadata"]["name"], (lease.get("spec") or {}).get("renewTime")
        if name not in ready or not renew:
            continue
        offset = datetime.fromisoformat(renew.replace("Z", "+00:00")).timestamp() - now
        # Within one renew interval behind is a healthy clock; beyond it, the node's clock is off.
        skew = offset if offset > 0 else min(offset + RENEW_INTERVAL_SECONDS, 0)
        skews.append((skew, name))
    if not skews:
        return skipped("no Ready node with a Lease to compare", queried)
    bad = [
        f"{n}: clock {'ahead' if s > 0 else 'behind'} by about {abs(s):.0f} s"
        for s, n in skews
        if abs(s) >= SKEW_FAIL_SECONDS
    ]
    off = [
        f"{n}: clock {'ahead' if s > 0 else 'behind'} by about {abs(s):.0f} s"
        for s, n in skews
        if SKEW_WARN_SECONDS <= abs(s) < SKEW_FAIL_SECONDS
    ]
    if bad:
        return fail(
            f"{len(bad)} nodes are more than {SKEW_FAIL_SECONDS // 60} minutes off: AWS calls from them fail",
            queried,
            bad + off,
        )
    if off:
        return warn(f"{len(off)} nodes drift", queried, off)
    worst = max(abs(s) for s, _ in skews)
    return ok(f"{len(skews)} nodes within {max(worst, 1):.0f} s of this machine's clock", queried)


CHECKS = [
    Check(
        "node-clock-skew",
        "SignatureDoesNotMatch / RequestExpired / 'Token used before issued' from one node's pods",
        "kubectl -n kube-node-lease get lease -o custom-columns=NODE:.metadata.name,RENEW:.spec.renewTime; "
        "on the node: chronyc tracking",
        "enable chrony against the Amazon Time Sync Service (169.254.169.123); replace the node if it persists",
        ("eks", "k3s"),
        clock_skew,
    ),
]
