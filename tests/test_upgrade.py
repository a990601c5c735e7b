"""`platformctl upgrade`: the documented order as separate updates, refusals before anything changes,
health checks between the steps, resume after a fix; with recorded engine events and EKS responses
(tests/upgrade_fakes.py) and no CLI."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import yaml
from pulumi import automation as auto

from components.config import parse_stack_config
from components.core.pins import ADDON_VERSIONS
from programs.api import upgrade
from programs.offline import REPO_ROOT
from programs.platformctl import exit_codes
from programs.platformctl import upgrade as upgrade_cmd
from programs.platformctl.cli import main
from tests.upgrade_fakes import RECORDED_OUTPUTS, FakeEks, FakeStack, World


def _project(tmp_path: Path, version: str) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    doc = yaml.safe_load((tmp_path / "Pulumi.prod.yaml").read_text())
    eks = doc["config"]["k8s-platform:cluster"]["eks"]
    eks["version"] = version
    eks["upgradePolicy"] = {"supportType": "EXTENDED"}  # 1.34 stays valid whatever today's date
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (tmp_path / "policy" / "config").mkdir(parents=True)
    (tmp_path / "policy" / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "policy" / "config" / "prod.json").write_text("{}\n")
    return tmp_path


def _world(version: str) -> World:
    return World(
        cluster_version=version,
        addons={a: {"version": v, "status": "ACTIVE"} for a, v in ADDON_VERSIONS[version].items()},
        node_group_version=version,
        kubelets=[f"v{version}.2-eks-0a1b2c3"] * 3,
    )


def _run(root: Path, stack: FakeStack, eks: FakeEks, target: str, **kw) -> upgrade.UpgradeResult:
    lines: list[str] = []
    result = upgrade.run_upgrade(
        "prod",
        target,
        root=root,
        opener=lambda req: stack,
        probe=upgrade.Probe(
            eks,
            lambda: [
                {"metadata": {"name": f"n{i}"}, "status": {"nodeInfo": {"kubeletVersion": k}}}
                for i, k in enumerate(eks.world.kubelets)
            ],
        ),
        on_line=lines.append,
        **kw,
    )
    result.lines = lines  # type: ignore[attr-defined]
    return result


def _eks(config: dict) -> dict:
    return config["k8s-platform:cluster"]["eks"]


# EKS lists the 1.35 builds of vpc-cni and CoreDNS for 1.34 too (the recorded responses list only the pinned minors).
BOTH_MINORS = {
    ("vpc-cni", "1.34"): [ADDON_VERSIONS["1.35"]["vpc-cni"]],
    ("coredns", "1.34"): [ADDON_VERSIONS["1.35"]["coredns"]],
}


def test_add_ons_with_no_target_build_valid_on_the_current_minor_stop_the_upgrade_before_it_starts(tmp_path):
    root = _project(tmp_path, "1.34")
    world = _world("1.34")
    stack = FakeStack(world, root / "Pulumi.prod.yaml")
    result = _run(root, stack, FakeEks(world, {("coredns", "1.34"): [ADDON_VERSIONS["1.35"]["coredns"]]}), "1.35")
    assert result.code == exit_codes.CONFIG_ERROR
    assert f"vpc-cni {ADDON_VERSIONS['1.35']['vpc-cni']}" in result.message and "coredns" not in result.message
    assert "cannot go first" in result.message and stack.ups == []


def test_the_steps_run_in_order_each_a_valid_stack_config(tmp_path):
    root = _project(tmp_path, "1.34")
    world = _world("1.34")
    stack, eks = FakeStack(world, root / "Pulumi.prod.yaml"), FakeEks(world, BOTH_MINORS)
    result = _run(root, stack, eks, "1.35")
    assert result.code == exit_codes.OK, result.message
    assert [r.step for r in result.runs] == ["addons", "control-plane", "data-plane", "kube-proxy"]
    a, b, c, d = stack.ups
    pins34, pins35 = ADDON_VERSIONS["1.34"], ADDON_VERSIONS["1.35"]
    # (a) the 1.35 builds of vpc-cni and CoreDNS on the 1.34 control plane; kube-proxy not yet.
    assert a["version"] == "1.34" and a["addonVersions"] == {
        "vpc-cni": pins35["vpc-cni"],
        "coredns": pins35["coredns"],
    }
    # (b) the control plane, nodes and kube-proxy held at 1.34.
    assert (b["version"], b["deployedVersion"], b["systemNodeGroup"]["version"]) == ("1.35", "1.34", "1.34")
    assert b["addonVersions"] == {"kube-proxy": pins34["kube-proxy"]}
    # (c) the nodes follow; (d) kube-proxy last.
    assert "version" not in c["systemNodeGroup"] and c["deployedVersion"] == "1.35"
    assert c["addonVersions"] == {"kube-proxy": pins34["kube-proxy"]}
    assert "addonVersions" not in d or d["addonVersions"] == {}
    # Every intermediate config is one the program accepts (it runs the whole program each time).
    raw = yaml.safe_load((root / "Pulumi.prod.yaml").read_text())["config"]
    for deployed in stack.ups:
        raw["k8s-platform:cluster"]["eks"] = deployed
        parse_stack_config(raw)
    final = _eks(yaml.safe_load((root / "Pulumi.prod.yaml").read_text())["config"])
    assert (final["version"], final["deployedVersion"]) == ("1.35", "1.35")
    assert world.cluster_version == world.node_group_version == "1.35"
    assert world.addons["kube-proxy"]["version"] == pins35["kube-proxy"]
    # Health was checked between the updates, through the EKS API.
    assert eks.calls.count("DescribeCluster prod-eks") >= 5
    assert "DescribeNodegroup prod-eks-system-20261104091512345600000001" in eks.calls
    assert result.lines[-1] == "stack 'prod' upgraded to EKS 1.35"


def test_a_skipped_minor_is_refused_with_the_path_and_nothing_runs(tmp_path):
    root = _project(tmp_path, "1.34")
    world = _world("1.34")
    stack = FakeStack(world, root / "Pulumi.prod.yaml")
    result = _run(root, stack, FakeEks(world), "1.36")
    assert result.code == exit_codes.CONFIG_ERROR
    assert "1.34 -> 1.36 skips 1.35" in result.message and "1.34 -> 1.35 -> 1.36" in result.message
    assert stack.ups == []
    down = _run(root, stack, FakeEks(world), "1.33")
    assert down.code == exit_codes.CONFIG_ERROR and "downgrade" in down.message and stack.ups == []


def test_nodes_beyond_the_skew_policy_of_the_target_are_refused(tmp_path):
    root = _project(tmp_path, "1.35")
    world = _world("1.35")
    world.kubelets = ["v1.35.2-eks-0a1b2c3", "v1.32.9-eks-113cf36"]  # a Karpenter node on an old custom AMI
    stack = FakeStack(world, root / "Pulumi.prod.yaml")
    result = _run(root, stack, FakeEks(world), "1.36")
    assert result.code == exit_codes.CONFIG_ERROR
    assert "v1.32.9-eks-113cf36" in result.message and "4 minors behind" in result.message
    assert stack.ups == []


def test_a_degraded_add_on_stops_the_upgrade_before_the_control_plane(tmp_path):
    root = _project(tmp_path, "1.34")
    world = _world("1.34")
    stack, eks = FakeStack(world, root / "Pulumi.prod.yaml"), FakeEks(world, BOTH_MINORS)

    def degrade(w: World, n: int) -> None:
        if n == 0:
            w.addons["coredns"]["status"] = "DEGRADED"
            w.addons["coredns"]["issues"] = [("InsufficientNumberOfReplicas", "The add-on is unhealthy")]

    stack.after_up.append(degrade)
    result = _run(root, stack, eks, "1.35")
    assert result.code == exit_codes.CHECK_FAILED
    assert "stopped after step addons" in result.message
    assert (
        "coredns" in result.message
        and "DEGRADED" in result.message
        and "InsufficientNumberOfReplicas" in result.message
    )
    assert len(stack.ups) == 1 and world.cluster_version == "1.34"


def test_a_degraded_add_on_before_the_upgrade_changes_nothing(tmp_path):
    root = _project(tmp_path, "1.35")
    world = _world("1.35")
    world.addons["vpc-cni"]["status"] = "DEGRADED"
    stack = FakeStack(world, root / "Pulumi.prod.yaml")
    result = _run(root, stack, FakeEks(world), "1.36")
    assert (
        result.code == exit_codes.CHECK_FAILED and "nothing changed" in result.message and "vpc-cni" in result.message
    )
    assert stack.ups == []


def test_a_failed_step_is_resumed_by_running_the_same_command_again(tmp_path):
    root = _project(tmp_path, "1.34")
    world = _world("1.34")
    failure = auto.errors.CommandError(auto.CommandResult(stdout="", stderr="error: update failed\n", code=255))
    stack = FakeStack(world, root / "Pulumi.prod.yaml", fail={"control-plane": failure})
    eks = FakeEks(world, BOTH_MINORS)
    first = _run(root, stack, eks, "1.35")
    assert first.code == exit_codes.DEPLOY_FAILED
    assert [r.step for r in first.runs] == ["addons", "control-plane"]
    assert "InvalidParameterException" in first.message and "resumes at the first step not done" in first.message
    assert world.cluster_version == "1.34" and world.addons["coredns"]["version"] == ADDON_VERSIONS["1.35"]["coredns"]
    # Fixed (the failure does not repeat): the same command goes on where it stopped.
    second = _run(root, stack, eks, "1.35")
    assert second.code == exit_codes.OK, second.message
    assert [r.step for r in second.runs] == ["control-plane", "data-plane", "kube-proxy"]
    assert "step 1/4 addons: already done" in second.lines
    # And once more: nothing left to do, no update.
    ups = len(stack.ups)
    third = _run(root, stack, eks, "1.35")
    assert third.code == exit_codes.OK and len(stack.ups) == ups
    assert "stack 'prod' is already at 1.35: nothing to do" in third.lines


def ns(**kw) -> argparse.Namespace:
    base = dict(
        stack="prod",
        target="1.36",
        dry_run=True,
        config_file=None,
        outputs=RECORDED_OUTPUTS,
        kubeconfig=None,
        policy_config=None,
        no_aws=True,
        quiet=True,
        yes=False,
    )
    base.update(kw)
    return argparse.Namespace(**base)


def test_acceptance_dry_run_refuses_137_and_prints_the_136_steps(capsys):
    assert (
        main(
            ["upgrade", "--stack", "prod", "--to", "1.37", "--dry-run", "--outputs", str(RECORDED_OUTPUTS), "--no-aws"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "deployed at 1.35" in err and "1.35 -> 1.36 -> 1.37" in err and "starting with 1.36" in err
    assert (
        main(
            ["upgrade", "--stack", "prod", "--to", "1.36", "--dry-run", "--outputs", str(RECORDED_OUTPUTS), "--no-aws"]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    steps = [line.strip() for line in out if line.strip()[:2] in ("1.", "2.", "3.", "4.")]
    assert [s.split(":")[0] for s in steps] == ["1. addons", "2. control-plane", "3. data-plane", "4. kube-proxy"]
    assert "control plane -> 1.36" in "\n".join(out)
    assert f"kube-proxy -> {ADDON_VERSIONS['1.36']['kube-proxy']}" in "\n".join(out)
    assert any("cluster.eks.systemNodeGroup.version=1.35" in line for line in out)  # nodes held during (b)


def test_a_real_run_needs_a_yes_off_a_terminal(tmp_path, capsys):
    root = _project(tmp_path, "1.35")
    world = _world("1.35")
    stack = FakeStack(world, root / "Pulumi.prod.yaml")
    code = upgrade_cmd.run(ns(dry_run=False), opener=lambda req: stack, root=root)
    assert code == exit_codes.CONFIG_ERROR and "--yes" in capsys.readouterr().err and stack.ups == []
    code = upgrade_cmd.run(ns(dry_run=False, yes=True, config_file=root / "Pulumi.prod.yaml"), opener=lambda req: stack)
    assert code == exit_codes.CONFIG_ERROR and "--config-file is for --dry-run" in capsys.readouterr().err


def test_a_real_run_shows_each_steps_engine_progress_and_summary(tmp_path, capsys):
    root = _project(tmp_path, "1.35")
    world = _world("1.35")
    stack, eks = FakeStack(world, root / "Pulumi.prod.yaml"), FakeEks(world)
    probe = upgrade.Probe(eks, lambda: [])
    args = ns(dry_run=False, yes=True, outputs=None, no_aws=False, quiet=False)
    assert upgrade_cmd.run(args, opener=lambda req: stack, probe=probe, root=root) == 0
    out = capsys.readouterr().out
    assert "step 1/4 addons: already done" in out  # 1.35 -> 1.36: the same builds but kube-proxy
    assert "  [control-plane]  ~ aws:eks/cluster:Cluster  eks-cluster  updated (1 done)" in out
    assert "  up (control-plane) prod: 1 updated, 176 unchanged" in out
    assert "  [kube-proxy]  ~ aws:eks/addon:Addon  eks-networking-kube-proxy  updated (1 done)" in out
    assert out.index("[control-plane]") < out.index("[data-plane]") < out.index("[kube-proxy]")
    assert "stack 'prod' upgraded to EKS 1.36" in out


def test_a_dry_run_from_recorded_outputs_goes_on_when_aws_cannot_be_asked_a_real_run_does_not(tmp_path):
    from botocore.exceptions import NoCredentialsError

    class NoCredentials(FakeEks):
        def describe_cluster(self, name):
            raise NoCredentialsError()

    root = _project(tmp_path, "1.35")
    world = _world("1.35")
    outputs = yaml.safe_load(RECORDED_OUTPUTS.read_text())
    stack = FakeStack(world, root / "Pulumi.prod.yaml")
    dry = _run(root, stack, NoCredentials(world), "1.36", dry_run=True, outputs=outputs)
    assert dry.code == exit_codes.OK and dry.lines[0].startswith("note: AWS/Kubernetes APIs not reachable")
    real = _run(root, stack, NoCredentials(world), "1.36", outputs=outputs)
    assert real.code == exit_codes.CREDENTIALS_MISSING and "Unable to locate credentials" in real.message
    assert stack.ups == []


def test_k3s_stacks_are_not_upgraded_here(capsys):
    code = main(["upgrade", "--stack", "dev", "--to", "1.36", "--dry-run", "--outputs", str(RECORDED_OUTPUTS)])
    assert code == exit_codes.CONFIG_ERROR and "runs K3s" in capsys.readouterr().err


def test_doctor_accepts_kube_proxy_held_within_the_skew_policy_and_fails_a_newer_one():
    from programs.platformctl.doctor.addons import addon_health
    from tests.conftest import shipped_config

    raw = shipped_config("prod")
    eks_cfg = raw["k8s-platform:cluster"]["eks"]
    eks_cfg.update(version="1.36", deployedVersion="1.36")
    eks_cfg["addonVersions"] = {"kube-proxy": ADDON_VERSIONS["1.35"]["kube-proxy"]}  # the upgrade's hold

    class Ctx:
        config = parse_stack_config(raw)
        cluster_name = "prod-eks"

        def __init__(self, world):
            self.eks = FakeEks(world)

        def aws(self, service):
            return self.eks

    world = _world("1.36")
    world.addons["kube-proxy"]["version"] = ADDON_VERSIONS["1.35"]["kube-proxy"]
    assert addon_health(Ctx(world)).verdict == "ok"
    world.cluster_version = "1.35"  # a kube-proxy newer than its control plane
    world.addons = {a: {"version": v, "status": "ACTIVE"} for a, v in ADDON_VERSIONS["1.35"].items()}
    world.addons["kube-proxy"]["version"] = ADDON_VERSIONS["1.36"]["kube-proxy"]
    eks_cfg.update(version="1.35", deployedVersion="1.35", addonVersions={})
    Ctx.config = parse_stack_config(raw)
    result = addon_health(Ctx(world))
    assert result.verdict == "fail" and any("newer than the control plane" in f for f in result.findings)


def test_a_target_build_eks_does_not_list_for_the_target_is_refused(tmp_path):
    class Unlisted(FakeEks):
        def describe_addon_versions(self, addonName, kubernetesVersion, nextToken=None):
            doc = super().describe_addon_versions(addonName, kubernetesVersion, nextToken)
            if addonName == "kube-proxy" and kubernetesVersion == "1.36":
                doc["addons"][0]["addonVersions"] = []  # EKS has no such 1.36 build
            return doc

    root = _project(tmp_path, "1.35")
    world = _world("1.35")
    stack = FakeStack(world, root / "Pulumi.prod.yaml")
    result = _run(root, stack, Unlisted(world), "1.36")
    assert result.code == exit_codes.CONFIG_ERROR
    assert f"kube-proxy {ADDON_VERSIONS['1.36']['kube-proxy']} for 1.36" in result.message and stack.ups == []


def test_nodes_held_by_the_user_at_another_minor_are_refused_not_silently_rolled(tmp_path):
    root = _project(tmp_path, "1.35")
    doc = yaml.safe_load((root / "Pulumi.prod.yaml").read_text())
    doc["config"]["k8s-platform:cluster"]["eks"]["systemNodeGroup"]["version"] = "1.34"
    (root / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    world = _world("1.35")
    world.node_group_version = "1.34"
    stack = FakeStack(world, root / "Pulumi.prod.yaml")
    result = _run(root, stack, FakeEks(world), "1.36")
    assert result.code == exit_codes.CONFIG_ERROR and "holds the system nodes at 1.34" in result.message
    assert stack.ups == []


def test_an_auto_mode_cluster_upgrades_only_its_control_plane():
    """Under EKS Auto Mode AWS upgrades the add-ons it runs and drifts its nodes: one step, whose config
    the program accepts (no system node group or add-on keys, which Auto Mode refuses)."""
    from tests.test_eks_auto_mode import auto_mode_config

    raw = auto_mode_config()
    cfg = parse_stack_config(raw)
    observed = upgrade.observe(
        cfg, {"kubernetesVersion": "1.35", "addonVersions": {}, "computeMode": "auto-mode"}, None
    )
    plan = upgrade.plan_upgrade("prod", cfg, observed, "1.36")
    assert [s.id for s in plan.steps] == ["control-plane"]
    (step,) = plan.steps
    assert dict(step.config) == {upgrade.VERSION_KEY: "1.36", upgrade.DEPLOYED_KEY: "1.35"}
    assert step.expect_addons == {} and step.expect_node_group is None
    eks = raw["k8s-platform:cluster"]["eks"]
    eks.update(version="1.36", deployedVersion="1.35")
    assert parse_stack_config(raw).cluster.eks.version == "1.36"
