"""Every EKS managed add-on version the platform installs, pinned in ONE table (pure, no Pulumi).

Why pins and not "latest": an add-on version that changes under an unchanged program is an
unreviewed change to every node's networking or DNS. Why per Kubernetes minor: kube-proxy must
match the control plane's minor; the others are pinned to a build EKS lists as compatible with
each minor (`aws eks describe-addon-versions --kubernetes-version <minor> --addon-name <name>`).

To bump: run that command for each add-on and the cluster's minor, change the row here, run the
tests and an offline preview. `cluster.eks.version` accepts exactly the minors listed here, so an
upgrade of the control plane is always reviewed together with its add-ons.
`cluster.eks.addonVersions` can override a single add-on for one stack (e.g. a hotfix build).
"""

from __future__ import annotations

# Add-on names as EKS knows them, in the order they are installed (see eks_addons.py).
VPC_CNI = "vpc-cni"
POD_IDENTITY_AGENT = "eks-pod-identity-agent"
COREDNS = "coredns"
KUBE_PROXY = "kube-proxy"
EBS_CSI = "aws-ebs-csi-driver"

ADDON_NAMES = (VPC_CNI, POD_IDENTITY_AGENT, COREDNS, KUBE_PROXY, EBS_CSI)

# Kubernetes minor -> add-on -> exact add-on version (the one documented place). Evidence for each
# row is in UNCONFIRMED_PINS below: the 1.35 vpc-cni, coredns and kube-proxy builds are the EKS 1.35
# default add-on builds of a public listing (Oct 2026); every other pin could not be confirmed
# against `describe-addon-versions` offline and must be checked before it reaches production.
ADDON_VERSIONS: dict[str, dict[str, str]] = {
    "1.36": {
        VPC_CNI: "v1.22.4-eksbuild.3",
        POD_IDENTITY_AGENT: "v1.3.10-eksbuild.3",
        COREDNS: "v1.13.2-eksbuild.31",
        KUBE_PROXY: "v1.36.0-eksbuild.1",
        EBS_CSI: "v1.55.0-eksbuild.2",
    },
    "1.35": {
        VPC_CNI: "v1.22.4-eksbuild.3",
        POD_IDENTITY_AGENT: "v1.3.10-eksbuild.3",
        COREDNS: "v1.13.2-eksbuild.31",
        KUBE_PROXY: "v1.35.3-eksbuild.29",
        EBS_CSI: "v1.55.0-eksbuild.2",
    },
    "1.34": {
        VPC_CNI: "v1.21.1-eksbuild.3",
        POD_IDENTITY_AGENT: "v1.3.10-eksbuild.3",
        COREDNS: "v1.12.4-eksbuild.29",
        KUBE_PROXY: "v1.34.3-eksbuild.2",
        EBS_CSI: "v1.55.0-eksbuild.2",
    },
    "1.33": {
        VPC_CNI: "v1.21.1-eksbuild.3",
        POD_IDENTITY_AGENT: "v1.3.10-eksbuild.3",
        COREDNS: "v1.12.4-eksbuild.29",
        KUBE_PROXY: "v1.33.10-eksbuild.21",
        EBS_CSI: "v1.55.0-eksbuild.2",
    },
}

# Pins no offline evidence backs (README "Pins not confirmed offline"). 1.36: no listing of 1.36
# builds was available; its vpc-cni/coredns are the 1.35 defaults (vpc-cni builds span minors) and
# kube-proxy is the first build name EKS uses for a minor. EBS CSI: the driver is at 1.64 upstream,
# but no eksbuild of it could be confirmed, so the last known build stays.
UNCONFIRMED_PINS: dict[str, tuple[str, ...]] = {
    "1.36": ADDON_NAMES,
    "1.35": (POD_IDENTITY_AGENT, EBS_CSI),
    "1.34": ADDON_NAMES,
    "1.33": ADDON_NAMES,
}

# The default for new stacks: the newest minor whose pins are backed by evidence (1.36's are not).
DEFAULT_KUBERNETES_VERSION = "1.35"

SUPPORTED_KUBERNETES_VERSIONS = tuple(sorted(ADDON_VERSIONS, key=lambda v: tuple(int(p) for p in v.split("."))))


def addon_versions(kubernetes_version: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The pinned version of every add-on for a control-plane minor, with per-stack overrides applied."""
    try:
        pinned = ADDON_VERSIONS[kubernetes_version]
    except KeyError:
        raise ValueError(
            f"no add-on pins for Kubernetes {kubernetes_version}; pinned minors: "
            f"{', '.join(SUPPORTED_KUBERNETES_VERSIONS)}"
        ) from None
    return {**pinned, **(overrides or {})}
