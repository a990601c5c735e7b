"""Environments are first-class: each has documented safeguards (components/config/environments.py),
a stack can tighten them with `k8s-platform:safeguards` but not loosen them, and the program reads
the effective values where it decides protection, replicas, zones, NAT layout and AMI pins."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from components.config import ConfigError, parse_stack_config
from components.config.environments import ENVIRONMENTS, environments_table
from policy.offline_runner import CONFIG_DIR
from programs.offline import read_stack_file, run_offline, stack_file


def shipped(stack: str) -> dict:
    return read_stack_file(stack_file(stack))


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    return err.value.problems


def test_every_environment_has_safeguards_and_a_policy_config():
    assert set(ENVIRONMENTS) == {"dev", "staging", "prod", "ci"}
    for env in ENVIRONMENTS:
        assert (CONFIG_DIR / f"{env}.json").exists(), env
    assert [row["environment"] for row in environments_table()] == ["dev", "staging", "prod", "ci"]
    assert [env for env, s in ENVIRONMENTS.items() if s.ephemeral] == ["ci"]


def test_a_stack_tightens_safeguards():
    raw = copy.deepcopy(shipped("dev"))
    raw["k8s-platform:safeguards"] = {"protectStatefulResources": True, "controllerReplicas": 2}
    cfg = parse_stack_config(raw)
    assert cfg.safeguards_in_force.protect_stateful_resources is True
    assert cfg.safeguards_in_force.controller_replicas == 2
    assert cfg.safeguards_in_force.pinned_amis is False  # untouched: dev's default


def test_a_stack_cannot_loosen_its_environment():
    raw = copy.deepcopy(shipped("prod"))
    raw["k8s-platform:safeguards"] = {"protectStatefulResources": False}
    [problem] = problems(raw)
    assert problem.startswith("k8s-platform:safeguards.protectStatefulResources: False is looser than prod's True")


def test_zone_count_and_nat_layout_follow_the_safeguards():
    raw = copy.deepcopy(shipped("dev"))
    raw["k8s-platform:safeguards"] = {"minAvailabilityZones": 3}
    assert any(
        p.startswith("k8s-platform:network.availabilityZones: dev needs at least 3 zones") for p in problems(raw)
    )
    raw["k8s-platform:safeguards"] = {"natGatewayPerZone": True}
    assert any(p.startswith("k8s-platform:network.natGateways: dev needs 'one-per-az'") for p in problems(raw))


def test_protection_follows_the_safeguard_not_the_environment_name():
    raw = copy.deepcopy(shipped("dev"))
    plain = run_offline("dev", raw)
    assert not any(r.protect for r in plain.resources)
    raw["k8s-platform:safeguards"] = {"protectStatefulResources": True}
    protected = run_offline("dev", raw)
    bucket = next(r for r in protected.resources if r.type == "aws:s3/bucket:Bucket" and "snapshots" in r.name)
    assert bucket.protect and bucket.inputs.get("forceDestroy") is False


def test_staging_stack_runs_with_prod_protection_and_ha_replicas():
    run = run_offline("staging", shipped("staging"))
    cluster = run.one("aws:eks/cluster:Cluster")
    assert cluster.protect
    karpenter = run.one("kubernetes:helm.sh/v3:Release", "karpenter-chart")
    values = karpenter.inputs["values"]
    assert values["replicas"] == 2


def test_readme_documents_the_safeguards_table():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for row in environments_table():
        cells = " | ".join(str(v).lower() for k, v in row.items() if k != "environment")
        assert f"| `{row['environment']}` | {cells} |" in readme, row
