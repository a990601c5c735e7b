"""Cross-field rules of the `cluster.k3s` section (pure; run by `StackConfig` validation).

`k3s_problems(cfg)` yields `(key.path, message)` for what the field validators cannot see:

- zones: with embedded etcd, the servers must spread so that one zone outage keeps a quorum
  (components/core/etcd_quorum.py); fewer zones than that is refused, not silently stacked;
- versions: K3s (like Kubernetes) has no minor downgrade and upgrades one minor at a time; with
  `deployedVersion` known, a downgrade or a skip is refused before anything runs, and the agents
  may not move to a new minor in the run that moves the servers to it (servers first);
- agent skew: agents never newer than the servers, at most three minors older (the kubelet skew).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from components.core.etcd_quorum import max_servers_per_zone, quorum, zones_needed

if TYPE_CHECKING:
    from components.config.k3s import K3sConfig
    from components.config.stack import StackConfig

# Kubernetes version skew policy: a kubelet may be up to three minors older than kube-apiserver, never newer.
KUBELET_MAX_MINORS_BEHIND = 3
UPGRADE_DOC = "README 'Upgrading K3s'"


def k3s_minor(version: str) -> tuple[int, int]:
    """`v1.36.4+k3s1` -> (1, 36)."""
    major, minor = version.lstrip("v").split("+", 1)[0].split(".")[:2]
    return int(major), int(minor)


def _shown(minor: tuple[int, int]) -> str:
    return f"{minor[0]}.{minor[1]}"


def embedded_etcd(k3s: "K3sConfig") -> bool:
    """Whether the servers keep their state in embedded etcd (the default datastore; an external one is
    `cluster.k3s.datastore.kind`)."""
    datastore = getattr(k3s, "datastore", None)
    return getattr(datastore, "kind", "embedded-etcd") == "embedded-etcd"


def agents_version(cfg: "StackConfig") -> str:
    """The K3s release of the agents and Karpenter nodes: `agents.version`, else the servers' `version`."""
    k3s = cfg.cluster.k3s
    return k3s.agents.version or k3s.version


def control_plane_version(cfg: "StackConfig") -> str:
    """The release the API servers are known to run: during a minor upgrade (`deployedVersion` one
    minor behind `version`) the deployed one, else `version`. What the AWS cloud controller matches:
    it may never be newer than the API server, so it moves once every server runs the new minor."""
    k3s = cfg.cluster.k3s
    if k3s.deployed_version is not None and k3s_minor(k3s.deployed_version) < k3s_minor(k3s.version):
        return k3s.deployed_version
    return k3s.version


def k3s_problems(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    if cfg.cluster.kind != "k3s":
        return
    yield from _zone_problems(cfg)
    yield from _version_problems(cfg)


def _zone_problems(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    count, zones = cfg.cluster.k3s.servers.count, cfg.network.availability_zones
    if count not in (1, 3, 5):
        return  # embedded etcd runs 1, 3 or 5: other counts are refused by components/config/k3s_datastore.py
    if not embedded_etcd(cfg.cluster.k3s) or len(zones) >= zones_needed(count):
        return
    yield (
        "cluster.k3s.servers.count",
        f"{count} servers with embedded etcd need at least {zones_needed(count)} availability zones (at most "
        f"{max_servers_per_zone(count)} per zone) so that a zone outage leaves a quorum ({quorum(count)} of "
        f"{count}); network.availabilityZones lists {len(zones)}: add zones, or run 1 server",
    )


def _version_problems(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    k3s = cfg.cluster.k3s
    servers, agents = k3s_minor(k3s.version), k3s_minor(agents_version(cfg))
    if agents > servers:
        yield (
            "cluster.k3s.agents.version",
            f"{agents_version(cfg)} is newer than the servers' {k3s.version}: a kubelet is never newer than "
            "its API server (upgrade the servers first)",
        )
    elif servers[0] == agents[0] and servers[1] - agents[1] > KUBELET_MAX_MINORS_BEHIND:
        yield (
            "cluster.k3s.agents.version",
            f"{agents_version(cfg)} is more than {KUBELET_MAX_MINORS_BEHIND} minors behind the servers' "
            f"{k3s.version} (the Kubernetes kubelet skew policy)",
        )
    if k3s.deployed_version is None:
        return
    deployed = k3s_minor(k3s.deployed_version)
    if servers < deployed:
        yield (
            "cluster.k3s.version",
            f"{k3s.version} downgrades the servers from {_shown(deployed)} ({k3s.deployed_version}): K3s has no "
            "minor downgrade (the embedded etcd 3.6 data holds objects an older API server may not read); "
            f"keep {_shown(deployed)}.x, or restore a snapshot taken before the upgrade ({UPGRADE_DOC})",
        )
    elif servers[0] != deployed[0] or servers[1] > deployed[1] + 1:
        step = f"{deployed[0]}.{deployed[1] + 1}"
        yield (
            "cluster.k3s.version",
            f"{k3s.version} skips a minor: the servers run {_shown(deployed)} ({k3s.deployed_version}); upgrade "
            f"one minor at a time, to {step} first ({UPGRADE_DOC})",
        )
    elif servers > deployed and agents > deployed:
        yield (
            "cluster.k3s.agents.version",
            f"this run upgrades the servers from {_shown(deployed)} to {_shown(servers)}; the agents and "
            f"Karpenter nodes follow once every server runs {_shown(servers)}: set agents.version: "
            f"{k3s.deployed_version} for this run ({UPGRADE_DOC})",
        )
