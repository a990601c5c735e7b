"""Embedded-etcd servers one per zone: a zone outage never takes a quorum (issue 17, point 2).

The placement is asserted on the plan itself: the zone of every subnet each server group may launch
into (`vpcZoneIdentifiers` -> the captured subnets' `availabilityZone`), times the group's size.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from components.config import ConfigError, parse_stack_config
from components.core.etcd_quorum import (
    join_servers_per_zone,
    max_servers_per_zone,
    quorum,
    server_zones,
    zones_needed,
)
from programs.mock_resources import MockContext, resource_id
from programs.offline import run_offline
from tests.conftest import mutated_config, shipped_config, variants_run

ASG = "aws:autoscaling/group:Group"
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
SERVER_KEY = "k8s-platform:cluster.k3s.servers.count"


def ha(count: int, zones: list[str]):
    return variants_run(
        "dev",
        {"network.availabilityZones": zones, "cluster.k3s.servers": {"count": count, "instanceType": "t3.medium"}},
    )


def subnet_zones(run) -> dict[str, str]:
    """subnet id (as the mocks give it) -> its availability zone."""
    ctx = MockContext(run.config.region, run.config.account_id, run.stack)
    return {
        resource_id(ctx, s.type, s.name, s.inputs): s.inputs["availabilityZone"]
        for s in run.of_type("aws:ec2/subnet:Subnet")
    }


def server_groups(run) -> dict[str, dict]:
    return {g.name: g.inputs for g in run.of_type(ASG) if g.name.startswith("k3s-server")}


def servers_per_zone(run) -> Counter:
    """How many servers the plan puts in each zone; every server group must name exactly one zone."""
    zone_of = subnet_zones(run)
    placed: Counter = Counter()
    for name, inputs in server_groups(run).items():
        zones = {zone_of[s] for s in inputs["vpcZoneIdentifiers"]}
        assert len(zones) == 1, f"{name} may launch into {sorted(zones)}: a replacement could change zone"
        assert inputs["minSize"] == inputs["maxSize"] == inputs["desiredCapacity"]
        placed[zones.pop()] += inputs["desiredCapacity"]
    return placed


# ------------------------------------------------------------------------------- pure placement
@pytest.mark.parametrize(("servers", "needed", "per_zone"), [(1, 1, 1), (3, 3, 1), (5, 3, 2)])
def test_quorum_arithmetic(servers, needed, per_zone):
    assert zones_needed(servers) == needed and max_servers_per_zone(servers) == per_zone
    # Losing the fullest zone leaves a quorum (a single server has none to keep).
    if servers > 1:
        assert servers - per_zone >= quorum(servers)


@pytest.mark.parametrize("zones", [3, 4, 5, 6])
@pytest.mark.parametrize("servers", [3, 5])
def test_round_robin_never_puts_more_than_a_zone_may_lose(servers, zones):
    names = [f"us-east-1{c}" for c in "abcdef"[:zones]]
    placed = server_zones(servers, names)
    assert placed[0] == names[0]  # the bootstrap server in the first zone
    assert max(Counter(placed).values()) <= max_servers_per_zone(servers)
    assert sum(join_servers_per_zone(servers, names).values()) == servers - 1


def test_five_servers_over_three_zones_are_two_two_one():
    assert server_zones(5, ZONES) == ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1a", "us-east-1b"]
    assert join_servers_per_zone(5, ZONES) == {"us-east-1a": 1, "us-east-1b": 2, "us-east-1c": 1}


def test_too_few_zones_raise_in_the_pure_core():
    with pytest.raises(ValueError, match="at least 3 zones"):
        server_zones(3, ZONES[:2])
    # An external datastore keeps no quorum on the servers: they are only spread.
    assert server_zones(4, ZONES[:2], keep_quorum=False) == ["us-east-1a", "us-east-1b"] * 2


# ---------------------------------------------------------------------------------------- plan
def test_three_servers_over_three_zones_are_exactly_one_per_zone():
    run = ha(3, ZONES)
    assert servers_per_zone(run) == Counter(dict.fromkeys(ZONES, 1))
    groups = server_groups(run)
    zone_of = subnet_zones(run)
    # The bootstrap server (the one that may cluster-init) is the first zone's.
    assert {zone_of[s] for s in groups["k3s-server-bootstrap"]["vpcZoneIdentifiers"]} == {"us-east-1a"}
    assert set(groups) == {"k3s-server-bootstrap", "k3s-server-join-us-east-1b", "k3s-server-join-us-east-1c"}


def test_five_servers_over_three_zones_keep_a_quorum_through_any_zone_outage():
    run = ha(5, ZONES)
    placed = servers_per_zone(run)
    assert sum(placed.values()) == 5 and max(placed.values()) == 2
    for zone in ZONES:
        assert 5 - placed[zone] >= quorum(5), zone


def test_every_server_group_is_drained_and_reachable_by_connect():
    run = ha(3, ZONES)
    names = {g["name"] for g in server_groups(run).values()}
    rules = {r.name: r.inputs for r in run.of_type("aws:cloudwatch/eventRule:EventRule")}
    pattern = json.loads(rules["k3s-interruption-asg-termination"]["eventPattern"])
    drained = set(pattern["detail"]["AutoScalingGroupName"])
    # Every group, and the single join group of earlier releases (drained while an upgrade deletes it).
    assert names | {"dev-k3s-k3s-servers"} <= drained
    assert set(run.outputs["apiAccess"]["autoScalingGroupNames"]) == names


def test_one_server_keeps_spanning_every_zone(dev_run):
    # No quorum to keep: when its zone fails, the ASG restores it from the newest snapshot elsewhere.
    (inputs,) = server_groups(dev_run).values()
    zone_of = subnet_zones(dev_run)
    assert {zone_of[s] for s in inputs["vpcZoneIdentifiers"]} == set(dev_run.config.network.availability_zones)


# ---------------------------------------------------------------------------------- refusals
def refusal(cfg) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(cfg)
    return err.value.problems


@pytest.mark.parametrize("count", [3, 5])
def test_servers_over_two_zones_are_refused_naming_the_key(count):
    cfg = mutated_config("dev", "cluster.k3s.servers", {"count": count, "instanceType": "t3.medium"})
    assert cfg["k8s-platform:network"]["availabilityZones"] == ["us-east-1a", "us-east-1b"]
    (msg,) = refusal(cfg)
    assert msg.startswith(f"{SERVER_KEY}: {count} servers with embedded etcd need at least 3 availability zones")
    assert "zone outage" in msg and "quorum" in msg and "network.availabilityZones lists 2" in msg


def test_the_refusal_registers_nothing():
    cfg = mutated_config("dev", "cluster.k3s.servers", {"count": 3, "instanceType": "t3.medium"})
    with pytest.raises(ConfigError):
        run_offline("dev", cfg)


def test_the_refusal_comes_with_the_files_other_problems():
    cfg = mutated_config("dev", "cluster.k3s.servers", {"count": 3, "instanceType": "t3.medium"})
    cfg["k8s-platform:cluster"]["k3s"]["snapshots"]["retention"] = 0
    found = refusal(cfg)
    assert any(p.startswith(SERVER_KEY) for p in found)
    assert any(p.startswith("k8s-platform:cluster.k3s.snapshots.retention") for p in found)


def test_shipped_stacks_are_untouched_by_the_rule():
    for stack in ("dev", "prod", "staging"):
        parse_stack_config(shipped_config(stack))


def test_preview_exits_2_naming_the_key_and_plans_nothing(tmp_path, capsys):
    from programs.offline import REPO_ROOT
    from programs.platformctl.cli import main

    doc = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["k8s-platform:cluster"]["k3s"]["servers"]["count"] = 3  # over the stack's 2 zones
    bad = tmp_path / "Pulumi.ha2.yaml"
    bad.write_text(yaml.safe_dump(doc))
    out = tmp_path / "plan.json"
    code = main(["preview", "--stack", "dev", "--offline", "--config-file", str(bad), "--json", str(out), "--no-cache"])
    assert code == 2
    err = capsys.readouterr().err
    assert SERVER_KEY in err and "need at least 3 availability zones" in err and "Traceback" not in err
    assert json.loads(out.read_text())["resources"] == []
