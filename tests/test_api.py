"""programs.api, the Python API internal tools use: the README's example runs as printed, and every
operation returns its typed result (offline for real; Automation API ones with a fake stack opener
replaying recorded engine events, so no CLI is needed)."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import json
import re
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto
from pulumi.automation import events as ev

from programs import api
from programs.offline import REPO_ROOT
from programs.plan import SECRET_MASK
from programs.platformctl import exit_codes
from programs.platformctl.events import fold_events

VPC_URN = "urn:pulumi:dev::k8s-platform::k8s-platform:network:Network$aws:ec2/vpc:Vpc::network-vpc"


def readme_example() -> str:
    """The first ```python block of the README's "From your own tools" section."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("\n## From your own tools\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the README's 'From your own tools' section has no python example"
    return blocks[0]


def test_the_readme_example_runs_as_printed():
    """A user's tool: the snippet as printed, run as a script from the repository root. In this
    interpreter, not a fresh one: that would only import the SDK again (~5 s); that `programs.api`
    imports cleanly on its own is `test_the_api_is_below_the_commands_and_programs_has_no_import_circle`."""
    printed = io.StringIO()
    with contextlib.chdir(REPO_ROOT), contextlib.redirect_stdout(printed):
        exec(compile(readme_example(), "README.md", "exec"), {"__name__": "__main__"})
    dev = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())["config"]
    lines = printed.getvalue().splitlines()
    assert re.fullmatch(r"dev: \d{2,} resources, exit code 0", lines[0]), lines
    assert "mandatory policy violations: 0" in lines
    assert f"cluster name: {dev['k8s-platform:cluster']['name']}" in lines
    assert any(re.fullmatch(r"cluster: k3s v?\d+\.\d+.*", line) for line in lines), lines


# --- offline preview -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_preview():
    seen: list[ev.EngineEvent] = []
    result = api.preview("dev", on_event=seen.append, use_cache=False)
    return result, seen


def test_offline_preview_is_typed_and_matches_its_plan(dev_preview):
    result, _ = dev_preview
    assert isinstance(result, api.PreviewResult) and result.offline and result.ok
    assert result.exit_code == exit_codes.OK and result.errors == () and result.message == ""
    assert all(isinstance(r, api.Resource) for r in result.resources)
    assert [r.urn for r in result.resources] == [r["urn"] for r in result.plan["resources"]]
    vpc = next(r for r in result.resources if r.type == "aws:ec2/vpc:Vpc")
    assert vpc.custom and isinstance(vpc.dependencies, tuple) and vpc.inputs["cidrBlock"]
    assert result.policy_config.endswith("policy/config/dev.json")
    assert result.mandatory == () and result.violations == result.mandatory + result.advisory
    assert result.changes == {"create": len(result.resources)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.exit_code = 1  # type: ignore[misc]


def test_offline_outputs_and_inputs_mask_secrets_unless_asked(dev_preview):
    result, _ = dev_preview
    assert result.outputs["kubeconfig"] == SECRET_MASK
    assert "PRIVATE KEY" not in json.dumps(result.plan)
    shown = api.preview("prod", show_secrets=True)
    assert shown.ok and shown.outputs["kubeconfig"] != SECRET_MASK
    assert "PRIVATE KEY" in json.dumps([r.inputs for r in shown.resources])


def test_offline_preview_sends_the_events_an_engine_preview_would(dev_preview):
    result, seen = dev_preview
    pre = [e.resource_pre_event for e in seen if e.resource_pre_event is not None]
    assert [p.metadata.urn for p in pre] == [r.urn for r in result.resources]
    assert all(p.planning and p.metadata.op == ev.OpType.CREATE for p in pre)
    assert seen[-1].summary_event is not None
    # platformctl's own fold reads them like a real preview of a new stack.
    lines, summary = fold_events(seen, "preview")
    assert len(lines) == len(result.resources) and summary.changes == {"create": len(result.resources)}
    assert [s.urn for s in result.steps] == [r.urn for r in result.resources]


def test_offline_mandatory_findings_are_split_and_exit_1(tmp_path: Path):
    strict = tmp_path / "strict.json"
    strict.write_text(
        json.dumps(
            {
                "all": "advisory",
                "stateful-resources-protected": {
                    "enforcementLevel": "mandatory",
                    "protectedTypes": ["aws:ec2/vpc:Vpc"],
                },
            }
        )
    )
    seen: list[ev.EngineEvent] = []
    result = api.preview("prod", policy_config=strict, on_event=seen.append)
    vpcs = [r.urn for r in result.resources if r.type == "aws:ec2/vpc:Vpc"]
    assert result.exit_code == exit_codes.POLICY_VIOLATION and not result.ok
    assert [(v.policy, v.urn) for v in result.mandatory] == [("stateful-resources-protected", u) for u in vpcs]
    assert all(v.level != "mandatory" for v in result.advisory)
    assert "stateful-resources-protected" in result.message
    assert [
        e.policy_event.resource_urn for e in seen if e.policy_event and e.policy_event.enforcement_level == "mandatory"
    ] == vpcs


def test_offline_bad_config_is_structured_problems_and_no_resources(tmp_path: Path):
    doc = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["k8s-platform:network"]["podCidr"] = "100.64.0.0/33"
    doc["config"]["k8s-platform:cluster"]["kind"] = "gke"
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    seen: list = []
    result = api.preview("bad", config_file=bad, on_event=seen.append)
    assert result.exit_code == exit_codes.CONFIG_ERROR and result.resources == () and seen == []
    keys = {p.key for p in result.errors}
    assert {"k8s-platform:network.podCidr", "k8s-platform:cluster.kind"} <= keys
    assert all(p.kind == "config" and p.message for p in result.errors)
    assert result.plan["resources"] == [] and result.plan["errors"] == [str(p) for p in result.errors]
    missing = api.preview("nope")
    assert missing.exit_code == exit_codes.CONFIG_ERROR
    assert [(p.key, p.kind) for p in missing.errors] == [(None, "file")] and "Pulumi.nope.yaml" in missing.message


def test_offline_preview_carries_what_the_cli_prints(dev_preview, tmp_path: Path):
    result, _ = dev_preview
    assert result.stack_info == result.plan["stackInfo"] and result.stack_info["environment"] == "dev"
    assert result.stack_info["cluster"]["kind"] == "k3s"
    assert result.protected == sum(1 for r in result.plan["resources"] if r["protect"])
    assert result.diff is None and result.cached is False
    old = json.loads(json.dumps(result.plan))
    old["resources"] = old["resources"][1:]
    again = api.preview("dev", diff_against=old, use_cache=False)
    assert [r["urn"] for r in again.diff["added"]] == [result.plan["resources"][0]["urn"]]
    assert again.diff["removed"] == []


def test_offline_preview_uses_the_plan_cache_unless_told(tmp_path: Path, monkeypatch):
    from programs.api import offline_preview
    from programs.platformctl import plan_cache

    monkeypatch.delenv(plan_cache.NO_CACHE_ENV, raising=False)
    monkeypatch.setenv(plan_cache.CACHE_ENV, str(tmp_path / "cache"))
    calls: list[tuple] = []
    plan = {
        "project": "k8s-platform",
        "stack": "s",
        "resources": [],
        "outputs": {"a": 1},
        "policy": {"violations": [], "pack": "p", "config": "c.json"},
    }

    def compute(stack, config_file, show_secrets, policy_config=None):
        calls.append((stack, policy_config))
        return json.loads(json.dumps(plan))

    monkeypatch.setattr(offline_preview, "offline_plan", compute)
    stack = tmp_path / "Pulumi.s.yaml"
    stack.write_text("config: {}\n")
    first = api.preview("s", config_file=stack)
    second = api.preview("s", config_file=stack)
    assert not first.cached and second.cached and second.outputs == {"a": 1} and len(calls) == 1
    assert not api.preview("s", config_file=stack, use_cache=False).cached
    cfg = tmp_path / "cfg.json"
    cfg.write_text("{}")
    assert not api.preview("s", config_file=stack, policy_config=cfg).cached  # an explicit config always runs
    assert calls[-1] == ("s", cfg) and len(calls) == 3


def test_offline_missing_policy_config_and_bad_diff_plan_cost_no_run(tmp_path: Path, monkeypatch):
    from programs.api import offline_preview

    monkeypatch.setattr(offline_preview, "run_offline", lambda *a, **k: pytest.fail("the program ran"))
    missing = api.preview("dev", policy_config=tmp_path / "nope.json")
    assert missing.exit_code == exit_codes.CONFIG_ERROR and missing.errors[0].kind == "file"
    assert missing.message == f"stack 'dev': {tmp_path / 'nope.json'}: no such policy config file (--policy-config)"
    (tmp_path / "old.json").write_text("[]")
    bad = api.preview("dev", diff_against=tmp_path / "old.json")
    assert bad.exit_code == exit_codes.CONFIG_ERROR and "not a plan" in bad.errors[0].message
    assert api.preview("dev", offline=False, diff_against=tmp_path / "old.json").errors[0].kind == "argument"


def test_offline_config_errors_name_their_file(tmp_path: Path):
    doc = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["k8s-platform:network"]["vpcCidr"] = "10.300.0.0/16"
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = api.preview("bad", config_file=bad)
    assert result.exit_code == exit_codes.CONFIG_ERROR and result.config_source == str(bad)
    assert [p.key for p in result.errors] == ["k8s-platform:network.vpcCidr"]


# --- Automation API with a fake stack ---------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_text((REPO_ROOT / name).read_text())
    (tmp_path / "policy" / "config").mkdir(parents=True)
    (tmp_path / "policy" / "PulumiPolicy.yaml").write_text("runtime: python\n")
    for env in ("dev", "prod"):
        (tmp_path / "policy" / "config" / f"{env}.json").write_text("{}\n")
    return tmp_path


class FakeStack:
    """Stands in for `auto.Stack`: checks the kwargs against the real method, replays events, raises if told."""

    def __init__(self, events=(), error: Exception | None = None):
        self.events = list(events)
        self.error = error
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, operation: str):
        if operation not in api.OPERATIONS:
            raise AttributeError(operation)

        def call(on_event=None, **kwargs):
            inspect.signature(getattr(auto.Stack, operation)).bind(None, on_event=on_event, **kwargs)
            self.calls.append((operation, kwargs))
            for event in self.events:
                on_event(event)
            if self.error is not None:
                raise self.error

        return call


def step_events(op: str = "create", planning: bool = False) -> list[ev.EngineEvent]:
    meta = ev.StepEventMetadata(ev.OpType(op), VPC_URN, "aws:ec2/vpc:Vpc", "urn:provider")
    return [
        ev.EngineEvent(1, 0, resource_pre_event=ev.ResourcePreEvent(meta, planning)),
        ev.EngineEvent(2, 0, res_outputs_event=ev.ResOutputsEvent(meta, planning)),
        ev.EngineEvent(3, 0, summary_event=ev.SummaryEvent(False, 7, {op: 1, "same": 1}, {"guardrails": "0.1.0"})),
    ]


def test_up_returns_an_update_result_and_hands_over_every_event(project):
    stack = FakeStack(step_events("create"))
    seen: list[ev.EngineEvent] = []
    result = api.up("dev", root=project, opener=lambda req: stack, on_event=seen.append, message="rollout 42")
    assert isinstance(result, api.UpdateResult) and result.ok and result.operation == "up"
    assert seen == stack.events  # the same engine events platformctl renders
    assert result.steps == (api.Step("create", VPC_URN, "aws:ec2/vpc:Vpc", "network-vpc"),)
    assert result.changes == {"create": 1, "same": 1} and result.duration_seconds == 7
    assert result.policy_packs == {"guardrails": "0.1.0"} and result.failed == ()
    op, kwargs = stack.calls[0]
    assert op == "up" and kwargs["message"] == "rollout 42" and kwargs["show_secrets"] is False
    assert kwargs["policy_pack_configs"] == [str(project / "policy" / "config" / "dev.json")]


def test_engine_preview_with_a_mandatory_finding_exits_1(project):
    events = step_events("create", planning=True)[:1] + [
        ev.EngineEvent(
            2,
            0,
            policy_event=ev.PolicyEvent(
                "must require IMDSv2", "never", "imdsv2-required", "guardrails", "0.1.0", "0.1.0", "mandatory", VPC_URN
            ),
        )
    ]
    stack = FakeStack(events, auto.CommandError(auto.CommandResult("", "error: preview failed", 255)))
    result = api.preview("dev", offline=False, root=project, opener=lambda req: stack)
    assert isinstance(result, api.PreviewResult) and not result.offline
    assert result.exit_code == exit_codes.POLICY_VIOLATION
    assert result.mandatory == (
        api.Violation("imdsv2-required", "mandatory", VPC_URN, "must require IMDSv2", "guardrails"),
    )
    assert result.message == "stack 'dev': 1 mandatory policy violations (guardrails/imdsv2-required)"


def test_destroy_and_refresh_take_no_policy_pack_and_report_locks(project):
    stack = FakeStack(step_events("delete"))
    result = api.destroy("dev", root=project, opener=lambda req: stack)
    assert result.ok and result.operation == "destroy" and result.changes["delete"] == 1
    assert "policy_packs" not in stack.calls[0][1]
    locked = FakeStack(
        error=auto.ConcurrentUpdateError(
            auto.CommandResult("", "error: [409] Conflict: Another update is currently in progress.", 255)
        )
    )
    result = api.refresh("dev", root=project, opener=lambda req: locked)
    assert result.exit_code == exit_codes.CONCURRENT_UPDATE and result.transient
    assert "another update is in progress" in result.message


def test_bad_input_never_reaches_the_engine(project, tmp_path, monkeypatch):
    stack = FakeStack()
    doc = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())
    doc["config"]["k8s-platform:cluster"]["kind"] = "gke"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = api.up("dev", config_file=bad, root=project, opener=lambda req: stack)
    assert result.exit_code == exit_codes.CONFIG_ERROR
    assert [p.key for p in result.errors] == ["k8s-platform:cluster.kind"]
    (project / "policy" / "config" / "dev.json").unlink()
    result = api.preview("dev", offline=False, root=project, opener=lambda req: stack)
    assert result.exit_code == exit_codes.CONFIG_ERROR and result.errors[0].kind == "file"
    assert "policy/config/dev.json" in result.message
    assert stack.calls == []
    monkeypatch.setenv("PATH", "/nonexistent")  # the real LocalWorkspace: no pulumi CLI here
    result = api.refresh("dev", root=project)
    assert result.exit_code == exit_codes.CONFIG_ERROR and result.errors[0].kind == "tool"
    assert "pulumi CLI is not installed" in result.message


def test_request_level_resolve_then_run(project):
    req = api.stack_request("up", "prod", root=project, parallel=4)
    assert req.environment == "prod" and req.policy_config == project / "policy" / "config" / "prod.json"
    stack = FakeStack(step_events("update"))
    result = api.run(req, opener=lambda r: stack)
    assert isinstance(result, api.UpdateResult) and result.ok and stack.calls[0][1]["parallel"] == 4


# --- fleet -------------------------------------------------------------------------------------------


def test_fleet_with_an_injected_runner_is_typed_and_isolates_failures():
    def runner(job: api.StackJob) -> api.StackOutcome:
        if job.name == "b":
            return api.StackOutcome(exit_codes.CONFIG_ERROR, "k8s-platform:network.vpcCidr: bad")
        return api.StackOutcome(exit_codes.OK, resources=3, changes="3 to create")

    started, finished = [], []
    result = api.fleet(
        ["a", "b", "c"],
        parallel=2,
        runner=runner,
        on_start=lambda jobs, n: started.append(([j.name for j in jobs], n)),
        on_result=lambda r, done, total: finished.append((r.name, total)),
    )
    assert isinstance(result, api.FleetResult) and result.exit_code == exit_codes.FLEET_FAILED
    assert started == [(["a", "b", "c"], 2)] and sorted(finished) == [("a", 3), ("b", 3), ("c", 3)]
    assert [s.name for s in result.stacks] == ["a", "b", "c"] and [s.name for s in result.failed] == ["b"]
    assert result.stacks[0].resources == 3 and result.stacks[1].detail.startswith("k8s-platform:network.vpcCidr")
    doc = result.as_dict()
    assert set(doc) == {"operation", "offline", "parallel", "wallSeconds", "stacks"} and doc["stacks"][1]["code"] == 2


def test_fleet_through_the_automation_api_retries_and_streams_per_stack(project):
    attempts: list[str] = []

    def opener(req):
        attempts.append(req.stack)
        if attempts.count(req.stack) == 1 and req.stack == "prod":
            return FakeStack(
                error=auto.ConcurrentUpdateError(
                    auto.CommandResult("", "[409] Conflict: Another update is currently in progress.", 255)
                )
            )
        return FakeStack(step_events("update", planning=True))

    seen: list[tuple[str, ev.EngineEvent]] = []
    result = api.fleet(
        "dev,prod",
        offline=False,
        parallel=2,
        root=project,
        opener=opener,
        on_event=lambda stack, event: seen.append((stack, event)),
        sleep=lambda s: None,
    )
    assert result.ok and {s.name: s.attempts for s in result.stacks} == {"dev": 1, "prod": 2}
    assert {s.changes for s in result.stacks} == {"1 to update, 1 unchanged"}
    assert sorted({stack for stack, _ in seen}) == ["dev", "prod"]


def test_fleet_bad_arguments_run_nothing():
    for kwargs, text in (
        (dict(operation="up", offline=True), "only previews"),
        (dict(parallel=0), "--parallel"),
        (dict(retries=-1), "--retries"),
    ):
        result = api.fleet(["dev"], runner=lambda job: pytest.fail("ran"), **kwargs)
        assert result.exit_code == exit_codes.CONFIG_ERROR and result.stacks == () and text in str(result.errors[0])
    assert "listed twice" in str(api.fleet(["dev", Path("x/Pulumi.dev.yaml")]).errors[0])


def test_fleet_defaults_to_the_repositorys_stacks_and_checks_the_policy_config_first(tmp_path: Path):
    ran: list[str] = []
    result = api.fleet(runner=lambda job: ran.append(job.name) or api.StackOutcome(exit_codes.OK), parallel=1)
    assert result.ok and sorted(ran) == sorted(p.name.split(".")[1] for p in REPO_ROOT.glob("Pulumi.*.yaml"))
    missing = api.fleet(policy_config=tmp_path / "none.json", runner=lambda job: pytest.fail("ran"))
    assert missing.exit_code == exit_codes.CONFIG_ERROR and "no such policy config file" in missing.errors[0].message


def test_offline_fleet_runs_on_the_warm_runner_with_the_policy_config(tmp_path: Path, monkeypatch):
    from programs.api import scheduler
    from programs.platformctl import warm_runner

    seen: dict = {}

    def warm(jobs, parallel, timeout, use_cache=True, on_result=None, policy_config=None):
        seen.update(
            names=[j.name for j in jobs],
            parallel=parallel,
            timeout=timeout,
            use_cache=use_cache,
            policy_config=policy_config,
        )
        return [
            api.StackResult(j.name, exit_codes.TIMED_OUT if j.name == "prod" else exit_codes.OK, 1, 0.1) for j in jobs
        ]

    monkeypatch.setattr(warm_runner, "available", lambda: True)
    monkeypatch.setattr(warm_runner, "run_offline_fleet", warm)
    cfg = tmp_path / "cfg.json"
    cfg.write_text("{}")
    result = api.fleet("dev,prod", parallel=2, timeout=5, use_cache=False, policy_config=cfg)
    assert seen == dict(names=["dev", "prod"], parallel=2, timeout=5, use_cache=False, policy_config=cfg)
    assert result.exit_code == exit_codes.FLEET_FAILED and [s.name for s in result.failed] == ["prod"]
    assert result.failed[0].code == exit_codes.TIMED_OUT
    assert scheduler.warm_fleet is not None


# --- policy check ------------------------------------------------------------------------------------


def test_policy_check_of_a_saved_plan(dev_preview, tmp_path: Path):
    result, _ = dev_preview
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(result.plan))
    report = api.policy_check(saved, "dev")
    assert isinstance(report, api.PolicyReport) and report.ok and report.mandatory == ()
    assert report.resources == len(result.resources) and report.config.endswith("policy/config/dev.json")
    strict = tmp_path / "strict.json"
    strict.write_text(
        json.dumps(
            {
                "all": "advisory",
                "stateful-resources-protected": {
                    "enforcementLevel": "mandatory",
                    "protectedTypes": ["aws:ec2/vpc:Vpc"],
                },
            }
        )
    )
    before = json.dumps(result.plan)
    report = api.policy_check(result.plan, "dev", policy_config=strict)
    assert json.dumps(result.plan) == before  # the caller's document is not changed
    assert report.exit_code == exit_codes.POLICY_VIOLATION
    assert {v.policy for v in report.mandatory} == {"stateful-resources-protected"}
    assert report.plan["policy"]["violations"] and report.message.startswith("mandatory policies violated")


def test_policy_check_refuses_a_plan_of_another_stack_unless_given_a_config(dev_preview, tmp_path: Path):
    result, _ = dev_preview
    refused = api.policy_check(result.plan, "prod")
    assert refused.exit_code == exit_codes.CONFIG_ERROR and "the plan is of stack 'dev', not 'prod'" in refused.message
    cfg = tmp_path / "cfg.json"
    cfg.write_text("{}")
    assert api.policy_check(result.plan, "prod", policy_config=cfg).exit_code in (
        exit_codes.OK,
        exit_codes.POLICY_VIOLATION,
    )


def test_policy_check_errors_are_structured(tmp_path: Path):
    missing = api.policy_check(tmp_path / "missing.json", "prod")
    assert missing.exit_code == exit_codes.CONFIG_ERROR and missing.errors[0].kind == "file"
    (tmp_path / "list.json").write_text("[]")
    assert "not a plan" in api.policy_check(tmp_path / "list.json", "prod").errors[0].message
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"no-world-open-admin-ports": "sometimes"}))
    report = api.policy_check({"resources": [], "outputs": {}}, "prod", policy_config=broken)
    assert report.exit_code == exit_codes.CONFIG_ERROR
    assert report.errors[0].kind == "policy-config"
    assert "'sometimes' is not an enforcement level" in str(report.errors[0])


# --- layering ------------------------------------------------------------------------------------------

PLATFORMCTL_COMMANDS = {
    f"programs.platformctl.{m}" for m in ("cli", "preview", "automation", "fleet", "graph", "policy_cmd")
}


def _import_graph(top_level_only: bool) -> dict[str, set[str]]:
    """programs.* module -> the programs.* modules it imports (at module level, or anywhere in the file)."""
    import ast

    files = {
        ".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (REPO_ROOT / "programs").rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text())
        targets: set[str] = set()
        for node in tree.body if top_level_only else ast.walk(tree):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module for a in node.names
                }
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def test_the_api_is_below_the_commands_and_programs_has_no_import_circle():
    everywhere = _import_graph(top_level_only=False)
    for module, targets in everywhere.items():
        if module.startswith("programs.api"):
            assert not targets & PLATFORMCTL_COMMANDS, f"{module} imports a platformctl command: {targets}"
    assert "programs.platformctl.preview" not in everywhere["programs.platformctl.automation"]
    assert "programs.platformctl.fleet" not in everywhere["programs.platformctl.warm_runner"]
    graph = _import_graph(top_level_only=True)
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            assert state.get(target) != 1, "import circle: " + " -> ".join([*path, module, target])
            if target not in state:
                visit(target, [*path, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
