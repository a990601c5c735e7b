"""Every version pin of the platform, in one module: Helm charts and images, EKS add-on builds per
Kubernetes minor, the K3s release and the pod-identity webhook image.

Charts and images: Every Helm chart the platform installs, pinned in one place.

Bump a version here (and run the tests and an offline preview); nothing else names a chart
version or repository. Entries are added by the component that installs the chart.

EKS add-ons: Every EKS managed add-on version the platform installs, pinned in ONE table (pure, no Pulumi).

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

from dataclasses import dataclass


@dataclass(frozen=True)
class ChartRef:
    chart: str  # chart name, or a full oci:// reference
    version: str  # an exact version: never a range, never empty
    repo: str | None = None  # https chart repository; None for oci:// charts

    @property
    def is_oci(self) -> bool:
        return self.chart.startswith("oci://")


CHARTS: dict[str, ChartRef] = {}

# Cluster add-ons (components/addons/cluster_addons.py). Every version is one the chart repository's published
# index lists (checked by tests/test_upstream_contracts_charts.py against
# ../shared/reference/upstream/chart-versions-published.txt, and the values we set against that
# version's values.yaml):
# - aws-load-balancer-controller 3.4.2 (controller v3.4.2; chart = app version since 3.0.0). 3.4.3 and
#   3.5.0 are published too, but only 3.4.2's values.yaml is at hand to check our values against (its
#   IAM policy is unchanged through 3.5.0; its CRDs are byte-identical): bump once that is checked.
# - metrics-server 3.13.1 (app 0.8.1): the newest published (there is no 3.14.0).
# - aws-ebs-csi-driver 2.64.0 (driver v1.64.0): the newest published (there is no 2.65.0).
# - aws-cloud-controller-manager 0.0.11 (app v1.35.0), the newest; the image is still pinned per
#   Kubernetes minor below: the cloud controller must match the cluster's minor.
CHARTS.update(
    {
        "aws-load-balancer-controller": ChartRef(
            "aws-load-balancer-controller", "3.4.2", "https://aws.github.io/eks-charts"
        ),
        "metrics-server": ChartRef("metrics-server", "3.13.1", "https://kubernetes-sigs.github.io/metrics-server/"),
        "aws-ebs-csi-driver": ChartRef(
            "aws-ebs-csi-driver", "2.64.0", "https://kubernetes-sigs.github.io/aws-ebs-csi-driver"
        ),
        "aws-cloud-controller-manager": ChartRef(
            "aws-cloud-controller-manager", "0.0.11", "https://kubernetes.github.io/cloud-provider-aws"
        ),
    }
)

# EFS CSI driver on K3s (components/addons/efs.py; EKS uses the managed add-on below): 4.4.1 (driver
# v3.4.1), the newest published; its values.yaml is in the reference (tests/test_efs.py checks our keys).
CHARTS["aws-efs-csi-driver"] = ChartRef(
    "aws-efs-csi-driver", "4.4.1", "https://kubernetes-sigs.github.io/aws-efs-csi-driver"
)

# registry.k8s.io/provider-aws/cloud-controller-manager tag per Kubernetes minor (K3s clusters).
# 1.36: no chart ships a 1.36 app version yet (newest 0.0.11 = v1.35.0), so the image is set over
# chart 0.0.11. v1.36.1 is the only 1.36 image: v1.36.0's build failed and was never staged
# (kubernetes/cloud-provider-aws#1450); v1.36.1 was promoted by kubernetes/k8s.io#9796 (merged
# 2026-07-30). Not resolvable offline: listed in CLOUD_CONTROLLER_MANAGER_UNCONFIRMED_TAGS.
CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS: dict[str, str] = {"1.35": "v1.35.0", "1.36": "v1.36.1"}
# Image tags no published chart index lists as an app version (README "Pins not confirmed offline").
CLOUD_CONTROLLER_MANAGER_UNCONFIRMED_TAGS: frozenset[str] = frozenset({"v1.36.1"})

# Karpenter (components/karpenter/controller.py): the official OCI chart. 1.14.1 (2026-08) is the newest v1
# release (tag v1.14.1, 2026-08-20); the tests validate NodePools/EC2NodeClasses against its published CRDs
# in ../shared/reference/karpenter-crds (bump together).
# The CRDs ship as their own chart (same version): Helm never upgrades a chart's crds/ directory, so
# with the controller chart alone a version bump would leave v1 CRDs of the first install in place.
KARPENTER_VERSION = "1.14.1"
CHARTS["karpenter"] = ChartRef("oci://public.ecr.aws/karpenter/karpenter", KARPENTER_VERSION)
CHARTS["karpenter-crd"] = ChartRef("oci://public.ecr.aws/karpenter/karpenter-crd", KARPENTER_VERSION)


# ------------------------------------------------------------------------------- EKS add-ons
# Add-on names as EKS knows them, in the order they are installed (see eks_addons.py).
VPC_CNI = "vpc-cni"
POD_IDENTITY_AGENT = "eks-pod-identity-agent"
COREDNS = "coredns"
KUBE_PROXY = "kube-proxy"
EBS_CSI = "aws-ebs-csi-driver"
# Reports node health conditions (kernel, networking, storage, accelerators) that managed node groups'
# auto repair acts on.
NODE_MONITORING_AGENT = "eks-node-monitoring-agent"

EFS_CSI = "aws-efs-csi-driver"

ADDON_NAMES = (VPC_CNI, POD_IDENTITY_AGENT, COREDNS, KUBE_PROXY, EBS_CSI, NODE_MONITORING_AGENT, EFS_CSI)
# Installed only when their config section enables them (`addons.efsCsi`: off by default).
OPTIONAL_ADDON_NAMES = (EFS_CSI,)

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
        NODE_MONITORING_AGENT: "v1.7.0-eksbuild.1",
        EFS_CSI: "v3.4.1-eksbuild.1",
    },
    "1.35": {
        VPC_CNI: "v1.22.4-eksbuild.3",
        POD_IDENTITY_AGENT: "v1.3.10-eksbuild.3",
        COREDNS: "v1.13.2-eksbuild.31",
        KUBE_PROXY: "v1.35.3-eksbuild.29",
        EBS_CSI: "v1.55.0-eksbuild.2",
        NODE_MONITORING_AGENT: "v1.7.0-eksbuild.1",
        EFS_CSI: "v3.4.1-eksbuild.1",
    },
    "1.34": {
        VPC_CNI: "v1.21.1-eksbuild.3",
        POD_IDENTITY_AGENT: "v1.3.10-eksbuild.3",
        COREDNS: "v1.12.4-eksbuild.29",
        KUBE_PROXY: "v1.34.3-eksbuild.2",
        EBS_CSI: "v1.55.0-eksbuild.2",
        NODE_MONITORING_AGENT: "v1.7.0-eksbuild.1",
        EFS_CSI: "v3.4.1-eksbuild.1",
    },
    "1.33": {
        VPC_CNI: "v1.21.1-eksbuild.3",
        POD_IDENTITY_AGENT: "v1.3.10-eksbuild.3",
        COREDNS: "v1.12.4-eksbuild.29",
        KUBE_PROXY: "v1.33.10-eksbuild.21",
        EBS_CSI: "v1.55.0-eksbuild.2",
        NODE_MONITORING_AGENT: "v1.7.0-eksbuild.1",
        EFS_CSI: "v3.4.1-eksbuild.1",
    },
}

# Pins no offline evidence backs (README "Pins not confirmed offline"). 1.36: no listing of 1.36
# builds was available; its vpc-cni/coredns are the 1.35 defaults (vpc-cni builds span minors) and
# kube-proxy is the first build name EKS uses for a minor. EBS CSI: the driver is at 1.64 upstream,
# but no eksbuild of it could be confirmed, so the last known build stays. Node monitoring agent:
# v1.7.0-eksbuild.1 is the agent image build the upstream chart (aws/eks-node-monitoring-agent
# values.yaml) ships; no `describe-addon-versions` listing per minor was at hand. EFS CSI: the build name of
# the driver release the pinned chart ships (v3.4.1); no listing of its eksbuilds was available.
UNCONFIRMED_PINS: dict[str, tuple[str, ...]] = {
    "1.36": ADDON_NAMES,
    "1.35": (POD_IDENTITY_AGENT, EBS_CSI, NODE_MONITORING_AGENT, EFS_CSI),
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


# ------------------------------------------------------------------------------------------ K3s
# The stable channel is on 1.36 (../shared/reference/upstream/k3s-releases.txt: k3s-io/k3s#14492
# "Update stable channel to v1.36.3+k3s1", 2026-08-04), and v1.36.4+k3s1 is the newest patch of that
# minor (k3s-io/k3s#14545 "[release-1.36] Update to v1.36.4-k3s1 and Go 1.26.7", the same Go security
# rebuild as the previous pin v1.35.8+k3s1 (#14544); k3s-ansible moved to it on 2026-09-02). The channel
# follows each minor's newest patch; v1.36.3 would go back to an older Go than the 1.35 pin. 1.37 is out
# (2026-09-14) but no channel names it yet and no AWS cloud controller build for 1.37 is known.
# K3s's CLI reference at hand is v1.35's: the flag contract tests check 1.36 against it (K3s's flag
# deprecation policy keeps a flag documented in 1.35 operational in 1.36; the 1.36 notes remove none).
K3S_VERSION = "v1.36.4+k3s1"

# ------------------------------------------------------------------------- pod-identity webhook
# amazon-eks-pod-identity-webhook v0.6.17 (its flags and deploy files are in ../shared/reference).
# The digest is the v0.6.17 multi-arch index as resolved with `docker buildx imagetools inspect
# public.ecr.aws/eks/amazon-eks-pod-identity-webhook:v0.6.17` by a public project; it cannot be
# re-resolved offline: confirm it before a rollout (README "Pins not confirmed offline").
POD_IDENTITY_WEBHOOK_IMAGE_TAG = "v0.6.17"
POD_IDENTITY_WEBHOOK_IMAGE_DIGEST = "sha256:3071570e8e8cba6d5aff01e86d52bc91025a0578782aa9cd2b681480845b0a50"

# -------------------------------------------------------------------- K3s external datastore
# PostgreSQL for K3s's `datastore-endpoint` (kine), components/k3s/datastore.py. RDS PostgreSQL takes a
# major version with auto minor upgrades on (the provider keeps a prefix that the running version
# extends): RDS applies minor releases in the maintenance window. Aurora PostgreSQL is pinned to an
# exact release (17.5: released 2025 and Serverless-v2-capable) with auto minor upgrades off, so the
# plan never fights an upgrade RDS made: bump it here to take a minor. Neither could be checked
# against `describe-db-engine-versions` offline (README "Pins not confirmed offline").
RDS_POSTGRES_VERSION = "17"
AURORA_POSTGRES_VERSION = "17.5"
