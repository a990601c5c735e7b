"""`platformctl pins check`: every pin of components/core/pins.py against what upstream publishes.

Sources (each behind `Sources`, so `--from DIR` replays recorded responses and the tests need no network):
- Helm charts on https repositories: the repository's `index.yaml`.
- OCI charts and images (Karpenter, the AWS cloud controller, the pod-identity webhook): the registry's
  tag list (OCI distribution `GET /v2/<name>/tags/list`, with the registry's anonymous token).
- EKS managed add-ons: `eks:DescribeAddonVersions` per add-on (boto3), whose `compatibilities` say
  which cluster minors a build runs on.
- K3s: the release channel server (`/v1-release/channels`: the newest release per minor) and the
  release tags.
- Each repository stack's pinned Karpenter AMI alias (prod: `al2023@v20260903`): the public SSM
  parameter Karpenter resolves it to, for the stack's minor and each architecture its pools allow.

Findings per pin: `ok`, `outdated` (a newer compatible version is published; the newest is named),
`missing` (the pinned version is not published), `incompatible` (an add-on build not listed for the
minor it is pinned for), `unchecked` (no data from that source). `missing` and `incompatible` fail
the check (exit 1); `outdated` is reported only (a pin is a reviewed choice, not "latest").
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml

from components.core import pins
from components.core.version_skew import minor_str
from programs.platformctl import exit_codes

Status = Literal["ok", "outdated", "missing", "incompatible", "unchecked"]
FAILING: frozenset[str] = frozenset({"missing", "incompatible"})

K3S_CHANNELS_URL = "https://update.k3s.io/v1-release/channels"
K3S_RELEASES_URL = "https://api.github.com/repos/k3s-io/k3s/releases?per_page=100"
CCM_IMAGE = "registry.k8s.io/provider-aws/cloud-controller-manager"
WEBHOOK_IMAGE = "public.ecr.aws/eks/amazon-eks-pod-identity-webhook"


@dataclass(frozen=True)
class Finding:
    kind: str  # chart | image | eks-addon | k3s
    name: str  # what is pinned, e.g. "aws-load-balancer-controller", "kube-proxy@1.36"
    pinned: str
    status: Status
    newest: str | None = None
    detail: str = ""

    def line(self) -> str:
        newest = f" (newest: {self.newest})" if self.newest and self.newest != self.pinned else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.status:<12} {self.kind:<9} {self.name} {self.pinned}{newest}{detail}"


@dataclass(frozen=True)
class PinsReport:
    findings: tuple[Finding, ...]

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if f.status in FAILING]

    @property
    def exit_code(self) -> int:
        return exit_codes.POLICY_VIOLATION if self.failed else exit_codes.OK


class Sources(Protocol):
    def chart_versions(self, repo: str, chart: str) -> list[str] | None: ...
    def oci_tags(self, reference: str) -> list[str] | None: ...
    def addon_versions(self, addon: str) -> dict[str, Any] | None: ...
    def k3s_channels(self) -> dict[str, Any] | None: ...
    def k3s_releases(self) -> list[str] | None: ...
    def ssm_parameter(self, region: str, name: str) -> bool | None: ...


# ------------------------------------------------------------------------------ versions
def version_key(version: str) -> tuple:
    """Orders 1.2.3, v1.22.4-eksbuild.3, v1.35.8+k3s1 numerically (pre-releases like -rc.1 first)."""
    numbers = [int(n) for n in re.findall(r"\d+", version)]
    prerelease = bool(re.search(r"-(alpha|beta|rc)", version))
    return (*numbers[:3], 0 if prerelease else 1, *numbers[3:])


def _newest(versions: Iterable[str]) -> str | None:
    stable = [v for v in versions if not re.search(r"-(alpha|beta|rc)", v)]
    return max(stable or list(versions), key=version_key, default=None)


def _against(kind: str, name: str, pinned: str, published: list[str] | None, source: str) -> Finding:
    if published is None:
        return Finding(kind, name, pinned, "unchecked", detail=f"no data from {source}")
    newest = _newest(published)
    if pinned not in published:
        return Finding(kind, name, pinned, "missing", newest, f"not published at {source}")
    if newest and version_key(newest) > version_key(pinned):
        return Finding(kind, name, pinned, "outdated", newest)
    return Finding(kind, name, pinned, "ok", newest)


# ------------------------------------------------------------------------------ checks
def check_charts(src: Sources, charts: dict[str, pins.ChartRef] | None = None) -> list[Finding]:
    out = []
    for name, ref in (charts if charts is not None else pins.CHARTS).items():
        if ref.is_oci:
            reference = ref.chart.removeprefix("oci://")
            out.append(_against("chart", name, ref.version, src.oci_tags(reference), reference))
        else:
            out.append(
                _against("chart", name, ref.version, src.chart_versions(ref.repo or "", ref.chart), f"{ref.repo}")
            )
    return out


def check_images(src: Sources) -> list[Finding]:
    out = []
    tags = src.oci_tags(CCM_IMAGE)
    for minor, tag in sorted(pins.CLOUD_CONTROLLER_MANAGER_IMAGE_TAGS.items()):
        same_minor = None if tags is None else [t for t in tags if _minor_or_none(t) == minor]
        finding = _against("image", f"cloud-controller-manager@{minor}", tag, same_minor, CCM_IMAGE)
        if finding.status == "missing" and tags is not None and tag in tags:
            finding = Finding("image", finding.name, tag, "ok")
        out.append(finding)
    out.append(
        _against(
            "image",
            "amazon-eks-pod-identity-webhook",
            pins.POD_IDENTITY_WEBHOOK_IMAGE_TAG,
            src.oci_tags(WEBHOOK_IMAGE),
            WEBHOOK_IMAGE,
        )
    )
    return out


def _minor_or_none(version: str) -> str | None:
    try:
        return minor_str(version)
    except ValueError:
        return None


def check_addons(src: Sources, table: dict[str, dict[str, str]] | None = None) -> list[Finding]:
    out = []
    table = table if table is not None else pins.ADDON_VERSIONS
    for addon in pins.ADDON_NAMES:
        response = src.addon_versions(addon)
        for minor in sorted(table, key=version_key):
            pinned = table[minor][addon]
            name = f"{addon}@{minor}"
            if response is None:
                out.append(Finding("eks-addon", name, pinned, "unchecked", detail="no describe-addon-versions data"))
                continue
            builds = {
                v["addonVersion"]: {c.get("clusterVersion") for c in v.get("compatibilities", [])}
                for a in response.get("addons", [])
                for v in a.get("addonVersions", [])
            }
            compatible = [b for b, minors in builds.items() if minor in minors]
            newest = _newest(compatible)
            if pinned not in builds:
                out.append(Finding("eks-addon", name, pinned, "missing", newest, "EKS lists no such build"))
            elif minor not in builds[pinned]:
                listed = ", ".join(sorted(m for m in builds[pinned] if m)) or "none"
                out.append(
                    Finding("eks-addon", name, pinned, "incompatible", newest, f"listed for {listed}, not {minor}")
                )
            elif newest and version_key(newest) > version_key(pinned):
                out.append(Finding("eks-addon", name, pinned, "outdated", newest))
            else:
                out.append(Finding("eks-addon", name, pinned, "ok", newest))
    return out


def check_k3s(src: Sources, pinned: str | None = None) -> list[Finding]:
    pinned = pinned or pins.K3S_VERSION
    minor = minor_str(pinned)
    releases = src.k3s_releases()
    channels = src.k3s_channels()
    latest = None
    if channels is not None:
        latest = next((c.get("latest") for c in channels.get("data", []) if c.get("id") == f"v{minor}"), None)
    if releases is not None and pinned not in releases:
        return [Finding("k3s", f"k3s@{minor}", pinned, "missing", latest, "no such release tag")]
    if latest is None and releases is None:
        return [Finding("k3s", f"k3s@{minor}", pinned, "unchecked", detail="no channel or release data")]
    if latest and version_key(latest) > version_key(pinned):
        return [Finding("k3s", f"k3s@{minor}", pinned, "outdated", latest, f"channel v{minor}")]
    if latest is None:
        return [Finding("k3s", f"k3s@{minor}", pinned, "ok", detail=f"tag published; no channel v{minor}")]
    if version_key(latest) < version_key(pinned):
        return [Finding("k3s", f"k3s@{minor}", pinned, "missing", latest, f"newer than channel v{minor}'s latest")]
    return [Finding("k3s", f"k3s@{minor}", pinned, "ok", latest)]


_AMI_ARCH = {"amd64": "x86_64", "arm64": "arm64"}


def al2023_alias_parameter(minor: str, arch: str, version: str) -> str:
    """The public SSM parameter Karpenter resolves `al2023@<version>` to for one Kubernetes minor and
    architecture (the EKS-optimized AL2023 standard AMI of that release)."""
    a = _AMI_ARCH[arch]
    name = f"amazon-eks-node-al2023-{a}-standard-{minor}-{version}"
    return f"/aws/service/eks/optimized-ami/{minor}/amazon-linux-2023/{a}/standard/{name}/image_id"


def check_ami_aliases(src: Sources, stacks: dict[str, Any]) -> list[Finding]:
    """Each EKS stack's pinned Karpenter AMI alias (`karpenter.nodeClasses[].amiAlias`, e.g. prod's
    al2023@v20260903) for the stack's minor and every architecture its NodePools allow."""
    from components.config.karpenter_rules import effective_ami_alias

    out = []
    for stack, cfg in sorted(stacks.items()):
        if cfg.cluster.kind != "eks" or not cfg.karpenter.enabled:
            continue
        minor = cfg.cluster.eks.version
        for node_class in cfg.karpenter.node_classes:
            alias = effective_ami_alias(node_class)
            version = alias.partition("@")[2]
            if version == "latest":
                continue  # not a pin
            arches = sorted(
                {a for p in cfg.karpenter.node_pools if p.node_class == node_class.name for a in p.architectures}
            )
            for arch in arches:
                name = f"{stack}/{node_class.name}@{minor}/{arch}"
                parameter = al2023_alias_parameter(minor, arch, version)
                exists = src.ssm_parameter(cfg.region, parameter)
                if exists is None:
                    out.append(Finding("ami-alias", name, alias, "unchecked", detail=f"no data for {parameter}"))
                elif exists:
                    out.append(Finding("ami-alias", name, alias, "ok"))
                else:
                    out.append(Finding("ami-alias", name, alias, "missing", detail=f"no SSM parameter {parameter}"))
    return out


def repository_stacks(root: Path) -> dict[str, Any]:
    """The repository's stack files (Pulumi.<stack>.yaml), parsed; a stack file that does not parse is skipped
    (`platformctl preview` reports it)."""
    from components.config import ConfigError, parse_stack_config
    from programs.stack_files import read_stack_file

    stacks = {}
    for path in sorted(root.glob("Pulumi.*.yaml")):
        try:
            stacks[path.name.removeprefix("Pulumi.").removesuffix(".yaml")] = parse_stack_config(read_stack_file(path))
        except (ConfigError, ValueError, OSError):
            continue
    return stacks


def check_pins(src: Sources, stacks: dict[str, Any] | None = None) -> PinsReport:
    findings = [*check_charts(src), *check_images(src), *check_addons(src), *check_k3s(src)]
    if stacks:
        findings += check_ami_aliases(src, stacks)
    return PinsReport(tuple(findings))


# ------------------------------------------------------------------------------ sources
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.removeprefix("https://").removeprefix("oci://").strip("/"))


class RecordedSources:
    """Responses saved under DIR, one file per request (what `--from DIR` reads):

    charts/<repo host and path>/index.yaml      the chart repository's index.yaml
    oci/<registry>/<name>/tags.json             `GET /v2/<name>/tags/list` ({"name", "tags"})
    eks/describe-addon-versions-<addon>.json    `aws eks describe-addon-versions --addon-name <addon>`
    k3s/channels.json                           the channel server's `/v1-release/channels`
    k3s/releases.json                           the release tags, as GitHub's releases API lists them
    ssm/<region>/<parameter path>.json          `aws ssm get-parameter --name <path>` (or its error:
                                                {"Error": {"Code": "ParameterNotFound"}})
    A missing file is a source with no data (its pins are `unchecked`)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _json(self, *parts: str) -> Any:
        path = self.root.joinpath(*parts)
        return json.loads(path.read_text()) if path.exists() else None

    def chart_versions(self, repo: str, chart: str) -> list[str] | None:
        path = self.root / "charts" / _slug(repo) / "index.yaml"
        if not path.exists():
            return None
        return index_versions(yaml.safe_load(path.read_text()), chart)

    def oci_tags(self, reference: str) -> list[str] | None:
        doc = self._json("oci", *reference.split("/"), "tags.json")
        return None if doc is None else list(doc.get("tags") or [])

    def addon_versions(self, addon: str) -> dict[str, Any] | None:
        return self._json("eks", f"describe-addon-versions-{addon}.json")

    def k3s_channels(self) -> dict[str, Any] | None:
        return self._json("k3s", "channels.json")

    def k3s_releases(self) -> list[str] | None:
        doc = self._json("k3s", "releases.json")
        return None if doc is None else [r["tag_name"] for r in doc]

    def ssm_parameter(self, region: str, name: str) -> bool | None:
        doc = self._json("ssm", region, *name.strip("/").split("/")[:-1], f"{name.rsplit('/', 1)[-1]}.json")
        if doc is None:
            return None
        return "Parameter" in doc and (doc.get("Error") or {}).get("Code") != "ParameterNotFound"


def index_versions(index: dict[str, Any], chart: str) -> list[str]:
    return [str(e.get("version")) for e in (index.get("entries") or {}).get(chart, [])]


class LiveSources:
    """The network: chart repositories, registries, boto3 (default credentials), the K3s channel server."""

    def __init__(self, eks: Any | None = None, timeout: float = 30.0):
        self._eks = eks
        self.timeout = timeout

    def _get(self, url: str, headers: dict[str, str] | None = None) -> bytes:
        req = urllib.request.Request(url, headers={"User-Agent": "platformctl-pins-check", **(headers or {})})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - fixed https URLs
            return resp.read()

    def chart_versions(self, repo: str, chart: str) -> list[str] | None:
        return index_versions(yaml.safe_load(self._get(repo.rstrip("/") + "/index.yaml")), chart)

    def oci_tags(self, reference: str) -> list[str] | None:
        registry, _, name = reference.partition("/")
        headers = {}
        if registry == "public.ecr.aws":
            token = json.loads(self._get(f"https://public.ecr.aws/token/?scope=repository:{name}:pull"))["token"]
            headers = {"Authorization": f"Bearer {token}"}
        tags: list[str] = []
        url = f"https://{registry}/v2/{name}/tags/list?n=1000"
        doc = json.loads(self._get(url, headers))
        tags += doc.get("tags") or []
        return tags

    def addon_versions(self, addon: str) -> dict[str, Any] | None:
        if self._eks is None:
            import boto3

            self._eks = boto3.client("eks")
        merged: dict[str, Any] = {"addons": []}
        kwargs: dict[str, Any] = {"addonName": addon}
        while True:
            page = self._eks.describe_addon_versions(**kwargs)
            merged["addons"] += page.get("addons", [])
            if not page.get("nextToken"):
                return merged
            kwargs["nextToken"] = page["nextToken"]

    def k3s_channels(self) -> dict[str, Any] | None:
        return json.loads(self._get(K3S_CHANNELS_URL))

    def k3s_releases(self) -> list[str] | None:
        return [r["tag_name"] for r in json.loads(self._get(K3S_RELEASES_URL))]

    def ssm_parameter(self, region: str, name: str) -> bool | None:
        import boto3
        from botocore.exceptions import ClientError

        try:
            boto3.client("ssm", region_name=region).get_parameter(Name=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return False
            raise
        return True


class Guarded:
    """A source whose failures (network, credentials) make its pins `unchecked` instead of crashing;
    `errors` keeps one line per failed request."""

    def __init__(self, inner: Sources):
        self.inner = inner
        self.errors: list[str] = []

    def _call(self, what: str, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - any source failure is reported, the others still run
            self.errors.append(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            return None

    def chart_versions(self, repo: str, chart: str) -> list[str] | None:
        return self._call(f"{repo} index.yaml", self.inner.chart_versions, repo, chart)

    def oci_tags(self, reference: str) -> list[str] | None:
        return self._call(f"{reference} tags", self.inner.oci_tags, reference)

    def addon_versions(self, addon: str) -> dict[str, Any] | None:
        return self._call(f"eks describe-addon-versions {addon}", self.inner.addon_versions, addon)

    def k3s_channels(self) -> dict[str, Any] | None:
        return self._call("k3s channels", self.inner.k3s_channels)

    def k3s_releases(self) -> list[str] | None:
        return self._call("k3s releases", self.inner.k3s_releases)

    def ssm_parameter(self, region: str, name: str) -> bool | None:
        return self._call(f"ssm {name}", self.inner.ssm_parameter, region, name)
