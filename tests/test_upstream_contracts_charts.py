"""Upstream contracts of the Helm releases: pins that exist, values keys the chart reads.

Oracles (../shared/reference/upstream, see tests/upstream_reference.py):
- chart-versions-published.txt: each chart repository's published index (gh-pages index.yaml);
  Karpenter's OCI charts have no index: their pin must be the newest release tag named there;
- values-<chart>-<version>.yaml: each pinned chart version's values.yaml.

Helm accepts any values key silently, so a misspelt or removed key is a setting that never arrives.
Every key path of every release's `values` in both shipped plans must exist in that chart version's
values.yaml, descending while values.yaml declares a non-empty map (an empty map such as
`nodeSelector: {}` or `annotations: {}` is free-form; lists are not descended into).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from components.core.pins import (
    CHARTS,
    CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS,
    CLOUD_CONTROLLER_MANAGER_UNCONFIRMED_TAGS,
    ChartRef,
)
from programs.offline import reveal
from tests import fast_yaml
from tests.upstream_reference import upstream_file

# Keys the chart's templates read although its values.yaml does not declare them (checked in the
# chart's templates at the pinned version). Keep this list short; every entry says where it is read.
TEMPLATE_ONLY_KEYS: dict[str, set[str]] = {
    # templates/daemonset.yaml: `{{- if .Values.hostNetworking }} hostNetwork: true` (kubernetes/
    # cloud-provider-aws charts/aws-cloud-controller-manager); values.yaml has no default (= false).
    "aws-cloud-controller-manager": {"hostNetworking"},
}

# Maps whose keys are data, not chart settings (label/annotation/tag maps, resource quantities):
# values.yaml may ship an example entry (karpenter's `nodeSelector: {kubernetes.io/os: linux}`).
FREE_FORM_MAPS = {
    "nodeSelector",
    "annotations",
    "labels",
    "podAnnotations",
    "podLabels",
    "defaultTags",
    "extraVolumeTags",
    "requests",
    "limits",
}

# Which values.yaml of karpenter 1.14.1 is the oracle: the release tag's (its chart dir still carries
# 1.13.0 version strings, the keys are 1.14.1's). main@1d92708 adds settings.awsFeatureGates only.
VALUES_FILES = {"karpenter": "values-karpenter-1.14.1.yaml"}


def chart_name(ref: ChartRef) -> str:
    return ref.chart.rsplit("/", 1)[-1]


def published_index() -> dict[str, dict[str, Any]]:
    """chart -> {"repo": url, "versions": {version: app version}} (or {"oci_tag": tag} for Karpenter)."""
    charts: dict[str, dict[str, Any]] = {}
    current = None
    for line in upstream_file("chart-versions-published.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith(" "):
            charts[current]["versions"] = dict(re.findall(r"(\S+)\(app (\S+)\)", line))
            continue
        name, url = line.split()[:2]
        if url.startswith("https://"):
            current = name
            charts[name] = {"repo": url, "versions": {}}
        else:  # "karpenter / karpenter-crd  oci://... Newest release tag ...: v1.14.1 @ ..."
            tag = re.search(r"Newest release tag[^:]*: v(\S+)", line).group(1)
            for chart in ("karpenter", "karpenter-crd"):
                charts[chart] = {"oci": re.search(r"oci://\S+", line).group(0), "oci_tag": tag}
    return charts


def unknown_value_paths(values: Any, chart_values: Any, path: str = "") -> Iterator[str]:
    """Key paths of `values` that the chart's values.yaml does not declare."""
    if not isinstance(values, dict) or not isinstance(chart_values, dict) or not chart_values:
        return
    for key, value in values.items():
        here = f"{path}.{key}" if path else key
        if key not in chart_values:
            yield here
        elif key not in FREE_FORM_MAPS:
            yield from unknown_value_paths(value, chart_values[key], here)


def chart_values(chart: str, version: str) -> dict[str, Any]:
    name = VALUES_FILES.get(chart, f"values-{chart}-{version}.yaml")
    path = upstream_file(".") / name  # skips only when the whole reference is absent
    if not path.is_file():
        pytest.fail(
            f"{chart} {version}: no values.yaml of this version in the reference ({name}); "
            "pin a version whose values.yaml is there, or add it to ../shared/reference"
        )
    return fast_yaml.load(path.read_text())


def releases(run) -> list[tuple[str, str, str, dict[str, Any]]]:
    found = []
    for r in run.of_type("kubernetes:helm.sh/v3:Release"):
        inputs = reveal(r.inputs)
        found.append((r.name, inputs["chart"].rsplit("/", 1)[-1], inputs["version"], inputs.get("values") or {}))
    return found


# ---------------------------------------------------------------------------------- chart pins
@pytest.mark.parametrize("key", sorted(CHARTS))
def test_every_chart_pin_is_a_published_version(key):
    ref, index = CHARTS[key], published_index()
    entry = index[chart_name(ref)]
    if ref.is_oci:
        assert ref.chart.startswith(entry["oci"] + "/")
        assert ref.version == entry["oci_tag"], f"{key}: {ref.version} is not the published release {entry['oci_tag']}"
    else:
        assert ref.repo.rstrip("/") == entry["repo"].rstrip("/"), key
        assert ref.version in entry["versions"], (
            f"{key}: {ref.version} is not in the published index; published: {', '.join(entry['versions'])}"
        )


def test_cloud_controller_image_tags_are_published_app_versions():
    app_versions = set(published_index()["aws-cloud-controller-manager"]["versions"].values())
    # Tags ahead of every chart (K3s 1.36) are listed as unconfirmed, and only those.
    assert set(CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS.values()) - CLOUD_CONTROLLER_MANAGER_UNCONFIRMED_TAGS <= app_versions
    assert not CLOUD_CONTROLLER_MANAGER_UNCONFIRMED_TAGS & app_versions
    assert CLOUD_CONTROLLER_MANAGER_UNCONFIRMED_TAGS <= set(CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS.values())


def test_a_pin_missing_from_the_index_is_caught():
    versions = published_index()["metrics-server"]["versions"]
    assert "3.13.1" in versions and "3.14.0" not in versions
    assert "2.65.0" not in published_index()["aws-ebs-csi-driver"]["versions"]


# -------------------------------------------------------------------------------- values keys
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_values_key_exists_in_the_pinned_charts_values_yaml(stack, dev_run, prod_run):
    run = {"dev": dev_run, "prod": prod_run}[stack]
    checked = 0
    for name, chart, version, values in releases(run):
        if not values:
            continue
        unknown = set(unknown_value_paths(values, chart_values(chart, version))) - TEMPLATE_ONLY_KEYS.get(chart, set())
        assert sorted(unknown) == [], f"{stack} {name}: {chart} {version} values.yaml has no such keys"
        checked += 1
    assert checked >= (5 if stack == "dev" else 3)


def test_the_values_checker_catches_a_misspelt_key():
    upstream = chart_values("metrics-server", "3.13.1")
    assert list(
        unknown_value_paths({"replicas": 2, "podDisruptionBudget": {"enabled": True, "maxUnavailble": 1}}, upstream)
    ) == ["podDisruptionBudget.maxUnavailble"]
    # Free-form maps accept any key; settings maps do not.
    assert list(unknown_value_paths({"nodeSelector": {"anything": "x"}}, upstream)) == []
    assert list(unknown_value_paths({"apiService": {"insecureSkipTLSVerify": False, "cabundle": "x"}}, upstream)) == [
        "apiService.cabundle"
    ]
