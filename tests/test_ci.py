"""Ephemeral CI clusters: the `ci` environment's rules and plan (one untainted server, no agents, nothing
protected, short retentions, the expiry tag on every taggable resource, 0 mandatory violations), and
`platformctl ci up|down|reap` on the Automation API with an injected opener, workspace and clock."""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import importlib
import inspect
import json
import re
import shutil
import stat
import threading
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto
from pulumi.automation import events as ev

from components.config import ConfigError, parse_stack_config
from components.config.ci import EXPIRY_TAG, apply_ci_defaults
from programs.api import ci as api_ci
from programs.api.ci import EXPIRY_STACK_TAG, render_ci_stack
from programs.offline import REPO_ROOT, OfflineRun, read_stack_file, run_offline
from programs.plan import build_plan
from programs.platformctl import exit_codes
from programs.platformctl.cli import build_parser, main
from programs.platformctl.policy_gate import apply_policies
from tests.cloud_init_schema import schema_errors
from tests.shellcheck import shellcheck_findings

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
EXPIRES = "2026-12-01T14:00:00Z"
TEMPLATE = REPO_ROOT / "stacks" / "ci.yaml"


def template_config() -> dict:
    return read_stack_file(TEMPLATE)


def ci_config(name: str = "pr-123", when: dt.datetime = NOW + dt.timedelta(hours=2)) -> dict:
    return render_ci_stack(template_config(), name, when)["config"]


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    return err.value.problems


# --- config ---------------------------------------------------------------------------------------


def test_the_template_renders_a_valid_ci_stack_per_run():
    cfg = parse_stack_config(ci_config())
    assert cfg.environment == "ci" and cfg.cluster_name == "ci-pr-123"
    assert cfg.ci is not None and cfg.ci.expires_at == EXPIRES
    assert cfg.resource_tags()[EXPIRY_TAG] == EXPIRES
    assert cfg.safeguards_in_force.ephemeral and not cfg.safeguards_in_force.protect_stateful_resources
    assert cfg.identity.issuer_url == "https://ci-pr-123-oidc-111111111111.s3.us-east-1.amazonaws.com"
    other = parse_stack_config(ci_config("pr-124"))
    assert other.cluster_name == "ci-pr-124" and other.identity.issuer_url != cfg.identity.issuer_url


@pytest.mark.parametrize(
    "value, text",
    [
        ("2026-12-01 14:00", "is not an RFC 3339 date-time in UTC like 2026-12-01T14:30:00Z"),
        ("2026-12-01T14:00:00+02:00", "must be in UTC (suffix Z)"),
        ("2026-13-01T14:00:00Z", "is not a valid date-time"),
        ("tomorrow", "is not an RFC 3339 date-time"),
    ],
)
def test_the_expiry_must_be_an_rfc3339_utc_timestamp(value, text):
    raw = ci_config()
    raw["k8s-platform:ci"] = {"expiresAt": value}
    [problem] = problems(raw)
    assert problem.startswith("k8s-platform:ci.expiresAt: ") and text in problem, problem


def test_an_expiry_is_normalised_to_whole_seconds_z():
    raw = ci_config()
    raw["k8s-platform:ci"] = {"expiresAt": "2026-12-01T14:00:00.250+00:00"}
    assert parse_stack_config(raw).ci.expires_at == "2026-12-01T14:00:00Z"


def test_ci_rules_report_every_problem_at_once():
    raw = ci_config()
    del raw["k8s-platform:ci"]
    raw["k8s-platform:cluster"]["k3s"]["servers"] = {"count": 3, "instanceType": "t3.large"}
    raw["k8s-platform:cluster"]["k3s"]["agents"] = {"instanceTypes": ["t3.large"]}
    raw["k8s-platform:safeguards"] = {"protectStatefulResources": True}
    raw["k8s-platform:network"]["flowLogs"] = {"retentionDays": 30}
    raw["k8s-platform:cluster"]["k3s"]["snapshots"]["retention"] = 12
    found = problems(raw)
    for key in (
        "ci.expiresAt: is required with environment ci",
        "cluster.k3s.servers.count: environment ci runs exactly 1 server, 3 given",
        "cluster.k3s.agents: environment ci has no agents group",
        "safeguards.protectStatefulResources: environment ci is destroyed with its pipeline run",
        "network.flowLogs.retentionDays: 30 days; environment ci keeps logs at most 7 days",
        "cluster.k3s.snapshots.retention: 12 snapshots; environment ci keeps at most 5",
    ):
        assert any(p.startswith(f"k8s-platform:{key}") for p in found), (key, found)


def test_ci_is_k3s_only_and_the_expiry_is_ci_only():
    raw = ci_config()
    raw["k8s-platform:cluster"] = {"kind": "eks", "name": "ci-pr-123"}
    assert any(p.startswith("k8s-platform:cluster.kind: environment ci runs K3s") for p in problems(raw))
    dev = copy.deepcopy(read_stack_file(REPO_ROOT / "Pulumi.dev.yaml"))
    dev["k8s-platform:ci"] = {"expiresAt": EXPIRES}
    assert problems(dev) == ["k8s-platform:ci: applies to environment ci; this stack is dev (remove the block)"]


def test_ci_profile_defaults_fill_only_unset_keys():
    raw = ci_config()
    raw["k8s-platform:network"] = {
        k: v for k, v in raw["k8s-platform:network"].items() if k not in ("natGateways", "flowLogs")
    }
    del raw["k8s-platform:cluster"]["k3s"]["snapshots"]
    cfg = parse_stack_config(raw)
    assert cfg.network.nat_gateways == "single" and cfg.network.flow_logs.retention_days == 1
    assert cfg.cluster.k3s.snapshots.retention == 2
    raw["k8s-platform:network"]["natGateways"] = "one-per-az"
    assert parse_stack_config(raw).network.nat_gateways == "one-per-az"  # an explicit value stays
    dev = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    assert (
        apply_ci_defaults({k.split(":", 1)[1]: v for k, v in dev.items() if ":" in k})["network"]
        == dev["k8s-platform:network"]
    )


# --- the plan ---------------------------------------------------------------------------------------

_RUNS: dict[str, OfflineRun] = {}


def ci_run(karpenter: bool = False) -> OfflineRun:
    key = f"karpenter={karpenter}"
    if key not in _RUNS:
        raw = ci_config()
        if karpenter:
            raw["k8s-platform:karpenter"] = {"enabled": True}
        _RUNS[key] = run_offline("ci-pr-123", raw)
    return _RUNS[key]


def _aws_class(typ: str):
    package, module_path, name = typ.split(":")
    module = module_path.split("/")[0]
    try:
        mod = importlib.import_module(f"pulumi_aws.{module}")
    except ImportError:  # python keywords: lambda -> lambda_
        mod = importlib.import_module(f"pulumi_aws.{module}_")
    return getattr(mod, name)


def takes_tags(typ: str) -> bool:
    """Whether the AWS resource type has a `tags` input (from the provider SDK's own signature)."""
    if not typ.startswith("aws:") or typ.startswith("pulumi:"):
        return False
    return "tags" in inspect.signature(_aws_class(typ)._internal_init).parameters


def tag_map(tags) -> dict:
    if isinstance(tags, list):  # the Auto Scaling group form
        return {t["key"]: t["value"] for t in tags}
    return dict(tags or {})


@pytest.mark.parametrize("karpenter", [False, True])
def test_every_taggable_resource_of_a_ci_plan_carries_the_expiry(karpenter):
    run = ci_run(karpenter)
    taggable = [r for r in run.resources if r.custom and takes_tags(r.type)]
    assert len({r.type for r in taggable}) >= 25  # the walk covers the whole stack, not a handful
    missing = [f"{r.type} {r.name}" for r in taggable if tag_map(r.inputs.get("tags")).get(EXPIRY_TAG) != EXPIRES]
    assert missing == []
    templates = run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert templates and all(
        tag_map(spec["tags"])[EXPIRY_TAG] == EXPIRES for t in templates for spec in t.inputs["tagSpecifications"]
    )  # the instances and volumes the groups launch
    provider = run.one("pulumi:providers:aws")
    assert json.loads(provider.inputs["defaultTags"])["tags"] == {EXPIRY_TAG: EXPIRES}
    if karpenter:  # the nodes Karpenter launches outlive no stack unnoticed either
        [node_class] = run.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
        assert node_class.inputs["spec"]["tags"][EXPIRY_TAG] == EXPIRES


def test_a_ci_plan_protects_nothing_and_destroys_whole():
    run = ci_run()
    assert [r.name for r in run.resources if r.protect] == []
    buckets = run.of_type("aws:s3/bucket:Bucket")
    assert buckets and all(b.inputs.get("forceDestroy") is True for b in buckets)
    assert run.one("aws:lb/loadBalancer:LoadBalancer").inputs.get("enableDeletionProtection") is False
    assert {s.inputs.get("recoveryWindowInDays") for s in run.of_type("aws:secretsmanager/secret:Secret")} <= {0, None}
    assert all(not k.inputs.get("skipDestroy") for k in run.of_type("aws:cloudwatch/logGroup:LogGroup"))


def test_a_ci_plan_is_one_untainted_server_with_short_retentions_and_one_nat():
    run = ci_run()
    groups = run.of_type("aws:autoscaling/group:Group")
    assert [g.inputs["name"] for g in groups] == ["ci-pr-123-k3s-server-bootstrap"]  # no agents group
    [template] = run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    cloud_config = yaml.safe_load(base64.b64decode(template.inputs["userData"]).decode())
    k3s_config = next(
        yaml.safe_load(f["content"]) for f in cloud_config["write_files"] if f["path"].endswith("config.yaml")
    )
    assert not k3s_config.get("node-taint")  # the server runs the workloads
    assert k3s_config["etcd-snapshot-retention"] == 2
    assert {g.inputs["retentionInDays"] for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")} == {1}
    lifecycle = run.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    snapshot_rules = [r for lc in lifecycle for r in lc.inputs["rules"] if r["id"] == "expire-noncurrent-snapshots"]
    assert [r["noncurrentVersionExpiration"]["noncurrentDays"] for r in snapshot_rules] == [1]
    assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == 1


@pytest.mark.parametrize("karpenter", [False, True])
def test_a_ci_plan_has_no_mandatory_violation(karpenter):
    run = ci_run(karpenter)
    plan = apply_policies(build_plan(run), run, "ci-pr-123")
    assert plan["policy"]["config"].endswith("policy/config/ci.json")
    mandatory = [v for v in plan["policy"]["violations"] if v["level"] == "mandatory"]
    assert mandatory == [], mandatory
    if karpenter:
        return
    # ...and the pack's ci config is what makes the expiry mandatory: a resource without it fails.
    vpc = next(r for r in run.resources if r.type == "aws:ec2/vpc:Vpc")
    stripped = copy.deepcopy(run)
    bad = next(r for r in stripped.resources if r.urn == vpc.urn)
    bad.inputs["tags"] = {k: v for k, v in bad.inputs["tags"].items() if k != EXPIRY_TAG}
    failed = apply_policies(build_plan(stripped), stripped, "ci-pr-123")["policy"]["violations"]
    assert [(v["policy"], v["urn"]) for v in failed if v["level"] == "mandatory"] == [("required-tags", vpc.urn)]


def test_lasting_stacks_carry_no_expiry(dev_run):
    assert not any(EXPIRY_TAG in tag_map(r.inputs.get("tags")) for r in dev_run.resources)
    assert "defaultTags" not in dev_run.one("pulumi:providers:aws").inputs


# --- platformctl ci on the Automation API -------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The files `platformctl ci` reads: the project, the template, a policy pack skeleton with its ci config."""
    shutil.copy(REPO_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "stacks").mkdir()
    shutil.copy(TEMPLATE, tmp_path / "stacks" / "ci.yaml")
    (tmp_path / "policy" / "config").mkdir(parents=True)
    (tmp_path / "policy" / "PulumiPolicy.yaml").write_text("runtime: python\n")
    shutil.copy(REPO_ROOT / "policy" / "config" / "ci.json", tmp_path / "policy" / "config" / "ci.json")
    return tmp_path


class FakeWorkspace:
    """Stands in for `auto.LocalWorkspace`: stack tags, the stack list, removal; records every call."""

    def __init__(self, stacks: dict[str, str | None] | None = None):
        self.tags: dict[str, dict[str, str]] = {}
        self.stacks = set()
        for name, expiry in (stacks or {}).items():
            self.stacks.add(name)
            if expiry is not None:
                self.tags[name] = {EXPIRY_STACK_TAG: expiry}
        self.log: list[tuple] = []
        self.lock = threading.Lock()

    def set_tag(self, stack, key, value):
        inspect.signature(auto.LocalWorkspace.set_tag).bind(None, stack, key, value)
        with self.lock:
            self.log.append(("set_tag", stack, key, value))
            self.tags.setdefault(stack, {})[key] = value

    def get_tag(self, stack, key):
        if key not in self.tags.get(stack, {}):
            raise auto.CommandError(auto.CommandResult("", f"error: stack tag '{key}' not found", 255))
        return self.tags[stack][key]

    def list_stacks(self):
        return [auto.StackSummary(name, current=False) for name in sorted(self.stacks)]

    def remove_stack(self, stack, force=None, preserve_config=None):
        with self.lock:
            self.log.append(("remove_stack", stack))
            self.stacks.discard(stack)


class FakeStack:
    """Stands in for `auto.Stack`: checks kwargs against the real method, replays events, raises if told."""

    def __init__(self, name, workspace, events=(), error=None, outputs=None):
        self.name, self.workspace = name, workspace
        self.events, self.error = list(events), error
        self._outputs = outputs or {}
        self.calls: list[tuple[str, dict]] = []

    def _run(self, operation, on_event, **kwargs):
        inspect.signature(getattr(auto.Stack, operation)).bind(None, on_event=on_event, **kwargs)
        self.workspace.log.append((operation, self.name))
        self.calls.append((operation, kwargs))
        for event in self.events:
            on_event(event)
        if self.error is not None:
            raise self.error

    def up(self, on_event=None, **kw):
        self._run("up", on_event, **kw)
        self.workspace.stacks.add(self.name)

    def destroy(self, on_event=None, **kw):
        self._run("destroy", on_event, **kw)

    def outputs(self):
        return {k: auto.OutputValue(v, k == "kubeconfig") for k, v in self._outputs.items()}


def step_events(op: str) -> list[ev.EngineEvent]:
    urn = "urn:pulumi:ci-pr-123::k8s-platform::k8s-platform:network:Network$aws:ec2/vpc:Vpc::network-vpc"
    meta = ev.StepEventMetadata(ev.OpType(op), urn, "aws:ec2/vpc:Vpc", "urn:provider")
    return [
        ev.EngineEvent(1, 0, resource_pre_event=ev.ResourcePreEvent(meta, False)),
        ev.EngineEvent(2, 0, res_outputs_event=ev.ResOutputsEvent(meta, False)),
        ev.EngineEvent(3, 0, summary_event=ev.SummaryEvent(False, 7, {op: 190}, {"guardrails": "0.1.0"})),
    ]


def cli_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["ci", *argv])


def run_cli(project: Path, *argv: str, **seams) -> int:
    from programs.platformctl import ci as ci_cmd

    return ci_cmd.run(cli_args(*argv), project, **seams)


def test_ci_up_creates_the_run_stack_from_the_template_tags_its_expiry_and_deploys_with_the_pack(
    project, tmp_path, capsys
):
    workspace = FakeWorkspace()
    opened: list = []

    def opener(req):
        stack = FakeStack(req.stack, workspace, step_events("create"), outputs={"kubeconfig": "apiVersion: v1\n"})
        opened.append((req, stack))
        return stack

    kubeconfig = tmp_path / "kubeconfig"
    code = run_cli(
        project,
        "up",
        "--name",
        "pr-123",
        "--ttl",
        "2h",
        "--kubeconfig",
        str(kubeconfig),
        opener=opener,
        now=lambda: NOW,
    )
    assert code == exit_codes.OK
    [(req, stack)] = opened
    assert req.stack == "ci-pr-123" and req.environment == "ci"
    written = read_stack_file(project / "Pulumi.ci-pr-123.yaml")
    assert written["k8s-platform:ci"] == {"expiresAt": EXPIRES}
    assert written["k8s-platform:cluster"]["name"] == "ci-pr-123"
    assert {
        k: v
        for k, v in written.items()
        if k not in ("k8s-platform:ci", "k8s-platform:cluster", "k8s-platform:identity")
    } == {
        k: v for k, v in template_config().items() if k not in ("k8s-platform:cluster",)
    }  # everything else is the template's
    # The expiry is on the backend's stack before the update runs: a failed run is still reaped.
    assert workspace.log[:2] == [("set_tag", "ci-pr-123", EXPIRY_STACK_TAG, EXPIRES), ("up", "ci-pr-123")]
    [(op, kwargs)] = stack.calls
    assert op == "up" and kwargs["policy_packs"] == [str(project / "policy")]
    assert kwargs["policy_pack_configs"] == [str(project / "policy" / "config" / "ci.json")]
    assert kubeconfig.read_text() == "apiVersion: v1\n" and stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    out = capsys.readouterr().out
    assert f"ci up: stack ci-pr-123 (190 create); expires {EXPIRES}" in out and "apiVersion" not in out


def test_a_rerun_keeps_what_the_cli_wrote_into_the_stack_file(project):
    path = project / "Pulumi.ci-pr-5.yaml"
    path.write_text("secretsprovider: passphrase\nencryptionsalt: v1:abc\nconfig: {}\n")
    api_ci.write_ci_stack(project, project / "stacks" / "ci.yaml", "pr-5", NOW)
    doc = yaml.safe_load(path.read_text())
    assert doc["encryptionsalt"] == "v1:abc" and doc["secretsprovider"] == "passphrase"
    assert doc["config"]["k8s-platform:ci"] == {"expiresAt": "2026-12-01T12:00:00Z"}


def test_ci_up_refuses_bad_arguments_before_any_engine_call(project, capsys):
    opener = lambda req: pytest.fail("opened a stack")  # noqa: E731
    assert run_cli(project, "up", "--name", "PR_123", "--ttl", "2h", opener=opener) == exit_codes.CONFIG_ERROR
    assert "--name 'PR_123': 1-29 lowercase letters" in capsys.readouterr().err
    for ttl, text in (("2 hours", "is not a duration"), ("5m", "between 10m and 7d"), ("8d", "between 10m and 7d")):
        assert run_cli(project, "up", "--name", "pr-1", "--ttl", ttl, opener=opener) == exit_codes.CONFIG_ERROR
        assert text in capsys.readouterr().err
    bad = project / "bad.yaml"
    doc = yaml.safe_load(TEMPLATE.read_text())
    doc["config"]["k8s-platform:cluster"]["k3s"]["servers"]["count"] = 3
    bad.write_text(yaml.safe_dump(doc))
    code = run_cli(project, "up", "--name", "pr-1", "--ttl", "2h", "--template", str(bad), opener=opener)
    assert code == exit_codes.CONFIG_ERROR
    assert "k8s-platform:cluster.k3s.servers.count: environment ci runs exactly 1 server" in capsys.readouterr().err
    assert not (project / "Pulumi.ci-pr-1.yaml").exists()  # nothing created, nothing left behind


def test_ci_up_policy_failure_keeps_the_tag_for_the_reaper(project, capsys):
    workspace = FakeWorkspace()
    policy = ev.EngineEvent(
        1,
        0,
        policy_event=ev.PolicyEvent(
            "missing tag", "never", "required-tags", "guardrails", "0.1.0", "0.1.0", "mandatory", "urn:x"
        ),
    )
    error = auto.CommandError(auto.CommandResult("", "error: update failed", 255))
    code = run_cli(
        project,
        "up",
        "--name",
        "pr-9",
        "--ttl",
        "1h",
        opener=lambda req: FakeStack(req.stack, workspace, [policy], error),
        now=lambda: NOW,
    )
    assert code == exit_codes.POLICY_VIOLATION
    assert "required-tags" in capsys.readouterr().err
    assert workspace.tags["ci-pr-9"][EXPIRY_STACK_TAG] == "2026-12-01T13:00:00Z"


def test_ci_down_destroys_and_removes_the_stack_and_its_file(project, capsys):
    workspace = FakeWorkspace({"ci-pr-123": EXPIRES})
    api_ci.write_ci_stack(project, project / "stacks" / "ci.yaml", "pr-123", NOW)
    stacks: list[FakeStack] = []

    def opener(req):
        stacks.append(FakeStack(req.stack, workspace, step_events("delete")))
        return stacks[-1]

    assert run_cli(project, "down", "--name", "pr-123", opener=opener) == exit_codes.OK
    assert [c[0] for c in stacks[0].calls] == ["destroy"] and "policy_packs" not in stacks[0].calls[0][1]
    assert workspace.log == [("destroy", "ci-pr-123"), ("remove_stack", "ci-pr-123")]
    assert not (project / "Pulumi.ci-pr-123.yaml").exists()
    assert "ci down: stack ci-pr-123: 190 delete; stack removed" in capsys.readouterr().out


def test_ci_down_of_a_stack_that_never_came_up_is_nothing_to_do(project, capsys):
    workspace = FakeWorkspace()
    missing = auto.StackNotFoundError(auto.CommandResult("", "error: no stack named 'ci-pr-7' found", 255))
    code = run_cli(project, "down", "--name", "pr-7", opener=lambda req: FakeStack(req.stack, workspace, error=missing))
    assert code == exit_codes.OK
    assert "no stack 'ci-pr-7' in the backend: nothing to destroy" in capsys.readouterr().out
    assert not (project / "Pulumi.ci-pr-7.yaml").exists()  # rendered to run the destroy, then removed


def test_ci_reap_destroys_only_expired_stacks_and_isolates_a_failure(project, capsys):
    past, future = "2026-12-01T11:00:00Z", "2026-12-01T18:00:00Z"
    workspace = FakeWorkspace(
        {
            "ci-old": past,
            "ci-fresh": future,
            "ci-broken": past,
            "ci-filed": None,  # no tag: its stack file says when
            "ci-unknown": None,  # no tag, no file: left alone
            "dev": None,  # not a ci stack
            "ci-exact": "2026-12-01T12:00:00Z",  # expires now: reaped
        }
    )
    api_ci.write_ci_stack(project, project / "stacks" / "ci.yaml", "filed", NOW - dt.timedelta(minutes=1))
    lock = threading.Lock()
    running = peak = 0

    def opener(req):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            if req.stack == "ci-broken":
                error = auto.CommandError(auto.CommandResult("", "error: deleting subnet: DependencyViolation", 255))
                return FakeStack(req.stack, workspace, error=error)
            assert req.stack in ("ci-old", "ci-filed", "ci-exact"), req.stack
            return FakeStack(req.stack, workspace, step_events("delete"))
        finally:
            with lock:
                running -= 1

    code = run_cli(project, "reap", "--parallel", "2", opener=opener, workspace=workspace, now=lambda: NOW)
    assert code == exit_codes.FLEET_FAILED
    destroyed = sorted(e[1] for e in workspace.log if e[0] == "destroy")
    assert destroyed == ["ci-broken", "ci-exact", "ci-filed", "ci-old"] and peak <= 2
    assert sorted(e[1] for e in workspace.log if e[0] == "remove_stack") == ["ci-exact", "ci-filed", "ci-old"]
    assert workspace.stacks == {"ci-broken", "ci-fresh", "ci-unknown", "dev"}
    out = capsys.readouterr().out
    assert "ci-unknown  expires unknown (no tag, no stack file): left alone" in out
    assert "ci-fresh  expires 2026-12-01T18:00:00Z  kept" in out
    assert "6 ci stacks, 4 expired, 3 destroyed, 1 failed (ci-broken)" in out
    assert "DependencyViolation" in out  # the failure's reason, in its table row


def test_ci_reap_dry_run_and_nothing_expired_destroy_nothing(project, capsys):
    workspace = FakeWorkspace({"ci-old": "2026-12-01T11:00:00Z", "ci-fresh": "2026-12-01T18:00:00Z"})
    opener = lambda req: pytest.fail("destroyed")  # noqa: E731
    assert run_cli(project, "reap", "--dry-run", opener=opener, workspace=workspace, now=lambda: NOW) == 0
    assert "ci reap --dry-run at 2026-12-01T12:00:00Z: 1 of 2 ci stacks expired" in capsys.readouterr().out
    early = lambda: NOW - dt.timedelta(hours=2)  # noqa: E731
    assert run_cli(project, "reap", opener=opener, workspace=workspace, now=early) == exit_codes.OK
    assert workspace.stacks == {"ci-old", "ci-fresh"}


def test_ci_reap_retries_a_locked_stack(project):
    workspace = FakeWorkspace({"ci-busy": "2026-12-01T11:00:00Z"})
    tries: list[str] = []

    def opener(req):
        tries.append(req.stack)
        if len(tries) == 1:
            locked = auto.CommandResult("", "error: [409] Conflict: Another update is currently in progress.", 255)
            return FakeStack(req.stack, workspace, error=auto.ConcurrentUpdateError(locked))
        return FakeStack(req.stack, workspace, step_events("delete"))

    result = api_ci.ci_reap(root=project, workspace=workspace, opener=opener, now=lambda: NOW, sleep=lambda s: None)
    assert result.exit_code == exit_codes.OK and [r.attempts for r in result.destroyed] == [2]
    assert workspace.stacks == set()


def test_ci_without_the_pulumi_cli_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["ci", "up", "--name", "pr-1", "--ttl", "2h"]) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: the pulumi CLI is not installed; `platformctl ci up` needs it (there is no offline up; "
        "check the plan with `platformctl ci up --name N --ttl 2h --offline`)"
    ]
    assert main(["ci", "reap"]) == exit_codes.CONFIG_ERROR


def test_the_readme_pipeline_uses_the_real_commands():
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### Ephemeral CI clusters", 1)[1].split("\n## ", 1)[0]
    for line in ("platformctl ci up --name", "platformctl ci down --name", "platformctl ci reap", "if: always()"):
        assert line in section, line
    parser = build_parser()
    commands = re.findall(r"platformctl (ci [^\n#]*)", section)
    assert len(commands) >= 4
    for command in commands:
        argv = re.sub(r"\$\{\{[^}]*\}\}", "1", command).split()
        parser.parse_args([a.strip('"') for a in argv])  # exits (SystemExit) on an option that does not exist


def test_fleet_leaves_the_ephemeral_stacks_to_platformctl_ci(tmp_path: Path):
    from programs.api.scheduler import repo_stack_files

    for name in ("Pulumi.dev.yaml", "Pulumi.ci-pr-123.yaml", "Pulumi.yaml"):
        (tmp_path / name).write_text("config: {}\n")
    assert [p.name for p in repo_stack_files(tmp_path)] == ["Pulumi.dev.yaml"]


def _server_user_data() -> str:
    [template] = ci_run().of_type("aws:ec2/launchTemplate:LaunchTemplate")
    return base64.b64decode(template.inputs["userData"]).decode()


def test_the_ci_server_user_data_is_schema_valid_shellcheck_clean_and_secret_free():
    from components.k3s.user_data import BOOT_SCRIPT_PATH, K3S_CONFIG_DIR

    text = _server_user_data()
    assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text
    files = {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}
    config = yaml.safe_load(files[f"{K3S_CONFIG_DIR}/config.yaml"])
    assert not {"token", "agent-token", "datastore-endpoint"} & config.keys()
    assert schema_errors({"ci server": text}) == {"ci server": ""}
    assert shellcheck_findings({"ci server": files[BOOT_SCRIPT_PATH]}) == {"ci server": []}


def test_profile_defaults_never_invent_a_missing_section():
    raw = ci_config()
    del raw["k8s-platform:network"]
    assert "k8s-platform:network: is required" in problems(raw)


def test_a_template_that_is_not_a_stack_file_is_one_line(project, capsys):
    bad = project / "bad.yaml"
    bad.write_text("config:\n  k8s-platform:environment: [ci\n")
    opener = lambda req: pytest.fail("opened a stack")  # noqa: E731
    code = run_cli(project, "up", "--name", "pr-1", "--ttl", "2h", "--template", str(bad), opener=opener)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == exit_codes.CONFIG_ERROR and len(err) == 1 and "not valid YAML" in err[0], err


def test_ci_reap_when_the_backend_cannot_list_is_one_line(project, capsys):
    class NotLoggedIn(FakeWorkspace):
        def list_stacks(self):
            raise auto.CommandError(auto.CommandResult("", "error: PULUMI_ACCESS_TOKEN must be set for login", 255))

    code = run_cli(project, "reap", workspace=NotLoggedIn(), opener=lambda req: pytest.fail("opened"), now=lambda: NOW)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == exit_codes.CREDENTIALS_MISSING and len(err) == 1 and err[0].startswith("error: listing the stacks")


@pytest.mark.patches_outside_the_program
def test_ci_up_offline_previews_the_run_stack_with_the_ci_policy_config(tmp_path, monkeypatch, capsys):
    from programs.platformctl import ci as ci_cmd

    monkeypatch.setenv("PATH", "/nonexistent")  # no pulumi CLI needed
    monkeypatch.setenv("PLATFORMCTL_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REPO_ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    plan_path = tmp_path / "plan.json"
    args = cli_args("up", "--name", "pr-123", "--ttl", "2h", "--offline", "--quiet", "--json", str(plan_path))
    args.template = TEMPLATE
    assert ci_cmd.run(args, root, now=lambda: NOW) == exit_codes.OK
    assert read_stack_file(root / "Pulumi.ci-pr-123.yaml")["k8s-platform:ci"] == {"expiresAt": EXPIRES}
    plan = json.loads(plan_path.read_text())
    assert plan["stack"] == "ci-pr-123" and plan["policy"]["config"].endswith("policy/config/ci.json")
    assert not [v for v in plan["policy"]["violations"] if v["level"] == "mandatory"]
    assert "0 mandatory" in capsys.readouterr().out
