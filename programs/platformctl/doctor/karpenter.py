"""Karpenter: NodePools wide enough to pack, bounded by limits and consolidating (half-empty costly
nodes otherwise), and NodeClaims that launched and registered (capacity errors otherwise)."""

from __future__ import annotations

from programs.platformctl.doctor.framework import Check, Context, Result, age_seconds, fail, ok, skipped, warn

NODEPOOLS = "/apis/karpenter.sh/v1/nodepools"
NODECLAIMS = "/apis/karpenter.sh/v1/nodeclaims"
# A NodeClaim normally launches within a minute and registers within a few; these are far past it.
LAUNCH_GRACE_SECONDS = 600
REGISTER_GRACE_SECONDS = 900
# (karpenter.k8s.aws: self-managed Karpenter's label; eks.amazonaws.com: EKS Auto Mode's)
NARROW_KEYS = (
    "node.kubernetes.io/instance-type",
    "karpenter.k8s.aws/instance-family",
    "eks.amazonaws.com/instance-family",
)


def _narrow(requirements: list[dict]) -> str | None:
    for req in requirements:
        if req.get("key") in NARROW_KEYS and req.get("operator") == "In" and len(req.get("values") or []) == 1:
            return f"{req['key']} In [{req['values'][0]}]"
    return None


def nodepool_shape(ctx: Context) -> Result:
    if not ctx.config.karpenter.enabled:
        return skipped("Karpenter is disabled for this stack (k8s-platform:karpenter.enabled)")
    pools = ctx.kube_items(NODEPOOLS)
    queried = [f"GET {NODEPOOLS}"]
    if pools is None:
        return skipped("the NodePool CRD is not installed (Karpenter not deployed yet)", queried)
    unbounded, loose = [], []
    for pool in pools:
        name, spec = pool["metadata"]["name"], pool.get("spec") or {}
        limits = spec.get("limits") or {}
        if not limits.get("cpu"):
            unbounded.append(f"{name}: no limits.cpu: nothing bounds how much it launches")
        narrow = _narrow(((spec.get("template") or {}).get("spec") or {}).get("requirements") or [])
        if narrow:
            loose.append(f"{name}: one instance shape only ({narrow}); Karpenter cannot pick a better fit")
        disruption = spec.get("disruption") or {}
        if (
            disruption.get("consolidationPolicy") != "WhenEmptyOrUnderutilized"
            or disruption.get("consolidateAfter") == "Never"
        ):
            loose.append(
                f"{name}: consolidationPolicy {disruption.get('consolidationPolicy')}, consolidateAfter "
                f"{disruption.get('consolidateAfter')}: underused nodes are never packed"
            )
    if unbounded:
        return fail(f"{len(unbounded)} NodePools have no CPU limit", queried, unbounded + loose)
    if loose:
        return warn("NodePools too narrow or not consolidating", queried, loose)
    if not pools:
        return warn("no NodePools: pending pods get no capacity", queried)
    return ok(f"{len(pools)} NodePools bounded, several instance shapes, consolidating when underutilized", queried)


def _condition(claim: dict, kind: str) -> str | None:
    for cond in (claim.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond.get("status")
    return None


def nodeclaims_stuck(ctx: Context) -> Result:
    if not ctx.config.karpenter.enabled:
        return skipped("Karpenter is disabled for this stack (k8s-platform:karpenter.enabled)")
    claims = ctx.kube_items(NODECLAIMS)
    queried = [f"GET {NODECLAIMS}"]
    if claims is None:
        return skipped("the NodeClaim CRD is not installed (Karpenter not deployed yet)", queried)
    stuck = []
    for claim in claims:
        age = age_seconds(ctx, claim["metadata"]["creationTimestamp"])
        name = claim["metadata"]["name"]
        if _condition(claim, "Launched") != "True" and age > LAUNCH_GRACE_SECONDS:
            stuck.append(f"{name}: not launched after {int(age)}s")
        elif _condition(claim, "Registered") != "True" and age > REGISTER_GRACE_SECONDS:
            stuck.append(f"{name}: launched, not registered after {int(age)}s")
    if stuck:
        return fail(f"{len(stuck)} NodeClaims stuck", queried, stuck)
    return ok(f"{len(claims)} NodeClaims, none stuck", queried)


CHECKS = [
    Check(
        "karpenter-nodepools",
        "nodes huge and half-empty, or costly: NodePool too narrow, unbounded or not consolidating",
        "kubectl get nodepools -o yaml; kubectl get nodeclaims -o wide",
        "widen requirements (categories c/m/r, several sizes, spot and on-demand); set limits.cpu; "
        "consolidationPolicy: WhenEmptyOrUnderutilized (k8s-platform:karpenter.nodePools)",
        ("eks", "k3s"),
        nodepool_shape,
    ),
    Check(
        "karpenter-nodeclaims",
        "pods Pending while Karpenter 'launches': NodeClaims never launch or register",
        "kubectl get nodeclaims; kubectl describe nodeclaim <name>  # Launched/Registered conditions",
        "read the NodeClaim's condition message (capacity, AMI, subnet or IAM); kubectl -n kube-system logs "
        "deploy/karpenter; fix the EC2NodeClass or widen the pool",
        ("eks", "k3s"),
        nodeclaims_stuck,
    ),
]
