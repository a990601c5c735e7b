"""platformctl preview|up|destroy|refresh on the Automation API, without the CLI: argument and config
mapping (stack file, policy config, Automation API options), the run with a recorded event stream,
the exit code per outcome and the one-line errors."""

from __future__ import annotations

import argparse
import inspect
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto
from pulumi.automation import events as ev

from components.config import ConfigError
from programs.offline import REPO_ROOT
from programs.platformctl import automation, exit_codes
from programs.platformctl.automation import (
    StackRequest,
    build_request,
    execute,
    missing_policy_files,
    operation_kwargs,
    run_operation,
)
from programs.platformctl.cli import main

VPC_URN = "urn:pulumi:dev::k8s-platform::k8s-platform:network:Network$aws:ec2/vpc:Vpc::network-vpc"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's files platformctl reads, with a policy pack skeleton and its configs."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    (tmp_path / "policy" / "config").mkdir(parents=True)
    (tmp_path / "policy" / "PulumiPolicy.yaml").write_text("runtime: python\n")
    for env in ("dev", "prod"):
        (tmp_path / "policy" / "config" / f"{env}.json").write_text("{}\n")
    return tmp_path


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch) -> Path:
    """A `pulumi` on PATH, so the CLI check passes; the stack opener is faked, so it never runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "pulumi"
    exe.write_text("#!/bin/sh\nexit 99\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return exe


def ns(**kw) -> argparse.Namespace:
    base = dict(
        stack="dev",
        config_file=None,
        parallel=None,
        message=None,
        target=None,
        refresh=False,
        expect_no_changes=False,
        diff=False,
        quiet=False,
        yes=False,
    )
    base.update(kw)
    return argparse.Namespace(**base)


class FakeStack:
    """Stands in for `auto.Stack`: replays recorded events to `on_event`, then returns or raises."""

    def __init__(self, events=(), error: Exception | None = None):
        self.events = list(events)
        self.error = error
        self.calls: list[tuple[str, dict]] = []

    def _run(self, operation: str, on_event, **kwargs):
        # The kwargs must be ones the real Automation API method accepts.
        inspect.signature(getattr(auto.Stack, operation)).bind(None, on_event=on_event, **kwargs)
        self.calls.append((operation, kwargs))
        for event in self.events:
            on_event(event)
        if self.error is not None:
            raise self.error
        return object()

    def preview(self, on_event=None, **kw):
        return self._run("preview", on_event, **kw)

    def up(self, on_event=None, **kw):
        return self._run("up", on_event, **kw)

    def destroy(self, on_event=None, **kw):
        return self._run("destroy", on_event, **kw)

    def refresh(self, on_event=None, **kw):
        return self._run("refresh", on_event, **kw)


def opener_for(stack: FakeStack, seen: list | None = None):
    def opener(req: StackRequest):
        if seen is not None:
            seen.append(req)
        return stack

    return opener


def step_events(op: str = "create", planning: bool = False) -> list[ev.EngineEvent]:
    meta = ev.StepEventMetadata(ev.OpType(op), VPC_URN, "aws:ec2/vpc:Vpc", "urn:provider")
    return [
        ev.EngineEvent(1, 0, resource_pre_event=ev.ResourcePreEvent(meta, planning)),
        ev.EngineEvent(2, 0, res_outputs_event=ev.ResOutputsEvent(meta, planning)),
        ev.EngineEvent(3, 0, summary_event=ev.SummaryEvent(False, 7, {op: 1, "same": 1}, {"guardrails": "0.1.0"})),
    ]


def command_result(stderr: str, stdout: str = "") -> auto.CommandResult:
    return auto.CommandResult(stdout=stdout, stderr=stderr, code=255)


# --- mapping ---------------------------------------------------------------------------------


def test_preview_request_uses_the_stack_file_and_the_policy_config_of_its_environment(project):
    req = build_request("preview", ns(stack="prod"), project)
    assert req.stack_file == project / "Pulumi.prod.yaml"
    assert req.environment == "prod"
    assert req.policy_pack == project / "policy"
    assert req.policy_config == project / "policy" / "config" / "prod.json"
    assert req.config_file is None  # the workspace's own Pulumi.prod.yaml: no --config-file
    assert req.work_dir == project


def test_policy_config_follows_the_environment_key_not_the_stack_name(project, tmp_path):
    doc = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())
    other = tmp_path / "Pulumi.team-a.yaml"
    other.write_text(yaml.safe_dump(doc))
    req = build_request("up", ns(stack="team-a", config_file=other), project)
    assert req.environment == "dev"
    assert req.policy_config == project / "policy" / "config" / "dev.json"
    assert req.config_file == other and req.stack_file == other


def test_a_stack_with_its_own_policy_config_uses_it(project):
    (project / "policy" / "config" / "dev.json").rename(project / "policy" / "config" / "staging-like.json")
    (project / "policy" / "config" / "dev.json").write_text("{}")
    own = project / "policy" / "config" / "prod.json"
    assert build_request("preview", ns(stack="prod"), project).policy_config == own
    shutil.copy(project / "Pulumi.dev.yaml", project / "Pulumi.sandbox.yaml")
    (project / "policy" / "config" / "sandbox.json").write_text("{}")
    req = build_request("preview", ns(stack="sandbox"), project)
    assert req.environment == "dev" and req.policy_config == project / "policy" / "config" / "sandbox.json"


def test_options_mapped_to_the_automation_api(project):
    req = build_request("up", ns(parallel=8, message="rollout 42", target=[VPC_URN], refresh=True, diff=True), project)
    kwargs = operation_kwargs(req)
    assert kwargs == {
        "color": "never",
        "show_secrets": False,
        "policy_packs": [str(project / "policy")],
        "policy_pack_configs": [str(project / "policy" / "config" / "dev.json")],
        "parallel": 8,
        "message": "rollout 42",
        "target": [VPC_URN],
        "refresh": True,
        "diff": True,
    }
    # Every mapped name is a parameter of the real method.
    inspect.signature(auto.Stack.up).bind(None, **kwargs)


@pytest.mark.parametrize("operation", ["destroy", "refresh"])
def test_destroy_and_refresh_take_no_policy_pack(project, operation):
    kwargs = operation_kwargs(build_request(operation, ns(parallel=2, refresh=True), project))
    assert "policy_packs" not in kwargs and "policy_pack_configs" not in kwargs
    assert "refresh" not in kwargs  # `--refresh` is an option of preview/up only
    assert kwargs["show_secrets"] is False  # the API would decrypt secret config into its result
    inspect.signature(getattr(auto.Stack, operation)).bind(None, **kwargs)


def test_defaults_send_nothing_but_the_policy_pack(project):
    kwargs = operation_kwargs(build_request("preview", ns(), project))
    assert set(kwargs) == {"color", "policy_packs", "policy_pack_configs"}


def test_bad_config_is_refused_with_the_key_path_before_the_cli(project, tmp_path):
    doc = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())
    doc["config"]["k8s-platform:network"]["podCidr"] = "100.64.0.0/33"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as info:
        build_request("preview", ns(config_file=bad), project)
    assert any(p.startswith("k8s-platform:network.podCidr") for p in info.value.problems)


def test_bad_arguments(project):
    with pytest.raises(FileNotFoundError, match="Pulumi.nope.yaml"):
        build_request("preview", ns(stack="nope"), project)
    with pytest.raises(ValueError, match="--parallel"):
        build_request("up", ns(parallel=0), project)
    with pytest.raises(ValueError, match="unknown operation"):
        build_request("import", ns(), project)


def test_missing_policy_pack_or_config_is_named(project):
    req = build_request("preview", ns(), project)
    assert missing_policy_files(req) is None
    (project / "policy" / "config" / "dev.json").unlink()
    assert "policy/config/dev.json" in missing_policy_files(req)
    (project / "policy" / "PulumiPolicy.yaml").unlink()
    assert "PulumiPolicy.yaml" in missing_policy_files(req)
    assert missing_policy_files(build_request("destroy", ns(), project)) is None


# --- runs with recorded events ---------------------------------------------------------------


def test_up_streams_progress_and_succeeds(project):
    stack = FakeStack(step_events("create"))
    out = io.StringIO()
    outcome = run_operation(build_request("up", ns(), project), opener_for(stack), out=out)
    assert outcome.code == exit_codes.OK and outcome.message == ""
    assert out.getvalue().splitlines() == [
        " + aws:ec2/vpc:Vpc  network-vpc  creating",
        " + aws:ec2/vpc:Vpc  network-vpc  created (1 done)",
    ]
    assert outcome.summary.changes == {"create": 1, "same": 1}
    assert stack.calls[0][0] == "up"
    assert stack.calls[0][1]["policy_pack_configs"] == [str(project / "policy" / "config" / "dev.json")]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_status_line_is_redrawn_below_the_steps_and_cleared(project):
    out = Terminal()
    run_operation(build_request("up", ns(), project), opener_for(FakeStack(step_events("create"))), out=out)
    text = out.getvalue()
    assert "  … 0 done, 1 in progress" in text and "  … 1 done, 0 in progress" in text
    assert text.endswith("\r\033[K")  # nothing left over before the summary line
    # Step lines always start on a cleared line.
    assert "\r\033[K + aws:ec2/vpc:Vpc  network-vpc  creating\n" in text


def test_concurrent_update_is_its_own_code_and_transient(project):
    err = auto.ConcurrentUpdateError(command_result("error: [409] Conflict: Another update is currently in progress."))
    outcome = run_operation(build_request("up", ns(), project), opener_for(FakeStack(error=err)), out=io.StringIO())
    assert outcome.code == exit_codes.CONCURRENT_UPDATE and outcome.transient
    assert "another update is in progress" in outcome.message


def test_missing_stack(project):
    err = auto.StackNotFoundError(command_result("error: no stack named 'dev' found"))
    outcome = run_operation(
        build_request("refresh", ns(), project), opener_for(FakeStack(error=err)), out=io.StringIO()
    )
    assert outcome.code == exit_codes.STACK_NOT_FOUND and "pulumi stack init dev" in outcome.message
    assert not outcome.transient


def test_mandatory_policy_failure_exits_1_and_names_the_policy(project):
    events = step_events("create", planning=True)[:1] + [
        ev.EngineEvent(
            2,
            0,
            policy_event=ev.PolicyEvent(
                "must require IMDSv2", "never", "imdsv2-required", "guardrails", "0.1.0", "0.1.0", "mandatory", VPC_URN
            ),
        )
    ]
    err = auto.CommandError(command_result("error: preview failed"))
    outcome = run_operation(
        build_request("preview", ns(), project), opener_for(FakeStack(events, err)), out=io.StringIO()
    )
    assert outcome.code == exit_codes.POLICY_VIOLATION
    assert outcome.message == "stack 'dev': 1 mandatory policy violations (guardrails/imdsv2-required)"


def test_missing_aws_credentials_is_one_line(project):
    stderr = (
        "Diagnostics:\n  pulumi:providers:aws (aws):\n    error: pulumi:providers:aws resource 'aws' has a "
        "problem: No valid credential sources found.\n    Please see https://www.pulumi.com/registry/"
        "packages/aws/installation-configuration/ for more information about providing credentials."
    )
    err = auto.CommandError(command_result(stderr))
    outcome = run_operation(
        build_request("preview", ns(), project), opener_for(FakeStack(error=err)), out=io.StringIO()
    )
    assert outcome.code == exit_codes.CREDENTIALS_MISSING
    assert "\n" not in outcome.message and "no AWS credentials found" in outcome.message
    assert "--offline" in outcome.message  # preview has an offline mode


def test_engine_failure_reports_the_engine_error(project):
    err = auto.CommandError(command_result("error: update failed\nerror: creating EC2 VPC: VpcLimitExceeded"))
    outcome = run_operation(build_request("up", ns(), project), opener_for(FakeStack(error=err)), out=io.StringIO())
    assert outcome.code == exit_codes.DEPLOY_FAILED
    assert outcome.message == "stack 'dev': up failed: creating EC2 VPC: VpcLimitExceeded"


def test_cli_vanishing_under_the_workspace_is_exit_2(project):
    def opener(req):
        raise FileNotFoundError(2, "No such file or directory", "pulumi")

    outcome = run_operation(build_request("preview", ns(), project), opener, out=io.StringIO())
    assert outcome.code == exit_codes.CONFIG_ERROR and "pulumi CLI is not installed" in outcome.message


# --- the shell ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["up", "destroy", "refresh"])
def test_without_the_cli_every_command_says_so_in_one_line(monkeypatch, capsys, command):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main([command, "--stack", "dev"]) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "pulumi CLI is not installed" in err[0] and f"platformctl {command}" in err[0]
    assert "preview --offline" in err[0]  # the offline alternative that exists


def test_preview_without_offline_reaches_the_automation_api(project, fake_cli, monkeypatch, capsys):
    seen: list[StackRequest] = []
    monkeypatch.setattr(automation, "open_stack", opener_for(FakeStack(step_events("create", planning=True)), seen))
    code = execute("preview", ns(), project, opener=automation.open_stack)
    assert code == exit_codes.OK
    out = capsys.readouterr().out
    assert "preview dev: 1 to create, 1 unchanged" in out
    assert seen[0].policy_config == project / "policy" / "config" / "dev.json"


def test_up_needs_yes_when_not_on_a_terminal(project, fake_cli, capsys):
    stack = FakeStack(step_events())
    assert execute("up", ns(), project, opener=opener_for(stack)) == exit_codes.CONFIG_ERROR
    assert "--yes" in capsys.readouterr().err and stack.calls == []
    assert execute("up", ns(yes=True), project, opener=opener_for(stack)) == exit_codes.OK
    assert [c[0] for c in stack.calls] == ["up"]
    assert "up dev: 1 created, 1 unchanged" in capsys.readouterr().out


def test_interactive_up_previews_first_then_asks(project, fake_cli, capsys):
    stack = FakeStack(step_events())
    asked: list[str] = []
    code = execute("up", ns(), project, opener=opener_for(stack), confirm=lambda req: asked.append(req.stack) or False)
    assert code == exit_codes.CONFIG_ERROR and asked == ["dev"]
    assert [c[0] for c in stack.calls] == ["preview"]  # nothing deployed without the answer
    code = execute("up", ns(), project, opener=opener_for(stack), confirm=lambda req: True)
    assert code == exit_codes.OK and [c[0] for c in stack.calls][-2:] == ["preview", "up"]


def test_not_logged_in_is_one_line_with_its_own_code(project, fake_cli, capsys):
    err = auto.CommandError(
        command_result("error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions")
    )

    def opener(req):
        raise err

    assert execute("refresh", ns(), project, opener=opener) == exit_codes.CREDENTIALS_MISSING
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "pulumi login" in lines[0]


def test_invalid_config_and_missing_pack_exit_2_before_any_engine_call(project, fake_cli, capsys, tmp_path):
    stack = FakeStack()
    doc = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())
    doc["config"]["k8s-platform:cluster"]["kind"] = "gke"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    assert execute("preview", ns(config_file=bad), project, opener=opener_for(stack)) == exit_codes.CONFIG_ERROR
    assert "k8s-platform:cluster.kind" in capsys.readouterr().err
    shutil.rmtree(project / "policy")
    assert execute("up", ns(yes=True), project, opener=opener_for(stack)) == exit_codes.CONFIG_ERROR
    assert "policy pack is missing" in capsys.readouterr().err
    assert stack.calls == []


def test_exit_codes_are_distinct_and_keep_their_meaning():
    codes = [
        exit_codes.OK,
        exit_codes.POLICY_VIOLATION,
        exit_codes.CONFIG_ERROR,
        exit_codes.DEPLOY_FAILED,
        exit_codes.CONCURRENT_UPDATE,
        exit_codes.CREDENTIALS_MISSING,
        exit_codes.STACK_NOT_FOUND,
        exit_codes.FLEET_FAILED,
        exit_codes.INTERRUPTED,
    ]
    assert len(set(codes)) == len(codes)
    assert (exit_codes.OK, exit_codes.POLICY_VIOLATION, exit_codes.CONFIG_ERROR) == (0, 1, 2)
    assert all(c in exit_codes.DESCRIPTIONS and c in exit_codes.NAMES for c in codes)


def test_subcommands_are_registered():
    from programs.platformctl.cli import build_parser

    parser = build_parser()
    for argv in (
        ["up", "--stack", "dev", "--yes"],
        ["destroy", "--stack", "dev"],
        ["refresh", "--stack", "dev"],
        ["fleet", "preview", "--stacks", "dev", "--offline"],
        ["graph", "--stack", "dev", "--offline"],
    ):
        assert callable(parser.parse_args(argv).func)
    json.dumps(vars(parser.parse_args(["refresh", "--stack", "dev"])), default=str)
