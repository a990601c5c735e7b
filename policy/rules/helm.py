"""Helm releases and namespaced Kubernetes objects: pinned chart versions from trusted sources,
and nothing in the `default` namespace."""

from __future__ import annotations

import re

from pulumi_policy import Severity

from .common import cis_eks, eks_best_practices, get, resource_rule

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
NAMESPACED_KINDS = [
    HELM_RELEASE,
    "kubernetes:core/v1:ServiceAccount",
    "kubernetes:core/v1:Secret",
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:core/v1:Service",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:policy/v1:PodDisruptionBudget",
    "kubernetes:rbac.authorization.k8s.io/v1:Role",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
]


def _version_pinned(props, cfg, report, args) -> None:
    version = get(props, "version")
    if not version:
        report(f"chart '{get(props, 'chart')}' has no version: Helm installs whatever is newest")
    elif not EXACT_VERSION.match(str(version)):
        report(f"chart version '{version}' is not an exact version (ranges and tags move)")


def _chart_source(props, cfg, report, args) -> None:
    chart = str(get(props, "chart", default=""))
    repo = get(props, "repositoryOpts", "repo")
    if chart.startswith("oci://"):
        source = chart
    elif repo:
        source = str(repo)
    else:
        report(f"chart '{chart}' names no repository (repositoryOpts.repo) and is not an oci:// reference")
        return
    if not (source.startswith("https://") or source.startswith("oci://")):
        report(f"chart source {source} is neither https:// nor oci://")
    elif cfg["allowedSources"] and not any(source.startswith(p) for p in cfg["allowedSources"]):
        report(f"chart source {source} is not in the allowed sources {cfg['allowedSources']}")


def _not_default_namespace(props, cfg, report, args) -> None:
    if args.resource_type == HELM_RELEASE:
        namespace = get(props, "namespace")
    else:
        namespace = get(props, "metadata", "namespace")
    if namespace in (None, "", "default"):
        report(f"placed in the 'default' namespace ({'unset' if not namespace else namespace}); give it its own")


RULES = [
    resource_rule(
        "helm-chart-version-pinned",
        "Helm releases pin an exact chart version.",
        Severity.MEDIUM,
        [eks_best_practices("cluster-upgrades#add-ons")],
        [HELM_RELEASE],
        _version_pinned,
    ),
    resource_rule(
        "helm-chart-source-trusted",
        "Helm charts come from an https or oci registry (optionally an allowlist).",
        Severity.MEDIUM,
        [eks_best_practices("security/image-security")],
        [HELM_RELEASE],
        _chart_source,
        {
            "allowedSources": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "URL prefixes of allowed chart sources; empty allows any https/oci",
            }
        },
    ),
    resource_rule(
        "k8s-no-default-namespace",
        "Workloads and releases do not use the default namespace.",
        Severity.LOW,
        [cis_eks("4.6.3")],
        NAMESPACED_KINDS,
        _not_default_namespace,
    ),
]
