"""The ephemeral `ci` environment: a throwaway K3s cluster per pipeline run, and its expiry.

`environment: ci` (components/config/environments.py) is the profile of a cluster that a pipeline
creates, tests against and destroys (`platformctl ci up|down|reap`):
  - one K3s server that also runs workloads (no `CriticalAddonsOnly` taint) and no agents group;
    Karpenter stays optional;
  - nothing protected: buckets with `force_destroy`, deletion protection off, secrets deleted at once
    (a re-run with the same name can reuse their names), so `pulumi destroy` removes everything;
  - short retentions: flow logs 1 day and etcd snapshots 2 unless set (at most `CI_MAX_LOG_RETENTION_DAYS`
    and `CI_MAX_SNAPSHOTS`), the drainer's log group 1 day, pruned snapshot versions 1 day;
  - the cheapest NAT layout (`single`) unless set;
  - `k8s-platform:ci.expiresAt` (RFC 3339, UTC) is required, and every taggable resource carries it as
    the tag `k8s-platform/expires-at` (per resource, and as the AWS provider's default tag), so
    `platformctl ci reap` and any account sweeper can find what outlived its run.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from components.config.base import Model
from components.config.checks import shown

if TYPE_CHECKING:  # pragma: no cover
    from components.config.stack import StackConfig

CI_ENVIRONMENT = "ci"
EXPIRY_TAG = "k8s-platform/expires-at"
# Profile defaults of a ci stack for keys it leaves unset (camelCase paths below the top-level key).
CI_DEFAULTS: tuple[tuple[str, tuple[str, ...], Any], ...] = (
    ("network", ("natGateways",), "single"),
    ("network", ("flowLogs", "retentionDays"), 1),
    ("cluster", ("k3s", "snapshots", "retention"), 2),
)
CI_MAX_LOG_RETENTION_DAYS = 7
CI_MAX_SNAPSHOTS = 5
# Days the drainer's log group and pruned etcd snapshot versions are kept in a ci stack.
CI_RETENTION_DAYS = 1

# RFC 3339 date-time in UTC: `2026-12-01T14:30:00Z` (fractional seconds and `+00:00` accepted).
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)


def parse_expiry(text: str) -> dt.datetime:
    """An RFC 3339 UTC timestamp as an aware datetime; ValueError saying what is allowed otherwise."""
    example = "like 2026-12-01T14:30:00Z"
    m = _RFC3339.fullmatch(text)
    if not m:
        raise ValueError(f"'{shown(text)}' is not an RFC 3339 date-time in UTC {example}")
    if m.group(8) not in ("Z", "z", "+00:00"):
        raise ValueError(f"'{shown(text)}' must be in UTC (suffix Z), {example}")
    try:
        when = dt.datetime(*(int(m.group(i)) for i in range(1, 7)), tzinfo=dt.UTC)
    except ValueError as exc:
        raise ValueError(f"'{shown(text)}' is not a valid date-time ({exc}), {example}") from None
    return when


def format_expiry(when: dt.datetime) -> str:
    """The canonical form written to config and tags: whole seconds, UTC, `Z`."""
    return when.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


class CiConfig(Model):
    """`k8s-platform:ci`: the expiry of an ephemeral stack (`environment: ci`)."""

    expires_at: str = Field(
        description=(
            "When the stack may be destroyed by `platformctl ci reap`: an RFC 3339 date-time in UTC like "
            "`2026-12-01T14:30:00Z`, set by `platformctl ci up --ttl`; every taggable resource carries it as "
            "the tag `k8s-platform/expires-at`. Required with `environment: ci`, refused otherwise."
        )
    )

    @field_validator("expires_at")
    @classmethod
    def _expiry(cls, v: str) -> str:
        return format_expiry(parse_expiry(v))

    @property
    def expiry(self) -> dt.datetime:
        return parse_expiry(self.expires_at)


def apply_ci_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """`data` (the stack's config below `k8s-platform:`) with the ci profile's defaults for unset keys;
    anything that is not a ci stack, or a section that is not a mapping, is returned unchanged."""
    if not isinstance(data, dict) or data.get("environment") != CI_ENVIRONMENT:
        return data
    out = dict(data)
    for top, path, value in CI_DEFAULTS:
        node = out.get(top)
        # An absent or malformed section keeps its own error; the K3s defaults apply to kind k3s only.
        if not isinstance(node, dict) or top == "cluster" and node.get("kind") != "k3s":
            continue
        if path[:2] == ("k3s", "snapshots") and _external_datastore(node):
            continue  # no etcd, so no snapshots to keep (the datastore's backups follow the safeguards)
        node = out[top] = dict(node)
        for part in path[:-1]:
            child = node.get(part, {})
            if not isinstance(child, dict):
                break
            node[part] = dict(child)
            node = node[part]
        else:
            node.setdefault(path[-1], value)
    return out


def _external_datastore(cluster: dict[str, Any]) -> bool:
    k3s = cluster.get("k3s")
    datastore = k3s.get("datastore") if isinstance(k3s, dict) else None
    return isinstance(datastore, dict) and datastore.get("kind", "embedded-etcd") != "embedded-etcd"


def ci_problems(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    """The ci profile's rules: the expiry present only in ci, and what a ci cluster is made of."""
    ephemeral = cfg.environment == CI_ENVIRONMENT
    if not ephemeral:
        if cfg.ci is not None:
            yield ("ci", f"applies to environment ci; this stack is {cfg.environment} (remove the block)")
        return
    if cfg.ci is None:
        yield ("ci.expiresAt", "is required with environment ci (`platformctl ci up --ttl 2h` sets it)")
    if cfg.cluster.kind != "k3s":
        yield ("cluster.kind", "environment ci runs K3s (one server that also runs workloads); set kind: k3s")
        return
    k3s = cfg.cluster.k3s
    if k3s.servers.count != 1:
        yield ("cluster.k3s.servers.count", f"environment ci runs exactly 1 server, {k3s.servers.count} given")
    if "agents" in k3s.model_fields_set:
        yield (
            "cluster.k3s.agents",
            "environment ci has no agents group: workloads run on the server (remove the block; "
            "enable Karpenter for more capacity)",
        )
    if cfg.safeguards.protect_stateful_resources:
        yield (
            "safeguards.protectStatefulResources",
            "environment ci is destroyed with its pipeline run; nothing in it may be protected (remove the key)",
        )
    flow_days = cfg.network.flow_logs.retention_days
    if cfg.network.flow_logs.enabled and flow_days > CI_MAX_LOG_RETENTION_DAYS:
        yield (
            "network.flowLogs.retentionDays",
            f"{flow_days} days; environment ci keeps logs at most {CI_MAX_LOG_RETENTION_DAYS} days (default 1)",
        )
    if not k3s.datastore.external and k3s.snapshots.retention > CI_MAX_SNAPSHOTS:
        yield (
            "cluster.k3s.snapshots.retention",
            f"{k3s.snapshots.retention} snapshots; environment ci keeps at most {CI_MAX_SNAPSHOTS} (default 2)",
        )
