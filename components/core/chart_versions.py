"""Every Helm chart the platform installs, pinned in one place.

Bump a version here (and run the tests and an offline preview); nothing else names a chart
version or repository. Entries are added by the component that installs the chart.
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

# registry.k8s.io/provider-aws/cloud-controller-manager tag per Kubernetes minor (K3s clusters).
CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS: dict[str, str] = {"1.35": "v1.35.0"}

# Karpenter (components/karpenter/controller.py): the official OCI chart. 1.14.1 (2026-08) is the newest v1
# release (tag v1.14.1, 2026-08-20); the tests validate NodePools/EC2NodeClasses against its published CRDs
# in ../shared/reference/karpenter-crds (bump together).
# The CRDs ship as their own chart (same version): Helm never upgrades a chart's crds/ directory, so
# with the controller chart alone a version bump would leave v1 CRDs of the first install in place.
KARPENTER_VERSION = "1.14.1"
CHARTS["karpenter"] = ChartRef("oci://public.ecr.aws/karpenter/karpenter", KARPENTER_VERSION)
CHARTS["karpenter-crd"] = ChartRef("oci://public.ecr.aws/karpenter/karpenter-crd", KARPENTER_VERSION)
