"""`platformctl preview` for a person (issue 13): header, counts, outputs, violations, `--quiet`,
`--diff OLD_PLAN.json`, `--policy-config` found before the run, and messages that name their file."""

from __future__ import annotations

import copy
import json
from functools import partial

import pytest

from policy.offline_runner import config_path
from programs.api import offline_preview
from programs.offline import REPO_ROOT
from programs.platformctl import exit_codes, policy_gate
from programs.platformctl.cli import main
from programs.platformctl.preview_report import diff_plans, render_outputs


def test_staging_previews_with_its_own_policy_config(capsys):
    assert (REPO_ROOT / "policy" / "config" / "staging.json").is_file()
    assert main(["preview", "--stack", "staging", "--offline"]) == exit_codes.OK
    out = capsys.readouterr().out
    header = out.split("\n\n")[0].splitlines()
    assert [line.split(":")[0] for line in header] == [
        "stack",
        "region",
        "account",
        "cluster",
        "zones",
        "policy config",
    ]
    assert "staging-eks: eks 1.35" in out and "us-east-1a, us-east-1b" in out
    assert header[-1].endswith("policy/config/staging.json")
    # tree, then per-component counts with protected resources, then outputs, then the summary
    order = [
        out.index(s)
        for s in ("k8s-platform-staging (pulumi:pulumi:Stack)", "Resources by component:", "Outputs", "staging: ")
    ]
    assert order == sorted(order)
    assert "k8s-platform:eks:EksCluster  eks" in out
    assert "(4 protected)" in out or "protected)" in out


def test_a_missing_policy_config_is_found_before_the_program_runs(monkeypatch, tmp_path, capsys):
    def no_run(*_a, **_k):
        raise AssertionError("the program ran before the policy config was found")

    monkeypatch.setattr(offline_preview, "run_offline", no_run)
    monkeypatch.setattr(policy_gate, "config_path", partial(config_path, config_dir=tmp_path))
    assert main(["preview", "--stack", "staging", "--offline"]) == exit_codes.CONFIG_ERROR
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.count("staging.json") == 1 and str(tmp_path / "staging.json") in line
    assert "--policy-config" in line
    missing = tmp_path / "nope.json"
    assert main(["preview", "--stack", "dev", "--offline", "--policy-config", str(missing)]) == exit_codes.CONFIG_ERROR
    assert capsys.readouterr().err.strip() == f"error: {missing}: no such policy config file (--policy-config)"


def test_quiet_prints_the_summary_and_mandatory_violations_only(tmp_path, capsys):
    cfg = tmp_path / "strict.json"
    cfg.write_text(
        json.dumps(
            {
                "all": "advisory",
                "stateful-resources-protected": "advisory",
                "required-tags": {"enforcementLevel": "mandatory", "requiredTags": ["owner", "team"]},
            }
        )
    )
    assert (
        main(["preview", "--stack", "dev", "--offline", "--quiet", "--policy-config", str(cfg)])
        == exit_codes.POLICY_VIOLATION
    )
    out = capsys.readouterr().out
    lines = [ln.strip() for ln in out.splitlines() if ln.strip().startswith(("policy mandatory", "policy advisory"))]
    assert lines and all(ln.startswith("policy mandatory: required-tags") for ln in lines)
    summary = out.strip().splitlines()[-1]
    mandatory, advisory = (
        int(summary.split(" mandatory")[0].split()[-1]),
        int(summary.split(" advisory")[0].split()[-1]),
    )
    assert mandatory == len(lines) and advisory > 0  # dev protects nothing: advisories counted, not printed
    assert "Resources by component:" not in out


def test_diff_of_prod_against_a_plan_with_one_changed_nodepool_limit(tmp_path, capsys):
    saved = tmp_path / "old.json"
    assert main(["preview", "--stack", "prod", "--offline", "--quiet", "--json", str(saved)]) == exit_codes.OK
    plan = json.loads(saved.read_text())
    [pool] = [
        r
        for r in plan["resources"]
        if r["type"] == "kubernetes:karpenter.sh/v1:NodePool" and r["name"].endswith("general")
    ]
    pool["inputs"]["spec"]["limits"]["cpu"] = "800"
    saved.write_text(json.dumps(plan))
    capsys.readouterr()
    assert main(["preview", "--stack", "prod", "--offline", "--quiet", "--diff", str(saved)]) == exit_codes.OK
    out = capsys.readouterr().out
    section = out[out.index("Changes against") :].split("\n\n")[0].splitlines()
    assert section == [
        f"Changes against {saved}: 0 to add, 0 to remove, 1 to change",
        f"  ~ kubernetes:karpenter.sh/v1:NodePool  {pool['name']}",
        '      spec.limits.cpu: "800" => "1000"',
    ]


def test_diff_reports_added_removed_and_protect_changes():
    old = {
        "resources": [
            {"urn": "u:a", "type": "t:A", "name": "a", "inputs": {"x": 1}, "protect": False},
            {"urn": "u:gone", "type": "t:B", "name": "gone", "inputs": {}, "protect": True},
            {
                "urn": "u:c",
                "type": "t:C",
                "name": "c",
                "inputs": {"cert": "OLD"},
                "protect": False,
                "propertyDependencies": {"cert": ["u:a"]},
            },
        ]
    }
    new = copy.deepcopy(old)
    new["resources"].pop(1)
    new["resources"][0]["protect"] = True
    new["resources"][1]["inputs"]["cert"] = "NEW"  # computed from u:a, whose inputs did not change
    new["resources"].append({"urn": "u:new", "type": "t:D", "name": "new", "inputs": {}, "protect": False})
    diff = diff_plans(old, new)
    assert [r["name"] for r in diff["added"]] == ["new"] and [r["name"] for r in diff["removed"]] == ["gone"]
    assert [(c["resource"]["name"], [ch["key"] for ch in c["changes"]]) for c in diff["changed"]] == [
        ("a", ["(protect)"])
    ]
    new["resources"][0]["inputs"]["x"] = 2  # now the source changed: the derived input is a real change
    assert {c["resource"]["name"] for c in diff_plans(old, new)["changed"]} == {"a", "c"}


def test_outputs_are_printed_with_secrets_masked():
    text = render_outputs(
        {
            "outputs": {
                "clusterName": "dev-k3s",
                "kubeconfig": "[secret]",
                "roles": {"a": "arn:aws:iam::111111111111:role/a"},
            }
        }
    )
    assert "clusterName: dev-k3s" in text and "kubeconfig: [secret]" in text and "secrets shown as [secret]" in text


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("platformctl 0.1.0")


def test_messages_about_files_name_the_file(tmp_path, capsys):
    not_json = tmp_path / "plan.txt"
    not_json.write_text("not json")
    assert main(["policy", "check", "--plan", str(not_json), "--stack", "prod"]) == exit_codes.CONFIG_ERROR
    assert str(not_json) in capsys.readouterr().err
    missing = tmp_path / "Pulumi.x.yaml"
    assert main(["preview", "--stack", "x", "--offline", "--config-file", str(missing)]) == exit_codes.CONFIG_ERROR
    assert capsys.readouterr().err.strip() == f"error: {missing}: no such stack file (--config-file)"
    assert main(["preview", "--stack", "prod", "--offline", "--diff", str(not_json)]) == exit_codes.CONFIG_ERROR
    assert str(not_json) in capsys.readouterr().err


def test_policy_check_does_not_silently_use_the_plans_environment_for_another_stack(tmp_path, capsys):
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "project": "k8s-platform",
                "stack": "prod",
                "resources": [],
                "outputs": {"environment": "prod"},
                "policy": {"violations": []},
            }
        )
    )
    assert main(["policy", "check", "--plan", str(plan), "--stack", "qa"]) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err
    assert str(plan) in err and "'prod', not 'qa'" in err
    assert (
        main(
            [
                "policy",
                "check",
                "--plan",
                str(plan),
                "--stack",
                "qa",
                "--policy-config",
                str(REPO_ROOT / "policy/config/staging.json"),
            ]
        )
        == exit_codes.OK
    )
