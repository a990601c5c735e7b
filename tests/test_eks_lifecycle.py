"""EKS lifecycle facts the program enforces: one minor per control-plane update when the deployed
minor is known (`--previous-plan`), the node/control-plane skew policy, the support-calendar warning,
and the outputs `platformctl upgrade` reads."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from components.config import ConfigError, parse_stack_config
from components.core.eks_support_calendar import CALENDAR, SUPPORT_WARNING_WINDOW, support_warning
from components.core.pins import ADDON_VERSIONS, OPTIONAL_ADDON_NAMES
from components.core.version_skew import MAX_NODE_MINORS_BEHIND, node_skew_problem, upgrade_problem
from programs.deployed_version import from_plan
from programs.offline import REPO_ROOT
from programs.platformctl.cli import main
from tests.conftest import offline_run, shipped_config

KEY = "k8s-platform:cluster.eks.version"


def _prod_file(tmp_path, **eks) -> str:
    doc = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())
    doc["config"]["k8s-platform:cluster"]["eks"].update(eks)
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _plan_at(tmp_path, version: str) -> str:
    """A saved plan of the deployed stack, as `preview --offline --json` writes it (outputs reduced)."""
    plan = {"project": "k8s-platform", "stack": "prod", "resources": [], "outputs": {"kubernetesVersion": version}}
    path = tmp_path / f"plan-{version}.json"
    path.write_text(json.dumps(plan))
    return str(path)


def test_acceptance_previous_plan_at_134_and_version_136_exits_2_naming_the_key(tmp_path, capsys):
    stack = _prod_file(tmp_path, version="1.36")
    code = main(
        [
            "preview",
            "--stack",
            "prod",
            "--offline",
            "--config-file",
            stack,
            "--previous-plan",
            _plan_at(tmp_path, "1.34"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"{KEY}: the control plane is deployed at 1.34: 1.34 -> 1.36 skips 1.35" in err
    assert "1.34 -> 1.35 -> 1.36" in err and "Traceback" not in err


def test_previous_plan_one_minor_below_previews_and_a_downgrade_is_refused(tmp_path, capsys):
    stack = _prod_file(tmp_path, version="1.36")
    args = ["preview", "--stack", "prod", "--offline", "--config-file", stack, "--quiet", "--previous-plan"]
    assert main([*args, _plan_at(tmp_path, "1.35")]) == 0
    capsys.readouterr()
    down = _prod_file(tmp_path, version="1.35")
    assert (
        main(
            [
                "preview",
                "--stack",
                "prod",
                "--offline",
                "--config-file",
                down,
                "--previous-plan",
                _plan_at(tmp_path, "1.36"),
            ]
        )
        == 2
    )
    assert "1.36 -> 1.35 is a downgrade" in capsys.readouterr().err


def test_the_deployed_version_is_read_from_a_real_saved_plan():
    from programs.plan import build_plan

    plan = build_plan(offline_run("prod"))
    assert plan["outputs"]["kubernetesVersion"] == "1.35" == from_plan(plan)
    del plan["outputs"]["kubernetesVersion"]  # a plan of an older release: the cluster resource's version
    assert from_plan(plan) == "1.35"


def test_prod_exports_what_the_upgrade_reads():
    outputs = offline_run("prod").outputs
    assert outputs["kubernetesVersion"] == "1.35"
    optional = set(OPTIONAL_ADDON_NAMES)  # installed only when their config section enables them
    assert outputs["addonVersions"] == {a: v for a, v in ADDON_VERSIONS["1.35"].items() if a not in optional}
    assert outputs["systemNodeGroup"]["kubernetesVersion"] == "1.35"
    assert "kubernetesVersion" not in offline_run("dev").outputs  # K3s: not an EKS lifecycle


@pytest.mark.parametrize(
    "deployed, target, expected",
    [
        ("1.35", "1.35", None),
        ("1.35", "1.36", None),
        ("1.34", "1.36", "skips 1.35"),
        ("1.33", "1.36", "skips 1.34, 1.35"),
        ("1.36", "1.35", "downgrade"),
    ],
)
def test_upgrade_problem(deployed, target, expected):
    problem = upgrade_problem(deployed, target)
    assert problem is None if expected is None else expected in problem


def test_skew_policy_kubelet_up_to_three_minors_older_never_newer():
    assert MAX_NODE_MINORS_BEHIND == 3
    assert node_skew_problem("1.36", "v1.33.5-eks-113cf36") is None
    assert "4 minors behind" in node_skew_problem("1.36", "v1.32.9-eks-113cf36")
    assert "newer than the control plane" in node_skew_problem("1.35", "1.36")


def test_config_refuses_nodes_or_kube_proxy_outside_the_skew_policy():
    raw = shipped_config("prod")
    eks = raw["k8s-platform:cluster"]["eks"]
    eks["systemNodeGroup"]["version"] = "1.36"  # nodes newer than the 1.35 control plane
    eks["addonVersions"] = {"kube-proxy": ADDON_VERSIONS["1.36"]["kube-proxy"]}
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    text = str(err.value)
    assert "k8s-platform:cluster.eks.systemNodeGroup.version: the system nodes at 1.36 would be newer" in text
    assert "k8s-platform:cluster.eks.addonVersions: kube-proxy" in text
    eks["systemNodeGroup"]["version"] = "1.34"  # one behind: what `platformctl upgrade` holds
    eks["addonVersions"] = {"kube-proxy": ADDON_VERSIONS["1.34"]["kube-proxy"]}
    assert parse_stack_config(raw).cluster.eks.system_node_group.version == "1.34"


def test_a_held_node_version_reaches_the_node_group():
    raw = shipped_config("prod")
    raw["k8s-platform:cluster"]["eks"].update(version="1.36", deployedVersion="1.35")
    raw["k8s-platform:cluster"]["eks"]["systemNodeGroup"]["version"] = "1.35"
    from programs.offline import run_offline

    run = run_offline("prod", raw)
    (ng,) = run.of_type("aws:eks/nodeGroup:NodeGroup")
    (cluster,) = run.of_type("aws:eks/cluster:Cluster")
    assert (cluster.inputs["version"], ng.inputs["version"]) == ("1.36", "1.35")


@pytest.mark.parametrize("minor", sorted(CALENDAR))
def test_support_warning_starts_90_days_before_standard_support_ends(minor):
    end = CALENDAR[minor].end_of_standard
    assert SUPPORT_WARNING_WINDOW == dt.timedelta(days=90)
    assert support_warning(minor, "STANDARD", end - dt.timedelta(days=91)) is None
    warning = support_warning(minor, "STANDARD", end - dt.timedelta(days=90))
    assert warning and f"leaves standard support on {end.isoformat()} (in 90 days)" in warning
    assert "EKS then upgrades the control plane itself" in warning
    assert "billed at the extended-support rate" in support_warning(minor, "EXTENDED", end - dt.timedelta(days=10))
    assert "is in extended support" in support_warning(minor, "EXTENDED", end + dt.timedelta(days=1))
    assert support_warning(minor, "STANDARD", end + dt.timedelta(days=1)) is None  # refused by config instead


def test_preview_prints_the_support_warning_and_keeps_it_in_the_plan(tmp_path, capsys):
    # 1.34 on EXTENDED: a warning whatever today's date until its extended support ends (2027-12-02).
    stack = _prod_file(tmp_path, version="1.34", upgradePolicy={"supportType": "EXTENDED"})
    out = tmp_path / "plan.json"
    main(["preview", "--stack", "prod", "--offline", "--config-file", stack, "--quiet", "--json", str(out)])
    err = capsys.readouterr().err
    assert "warning: EKS 1.34" in err and "extended-support rate" in err
    assert [w for w in json.loads(out.read_text())["warnings"] if w.startswith("EKS 1.34")]


def test_the_api_preview_carries_the_support_warning_as_an_engine_warning(tmp_path):
    from programs import api

    stack = _prod_file(tmp_path, version="1.34", upgradePolicy={"supportType": "EXTENDED"})
    seen = []
    result = api.preview("prod", config_file=stack, use_cache=False, on_event=seen.append)
    assert any(w.startswith("EKS 1.34") for w in result.warnings)
    assert any(e.diagnostic_event and e.diagnostic_event.severity == "warning" for e in seen)


def test_a_cluster_running_a_minor_past_standard_support_can_still_be_upgraded_from_it():
    """1.33 left standard support on 2026-07-29: a new cluster on it (supportType STANDARD) is refused, but a
    cluster known to run it (`deployedVersion`) previews, with the refusal's text as a warning, and
    `platformctl upgrade` plans from it."""
    raw = shipped_config("prod")
    eks = raw["k8s-platform:cluster"]["eks"]
    eks.update(version="1.33", upgradePolicy={"supportType": "STANDARD"})
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    assert any(
        p.startswith("k8s-platform:cluster.eks.version: EKS 1.33 left standard support") for p in err.value.problems
    )
    from programs.api.upgrade import _as_running

    running = _as_running(raw)
    assert running["k8s-platform:cluster"]["eks"]["deployedVersion"] == "1.33"
    assert "deployedVersion" not in raw["k8s-platform:cluster"]["eks"]  # the caller's config is not changed
    assert parse_stack_config(running).cluster.eks.version == "1.33"


def test_a_k3s_previous_plan_tells_the_program_the_deployed_release(tmp_path, capsys):
    """`--previous-plan` on K3s: the plan's `k3sVersion` becomes `cluster.k3s.deployedVersion`, so a minor
    downgrade (etcd 3.6 cannot go back) is refused naming the key."""
    previous = tmp_path / "previous.json"
    previous.write_text(json.dumps({"resources": [], "outputs": {"k3sVersion": "v1.36.4+k3s1"}}))
    assert from_plan(json.loads(previous.read_text())) == "v1.36.4+k3s1"
    code = main(["preview", "--offline", "--quiet", "--stack", "dev", "--previous-plan", str(previous)])
    assert code == 2
    assert "k8s-platform:cluster.k3s.version" in capsys.readouterr().err
