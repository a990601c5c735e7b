"""platformctl fleet: the concurrency bound, failure isolation, retry with backoff (injected clock and
sleep), stack selection, the offline runner's interpretation of each process, and one real run of
offline previews in subprocesses with a deliberately broken stack."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pulumi import automation as auto
from pulumi.automation import events as ev

from components.config import parse_stack_config
from programs.offline import REPO_ROOT, read_stack_file
from programs.platformctl import exit_codes
from programs.platformctl.cli import main
from programs.platformctl.fleet import (
    AutomationRunner,
    OfflineRunner,
    RetryPolicy,
    StackJob,
    StackOutcome,
    dev_variant,
    fleet_exit_code,
    offline_command,
    outcome_from_process,
    render_table,
    run_fleet,
    select_jobs,
    stack_name_of,
    write_dev_variants,
)

NO_WAIT = RetryPolicy(attempts=3, base_delay=5.0, factor=2.0, max_delay=60.0, jitter=0.0)


def jobs(*names: str) -> list[StackJob]:
    return [StackJob(n, Path(f"/stacks/Pulumi.{n}.yaml")) for n in names]


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- scheduling --------------------------------------------------------------------------------


def test_at_most_parallel_stacks_run_at_once_and_the_bound_is_used():
    lock = threading.Lock()
    running = 0
    peak = 0
    # Three at a time must meet at the barrier; a fourth concurrent runner would raise the peak above 3.
    barrier = threading.Barrier(3, timeout=10)

    def runner(job: StackJob) -> StackOutcome:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            barrier.wait()
        finally:
            with lock:
                running -= 1
        return StackOutcome(exit_codes.OK)

    results = run_fleet(jobs(*(f"s{i}" for i in range(9))), runner, parallel=3, retry=NO_WAIT)
    assert peak == 3
    assert [r.name for r in results] == [f"s{i}" for i in range(9)] and all(r.ok for r in results)


def test_parallel_one_runs_stacks_one_after_another():
    lock = threading.Lock()
    running, peak, order = 0, 0, []

    def runner(job):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            order.append(job.name)
        with lock:
            running -= 1
        return StackOutcome(exit_codes.OK)

    run_fleet(jobs("a", "b", "c", "d"), runner, parallel=1, retry=NO_WAIT)
    assert peak == 1 and order == ["a", "b", "c", "d"]


def test_a_failing_stack_does_not_stop_the_others():
    ran: list[str] = []
    lock = threading.Lock()

    def runner(job):
        with lock:
            ran.append(job.name)
        if job.name == "b":
            raise RuntimeError("program crashed\nwith a long traceback")
        if job.name == "c":
            return StackOutcome(exit_codes.CONFIG_ERROR, "k8s-platform:network.vpcCidr: not a private block")
        return StackOutcome(exit_codes.OK, resources=40)

    results = run_fleet(jobs("a", "b", "c", "d", "e"), runner, parallel=2, retry=NO_WAIT)
    assert sorted(ran) == ["a", "b", "c", "d", "e"]
    by_name = {r.name: r for r in results}
    assert by_name["b"].code == exit_codes.DEPLOY_FAILED
    assert by_name["b"].detail == "RuntimeError: program crashed with a long traceback"
    assert by_name["c"].code == exit_codes.CONFIG_ERROR and by_name["c"].attempts == 1
    assert all(by_name[n].ok for n in "ade")
    assert fleet_exit_code(results) == exit_codes.FLEET_FAILED
    assert fleet_exit_code([by_name["a"], by_name["d"]]) == exit_codes.OK


def test_transient_failures_are_retried_with_exponential_backoff():
    clock = FakeClock()
    calls: dict[str, int] = {}

    def runner(job):
        calls[job.name] = calls.get(job.name, 0) + 1
        if job.name == "busy" and calls[job.name] < 3:
            return StackOutcome(exit_codes.CONCURRENT_UPDATE, "stack locked", transient=True)
        return StackOutcome(exit_codes.OK)

    results = run_fleet(jobs("busy", "calm"), runner, parallel=1, retry=NO_WAIT, sleep=clock.sleep, clock=clock)
    busy = results[0]
    assert busy.ok and busy.attempts == 3
    assert clock.sleeps == [5.0, 10.0]  # base, then doubled; no real waiting
    assert busy.seconds == 15.0  # the time measured is the injected clock's
    assert results[1].attempts == 1


def test_retries_stop_at_the_limit_and_say_so():
    clock = FakeClock()

    def runner(job):
        return StackOutcome(exit_codes.CONCURRENT_UPDATE, "stack locked", transient=True)

    [result] = run_fleet(jobs("busy"), runner, parallel=1, retry=NO_WAIT, sleep=clock.sleep, clock=clock)
    assert result.code == exit_codes.CONCURRENT_UPDATE and result.attempts == 3
    assert result.detail == "stack locked (gave up after 3 attempts)"
    assert clock.sleeps == [5.0, 10.0]


def test_permanent_failures_are_not_retried():
    clock = FakeClock()
    [result] = run_fleet(
        jobs("bad"),
        lambda job: StackOutcome(exit_codes.POLICY_VIOLATION, "imdsv2"),
        parallel=1,
        retry=NO_WAIT,
        sleep=clock.sleep,
        clock=clock,
    )
    assert result.attempts == 1 and clock.sleeps == []


def test_a_raised_concurrent_update_error_is_transient():
    clock = FakeClock()
    calls = []

    def runner(job):
        calls.append(job.name)
        if len(calls) == 1:
            raise auto.ConcurrentUpdateError(
                auto.CommandResult("", "error: the stack is currently locked by 1 lock(s)", 255)
            )
        return StackOutcome(exit_codes.OK)

    [result] = run_fleet(jobs("a"), runner, parallel=1, retry=NO_WAIT, sleep=clock.sleep, clock=clock)
    assert result.ok and result.attempts == 2 and clock.sleeps == [5.0]


def test_backoff_is_capped_and_jitter_stays_in_its_band():
    policy = RetryPolicy(base_delay=5, factor=2, max_delay=30, jitter=0.2)
    assert [policy.delay(n, rng=lambda: 0.5) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]
    assert policy.delay(1, rng=lambda: 0.0) == pytest.approx(4.0)
    assert policy.delay(1, rng=lambda: 1.0) == pytest.approx(6.0)


def test_parallel_must_be_positive():
    with pytest.raises(ValueError, match="--parallel"):
        run_fleet(jobs("a"), lambda j: StackOutcome(0), parallel=0)


def test_progress_callback_sees_every_stack_once():
    seen = []
    run_fleet(
        jobs("a", "b", "c"),
        lambda j: StackOutcome(0),
        parallel=2,
        retry=NO_WAIT,
        on_result=lambda r, done, total: seen.append((r.name, total)),
    )
    assert sorted(seen) == [("a", 3), ("b", 3), ("c", 3)]


# --- which stacks --------------------------------------------------------------------------------


def test_stack_selection(tmp_path):
    for name in ("b", "a", "c"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    (tmp_path / "notes.yaml").write_text("x: 1\n")
    assert [j.name for j in select_jobs("preview", stacks_dir=tmp_path)] == ["a", "b", "c"]
    picked = select_jobs("up", stacks="c, a", stacks_dir=tmp_path)
    assert [(j.name, j.stack_file, j.operation) for j in picked] == [
        ("c", tmp_path / "Pulumi.c.yaml", "up"),
        ("a", tmp_path / "Pulumi.a.yaml", "up"),
    ]
    assert [j.name for j in select_jobs("preview", stack_files=str(tmp_path / "Pulumi.[ab].yaml"))] == ["a", "b"]
    assert select_jobs("preview", stacks="dev")[0].stack_file == REPO_ROOT / "Pulumi.dev.yaml"
    with pytest.raises(ValueError, match="listed twice: a"):
        select_jobs("preview", stacks="a,b,a", stacks_dir=tmp_path)
    with pytest.raises(ValueError, match="no stacks selected"):
        select_jobs("preview", stack_files=str(tmp_path / "nothing-*.yaml"))
    with pytest.raises(ValueError, match="either --stacks or --stack-files"):
        select_jobs("preview", stacks="a", stack_files="*.yaml")
    with pytest.raises(ValueError, match="fleet runs"):
        select_jobs("destroy", stacks="a")
    assert stack_name_of(Path("x/Pulumi.team-a.yml")) == "team-a" and stack_name_of(Path("x/other.yaml")) == "other"


def test_generated_dev_variants_are_valid_and_distinct(tmp_path):
    paths = write_dev_variants(REPO_ROOT / "Pulumi.dev.yaml", tmp_path, 15)
    configs = [parse_stack_config(read_stack_file(p)) for p in paths]  # raises if any variant is invalid
    assert len({c.cluster.name for c in configs}) == 15
    assert len({c.network.vpc_cidr for c in configs}) == 15
    assert len({tuple(c.network.availability_zones) for c in configs}) >= 10
    base = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    assert dev_variant(base, 3) != base and base == yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())


# --- the offline runner ------------------------------------------------------------------------------


def test_offline_command_is_a_separate_interpreter_per_stack():
    cmd = offline_command(StackJob("dev-03", Path("/gen/Pulumi.dev-03.yaml")), Path("/tmp/p.json"), python="/py")
    assert cmd == [
        "/py",
        "-m",
        "programs.platformctl.cli",
        "preview",
        "--stack",
        "dev-03",
        "--offline",
        "--config-file",
        "/gen/Pulumi.dev-03.yaml",
        "--quiet",
        "--json",
        "/tmp/p.json",
    ]


def test_process_outcomes_are_interpreted():
    plan = {"resources": [{}] * 40, "policy": {"violations": []}}
    assert outcome_from_process(0, "", plan) == StackOutcome(exit_codes.OK, resources=40, changes="40 to create")
    bad = outcome_from_process(
        2,
        "error: invalid configuration for stack 'x':\n  k8s-platform:network.podCidr: must be inside 100.64.0.0/10\n",
        {"resources": []},
    )
    assert (
        bad.code == exit_codes.CONFIG_ERROR
        and bad.detail == "k8s-platform:network.podCidr: must be inside 100.64.0.0/10"
    )
    missing = outcome_from_process(2, "error: no stack file /x/Pulumi.y.yaml\n", None)
    assert missing.code == exit_codes.CONFIG_ERROR and "no stack file" in missing.detail
    policy = outcome_from_process(
        1,
        "policy mandatory: imdsv2: ...",
        {
            "resources": [{}],
            "policy": {
                "violations": [
                    {"policy": "imdsv2-required", "level": "mandatory"},
                    {"policy": "tags", "level": "advisory"},
                ]
            },
        },
    )
    assert policy.code == exit_codes.POLICY_VIOLATION and "imdsv2-required" in policy.detail
    crash = outcome_from_process(1, "Traceback (most recent call last):\n  ...\nKeyError: 'vpc'\n", None)
    assert crash.code == exit_codes.DEPLOY_FAILED and "KeyError: 'vpc'" in crash.detail
    assert not crash.transient


def test_offline_runner_with_an_injected_process_runner():
    calls = []

    def fake_run(cmd, **kw):
        calls.append((cmd, kw))
        Path(cmd[cmd.index("--json") + 1]).write_text(json.dumps({"resources": [{}] * 7, "policy": {"violations": []}}))
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    outcome = OfflineRunner(run=fake_run, python="/py", timeout=30)(StackJob("s", Path("/gen/Pulumi.s.yaml")))
    assert outcome == StackOutcome(exit_codes.OK, resources=7, changes="7 to create")
    assert calls[0][1]["timeout"] == 30 and calls[0][1]["cwd"] == str(REPO_ROOT)

    def slow(cmd, **kw):
        raise subprocess.TimeoutExpired(cmd, kw["timeout"])

    timed_out = OfflineRunner(run=slow, timeout=30)(StackJob("s", Path("x")))
    assert timed_out.code == exit_codes.TIMED_OUT and exit_codes.name(timed_out.code) == "timeout"
    assert "timed out after 30s" in timed_out.detail


# --- the Automation API runner -------------------------------------------------------------------------


def test_automation_runner_retries_a_locked_stack_then_succeeds(tmp_path, capsys):
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((REPO_ROOT / name).read_text())
    (tmp_path / "policy" / "config").mkdir(parents=True)
    (tmp_path / "policy" / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "policy" / "config" / "dev.json").write_text("{}")
    attempts = []
    meta = ev.StepEventMetadata(
        ev.OpType.UPDATE, "urn:pulumi:dev::k8s-platform::aws:ec2/vpc:Vpc::network-vpc", "aws:ec2/vpc:Vpc", "p"
    )

    class Stack:
        def preview(self, on_event=None, **kw):
            attempts.append(kw)
            if len(attempts) == 1:
                raise auto.ConcurrentUpdateError(
                    auto.CommandResult("", "[409] Conflict: Another update is currently in progress.", 255)
                )
            on_event(ev.EngineEvent(1, 0, resource_pre_event=ev.ResourcePreEvent(meta, True)))
            on_event(ev.EngineEvent(2, 0, summary_event=ev.SummaryEvent(False, 1, {"update": 1}, {})))

    clock = FakeClock()
    runner = AutomationRunner("preview", root=tmp_path, opener=lambda req: Stack())
    [result] = run_fleet(
        [StackJob("dev", tmp_path / "Pulumi.dev.yaml")],
        runner,
        parallel=1,
        retry=NO_WAIT,
        sleep=clock.sleep,
        clock=clock,
    )
    assert result.ok and result.attempts == 2 and result.changes == "1 to update"
    assert attempts[-1]["policy_pack_configs"] == [str(tmp_path / "policy" / "config" / "dev.json")]
    assert "config_file" not in attempts[-1]  # the stack's own file in the project
    assert "[dev]  ~ aws:ec2/vpc:Vpc  network-vpc  update" in capsys.readouterr().out


def test_result_table_lists_every_stack_with_its_code():
    from programs.platformctl.fleet import StackResult

    table = render_table(
        [
            StackResult("dev-01", 0, 1, 2.0, resources=40, changes="40 to create"),
            StackResult("dev-02", 2, 1, 0.4, "k8s-platform:network.vpcCidr: bad", resources=0),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["stack", "result", "exit", "tries", "time", "resources", "detail"]
    assert lines[2].split()[:6] == ["dev-01", "ok", "0", "1", "2.0s", "40"]
    assert lines[3].split()[:3] == ["dev-02", "config", "2"] and lines[3].endswith("k8s-platform:network.vpcCidr: bad")


# --- the shell ---------------------------------------------------------------------------------------------


def test_fleet_without_the_cli_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["fleet", "preview", "--stacks", "dev,prod"]) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pulumi CLI is not installed" in err[0] and "--offline" in err[0]


def test_fleet_rejects_offline_up_and_empty_selections(capsys, tmp_path):
    assert main(["fleet", "up", "--stacks", "dev", "--offline"]) == exit_codes.CONFIG_ERROR
    assert main(["fleet", "preview", "--offline", "--stacks-dir", str(tmp_path)]) == exit_codes.CONFIG_ERROR
    assert "no stacks selected" in capsys.readouterr().err


# --- issue 13: default stacks, `fleet list`, one-line YAML reasons, timeout status ----------------------
def test_without_a_selection_the_fleet_is_the_repositorys_stacks(capsys):
    jobs = select_jobs("preview")
    assert [j.name for j in jobs] == sorted(p.name.split(".")[1] for p in REPO_ROOT.glob("Pulumi.*.yaml"))
    assert {"dev", "staging", "prod"} <= {j.name for j in jobs}
    assert main(["fleet", "list"]) == exit_codes.OK
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [j.name for j in jobs]


def test_a_yaml_syntax_error_is_one_line_naming_file_line_and_reason(tmp_path):
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(
        "config:\n  aws:region: us-east-1\n  k8s-platform:tags:\n    owner: [a\n  k8s-platform:environment: dev\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "programs.platformctl.cli",
            "preview",
            "--stack",
            "bad",
            "--offline",
            "--config-file",
            str(bad),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    outcome = outcome_from_process(proc.returncode, proc.stderr, None)
    assert outcome.code == exit_codes.CONFIG_ERROR
    assert outcome.detail.startswith(f"{bad}: line 5, column 27: not valid YAML: ")
    assert "\n" not in outcome.detail
    assert "\n" not in outcome.detail


def test_the_policy_config_option_reaches_every_stacks_preview(tmp_path):
    cmd = offline_command(StackJob("s", Path("/gen/Pulumi.s.yaml")), tmp_path / "p.json", "/py", Path("/cfg/x.json"))
    assert cmd[cmd.index("--policy-config") + 1] == "/cfg/x.json"
    assert (
        main(["fleet", "preview", "--offline", "--policy-config", str(tmp_path / "none.json")])
        == exit_codes.CONFIG_ERROR
    )
