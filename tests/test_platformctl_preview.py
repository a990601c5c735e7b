"""`platformctl preview --offline`: exit codes, the plan JSON's public shape, secret masking."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from programs.offline import REPO_ROOT, Secret
from programs.plan import SECRET_MASK, plan_value
from programs.platformctl.cli import main

RESOURCE_KEYS = {"urn", "type", "name", "parent", "custom", "inputs", "dependencies", "protect"}


def test_console_script_runs_prod_and_writes_the_plan(tmp_path):
    """The installed entry point, in a subprocess, as a user runs it."""
    out = tmp_path / "plan.json"
    exe = Path(sys.executable).with_name("platformctl")
    proc = subprocess.run(
        [str(exe), "preview", "--stack", "prod", "--offline", "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Resources by type:" in proc.stdout
    plan = json.loads(out.read_text())
    assert {"project", "stack", "resources", "outputs", "policy"} <= set(plan)
    assert plan["project"] == "k8s-platform" and plan["stack"] == "prod"
    assert plan["policy"]["violations"] == []
    for res in plan["resources"]:
        assert RESOURCE_KEYS <= set(res), res
    types = [r["type"] for r in plan["resources"]]
    assert types.count("aws:ec2/vpc:Vpc") == 1
    assert types.count("aws:ec2/vpcIpv4CidrBlockAssociation:VpcIpv4CidrBlockAssociation") == 1
    assert types.count("aws:ec2/subnet:Subnet") >= 3 * 3


def test_dev_preview_in_process(tmp_path, capsys):
    out = tmp_path / "dev.json"
    assert main(["preview", "--stack", "dev", "--offline", "--json", str(out), "--quiet"]) == 0
    plan = json.loads(out.read_text())
    types = [r["type"] for r in plan["resources"]]
    assert types.count("aws:ec2/subnet:Subnet") >= 3 * 2
    assert "dev:" in capsys.readouterr().out


def test_invalid_cidr_exits_2_names_the_key_and_plans_nothing(tmp_path, capsys):
    doc = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["k8s-platform:network"]["podCidr"] = "100.64.0.0/33"
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    out = tmp_path / "plan.json"
    code = main(["preview", "--stack", "dev", "--offline", "--config-file", str(bad), "--json", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "k8s-platform:network.podCidr" in err and "Traceback" not in err
    assert json.loads(out.read_text())["resources"] == []


def test_missing_stack_file_is_a_clean_error(capsys):
    assert main(["preview", "--stack", "nope", "--offline"]) == 2
    assert "Pulumi.nope.yaml" in capsys.readouterr().err


def test_without_offline_and_no_cli_says_so_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["preview", "--stack", "dev"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pulumi CLI is not installed" in err[0] and "--offline" in err[0]


def test_secrets_are_masked_unless_asked():
    value = {"a": Secret("s3cr3t"), "b": [Secret({"k": "v"}), "plain"]}
    assert plan_value(value, show_secrets=False) == {"a": SECRET_MASK, "b": [SECRET_MASK, "plain"]}
    assert plan_value(value, show_secrets=True) == {"a": "s3cr3t", "b": [{"k": "v"}, "plain"]}


def test_a_plan_with_revealed_secrets_is_readable_by_its_owner_only(tmp_path):
    out = tmp_path / "plan.json"
    out.write_text("{}")
    out.chmod(0o644)
    assert main(["preview", "--stack", "prod", "--offline", "--quiet", "--show-secrets", "--json", str(out)]) == 0
    assert out.stat().st_mode & 0o077 == 0
    assert "PRIVATE KEY" in out.read_text()
