"""EKS managed add-ons: each pinned add-on installed, ACTIVE, and at the version pinned for the
control plane's minor (DNS and networking break first when they drift after an upgrade)."""

from __future__ import annotations

from components.config import uses_auto_mode
from components.core.pins import ADDON_VERSIONS, KUBE_PROXY, addon_versions
from components.core.version_skew import node_skew_problem
from programs.platformctl.doctor.framework import Check, Context, Result, fail, ok, skipped, warn

BROKEN_STATUSES = ("CREATE_FAILED", "UPDATE_FAILED", "DEGRADED", "DELETE_FAILED")


def addon_health(ctx: Context) -> Result:
    if uses_auto_mode(ctx.config):
        return skipped("EKS Auto Mode runs the networking, DNS and storage components itself (no managed add-on)")
    eks, name = ctx.aws("eks"), ctx.cluster_name
    cluster_version = eks.describe_cluster(name=name)["cluster"]["version"]
    queried = [f"eks:DescribeCluster {name}", f"eks:ListAddons {name}"]
    installed = set(eks.list_addons(clusterName=name)["addons"])
    if cluster_version not in ADDON_VERSIONS:
        return warn(f"control plane {cluster_version} has no pinned add-on versions in this release", queried)
    pins = addon_versions(cluster_version, dict(ctx.config.cluster.eks.addon_versions))
    broken, drifted = [], []
    for addon, pinned in pins.items():
        if addon not in installed:
            broken.append(f"{addon}: not installed")
            continue
        queried.append(f"eks:DescribeAddon {addon}")
        desc = eks.describe_addon(clusterName=name, addonName=addon)["addon"]
        status, version = desc["status"], desc["addonVersion"]
        if status in BROKEN_STATUSES:
            issues = "; ".join(i.get("message", "") for i in (desc.get("health") or {}).get("issues") or [])
            broken.append(f"{addon} {version}: {status}{': ' + issues if issues else ''}")
        elif addon == KUBE_PROXY and node_skew_problem(cluster_version, version, f"{addon} {version}"):
            # Newer than the control plane, or more than 3 minors behind (a held kube-proxy during
            # `platformctl upgrade` is one minor behind, within the skew policy, and pinned by config).
            broken.append(node_skew_problem(cluster_version, version, f"{addon} {version}"))
        elif version != pinned:
            drifted.append(f"{addon}: {version} installed, {pinned} pinned for {cluster_version} ({status})")
    if broken:
        return fail(f"{len(broken)} add-ons broken or missing on {cluster_version}", queried, broken + drifted)
    if drifted:
        return warn(f"{len(drifted)} add-ons off their pinned version", queried, drifted)
    return ok(f"{len(pins)} add-ons ACTIVE at the versions pinned for {cluster_version}", queried)


CHECKS = [
    Check(
        "eks-addons",
        "DNS or pod networking breaks after an upgrade: add-on version drift or a failed add-on",
        "aws eks list-addons --cluster-name <cluster>; aws eks describe-addon --cluster-name <cluster> "
        "--addon-name <addon> --query 'addon.[addonVersion,status,health]'",
        "pulumi up (pins per minor in components/core/pins.py); for DEGRADED read health.issues; "
        "upgrade add-ons right after the control plane",
        ("eks",),
        addon_health,
    ),
]
