"""Where embedded-etcd servers go so that losing one Availability Zone keeps a quorum (pure).

etcd with `n` members needs `n // 2 + 1` of them to make progress. A zone outage takes every
server of that zone at once, so no zone may hold more than `n - quorum` servers:

- 1 server: no quorum to keep (no HA); it may live in any zone;
- 3 servers: at most 1 per zone, so at least 3 zones;
- 5 servers: at most 2 per zone, so at least 3 zones.

Servers are dealt round-robin over the first zones (server 0, the bootstrap server, in the first
zone), which never puts more than `ceil(n / zones)` servers in one zone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def quorum(servers: int) -> int:
    """Members etcd needs to make progress."""
    return servers // 2 + 1


def max_servers_per_zone(servers: int) -> int:
    """The most servers one zone may hold so that the others still make a quorum (1 server: 1)."""
    return max(1, servers - quorum(servers))


def zones_needed(servers: int) -> int:
    """The fewest zones that hold `servers` with no zone above `max_servers_per_zone`."""
    return 1 if servers == 1 else -(-servers // max_servers_per_zone(servers))


def server_zones(servers: int, zones: Sequence[str], keep_quorum: bool = True) -> list[str]:
    """The zone of each server, bootstrap first: round-robin over the zones, in their order.

    `keep_quorum` (embedded etcd): raises ValueError when the zones cannot keep a quorum through the
    loss of one of them (config validation refuses that first, naming the key; this is the last
    line). Without it (an external datastore holds the state) the servers are only spread.
    """
    if servers < 1:
        raise ValueError(f"{servers} servers: at least 1")
    if len(set(zones)) != len(zones) or not zones:
        raise ValueError(f"zones must be distinct and non-empty, got {list(zones)}")
    if keep_quorum and len(zones) < zones_needed(servers):
        raise ValueError(
            f"{servers} servers need at least {zones_needed(servers)} zones to survive a zone outage, got {len(zones)}"
        )
    placed = [zones[i % len(zones)] for i in range(servers)]
    assert not keep_quorum or max(Counter(placed).values()) <= max_servers_per_zone(servers)
    return placed


def join_servers_per_zone(servers: int, zones: Sequence[str], keep_quorum: bool = True) -> dict[str, int]:
    """`{zone: join servers}` in zone order: every server but the bootstrap one (server 0), by zone."""
    counts = Counter(server_zones(servers, zones, keep_quorum)[1:])
    return {z: counts[z] for z in zones if counts[z]}
