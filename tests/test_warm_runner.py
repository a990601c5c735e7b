"""The warm runner: one forked child per stack, outcomes streamed back, a crashed or hung child is
one failed stack, the parallel bound holds, unchanged stacks come from the plan cache; and the
acceptance run of `fleet preview --offline` over 15 generated stacks with one broken."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from programs.offline import REPO_ROOT
from programs.platformctl import exit_codes, plan_cache, warm_runner
from programs.platformctl.fleet import StackJob, write_dev_variants
from programs.platformctl.warm_runner import WarmRunner, preview_argv

pytestmark = pytest.mark.skipif(not warm_runner.available(), reason="the warm runner needs os.fork (POSIX)")


def _arg(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def fake_preview(active_dir: Path | None = None):
    """A stand-in for `platformctl preview` in the child, steered by the stack name."""

    def child_main(argv: list[str]) -> int:
        name = _arg(argv, "--stack")
        if active_dir is not None:  # record how many children run at once
            marker = active_dir / f"{name}.running"
            marker.write_text("")
            time.sleep(0.2)
            peak = len(list(active_dir.glob("*.running")))
            (active_dir / f"{name}.peak").write_text(str(peak))
            marker.unlink()
        if name == "segfault":
            os.kill(os.getpid(), signal.SIGKILL)
        if name == "exits":
            print("half a line of output", file=sys.stderr)
            os._exit(9)
        if name == "hangs":
            time.sleep(60)
        if name == "raises":
            raise RuntimeError("boom inside the program")
        if name == "bad-config":
            print(
                "error: invalid configuration for stack 'bad-config':\n  k8s-platform:network.vpcCidr: not a "
                "private block",
                file=sys.stderr,
            )
            return exit_codes.CONFIG_ERROR
        Path(_arg(argv, "--json")).write_text(json.dumps({"resources": [{}] * 5, "policy": {"violations": []}}))
        print(f"{name}: 5 resources planned offline")  # stdout of a child goes nowhere
        return exit_codes.OK

    return child_main


def jobs(tmp_path: Path, *names: str) -> list[StackJob]:
    out = []
    for n in names:
        path = tmp_path / f"Pulumi.{n}.yaml"
        path.write_text("config: {}\n")
        out.append(StackJob(n, path))
    return out


def test_a_crashed_child_is_one_failed_stack_and_the_others_report(tmp_path):
    names = ("a", "segfault", "b", "exits", "raises", "bad-config", "c")
    runner = WarmRunner(parallel=2, timeout=30, use_cache=False, warm_up=False, child_main=_guard(fake_preview()))
    seen: list[str] = []
    results = runner.run(jobs(tmp_path, *names), on_result=lambda r, done, total: seen.append(r.name))
    by = {r.name: r for r in results}
    assert [r.name for r in results] == list(names)  # job order, whatever order they finished in
    assert sorted(seen) == sorted(names)  # each streamed once as it finished
    for ok in ("a", "b", "c"):
        assert by[ok].code == exit_codes.OK and by[ok].resources == 5 and by[ok].changes == "5 to create"
    assert by["segfault"].code == exit_codes.DEPLOY_FAILED and "killed by signal SIGKILL" in by["segfault"].detail
    assert by["exits"].code == exit_codes.DEPLOY_FAILED and "exit 9" in by["exits"].detail
    assert "half a line of output" in by["exits"].detail
    assert (
        by["raises"].code == exit_codes.DEPLOY_FAILED and "RuntimeError: boom inside the program" in by["raises"].detail
    )
    assert by["bad-config"].code == exit_codes.CONFIG_ERROR
    assert by["bad-config"].detail == "k8s-platform:network.vpcCidr: not a private block"


def _guard(child_main):
    """The console script's handling around the fake (tracebacks to stderr, exit 3)."""

    def guarded(argv):
        try:
            return child_main(argv)
        except Exception:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            return exit_codes.DEPLOY_FAILED

    return guarded


def test_the_warm_up_previews_are_the_first_stacks_results_and_run_nowhere_else(tmp_path, capfd):
    """The warm-up previews in this process until a stack's program runs (a refused config warms
    nothing); each preview it made is that stack's result, read as a child's would be, and that
    stack gets no child. Its output stays out of this process's own."""
    ran = tmp_path / "ran.txt"
    preview = fake_preview()

    def child_main(argv: list[str]) -> int:
        with ran.open("a") as f:
            f.write(f"{_arg(argv, '--stack')} {os.getpid()}\n")
        return preview(argv)

    runner = WarmRunner(parallel=2, timeout=30, use_cache=False, child_main=child_main)
    results = runner.run(jobs(tmp_path, "bad-config", "a", "b", "c"))
    where = dict(line.split() for line in ran.read_text().splitlines())
    assert len(ran.read_text().splitlines()) == 4  # each stack previewed once
    assert where["bad-config"] == where["a"] == str(os.getpid())  # the warm-up: here
    assert str(os.getpid()) not in (where["b"], where["c"])  # the others: in children
    assert [r.code for r in results] == [exit_codes.CONFIG_ERROR, exit_codes.OK, exit_codes.OK, exit_codes.OK]
    assert results[0].detail == "k8s-platform:network.vpcCidr: not a private block"  # from its stderr
    assert results[1].resources == 5 and results[1].changes == "5 to create"  # from its plan
    out, err = capfd.readouterr()
    assert "planned offline" not in out and "invalid configuration" not in err


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads the kernel's thread list (Linux)")
def test_nothing_forks_while_a_thread_of_the_loop_is_still_exiting():
    """`release_event_loop` returns only once the kernel no longer lists the executor's threads:
    Python's join returns before a thread's thread-local destructors have run (OpenSSL's take a
    lock a forked child would inherit held). Here an executor thread's destructor sleeps 0.3 s
    (libc's usleep, registered with pthread_key_create). In a forked child of this test, on a loop
    of its own."""
    import asyncio
    import ctypes

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports by its exit status
        code = 1
        try:
            libc = ctypes.CDLL(None)
            key = ctypes.c_uint()
            assert libc.pthread_key_create(ctypes.byref(key), ctypes.cast(libc.usleep, ctypes.c_void_p)) == 0

            def linger_on_exit() -> int:
                libc.pthread_setspecific(key, ctypes.c_void_p(300_000))  # usleep(300000) at thread exit
                return threading.get_native_id()

            asyncio.set_event_loop(asyncio.new_event_loop())  # not the loop this worker uses
            loop = asyncio.get_event_loop()
            tid = loop.run_until_complete(loop.run_in_executor(None, linger_on_exit))
            warm_runner.release_event_loop()
            code = 0 if not os.path.exists(f"/proc/self/task/{tid}") else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_warm_up_that_runs_out_of_time_is_that_stacks_timeout(tmp_path, monkeypatch):
    """The alarm interrupts the preview inside `platformctl`'s own error handling (which turns an
    exception into exit 3): the stack is still reported as timed out, and the next stack runs in a
    child, not after the interrupted run in this process."""
    from programs.platformctl import cli

    def main(argv: list[str]) -> int:
        if _arg(argv, "--stack") == "slow":
            time.sleep(30)
        return fake_preview()(argv)

    monkeypatch.setattr(cli, "main", main)
    runner = WarmRunner(parallel=1, timeout=1, use_cache=False)
    results = runner.run(jobs(tmp_path, "slow", "a"))
    assert [r.code for r in results] == [exit_codes.TIMED_OUT, exit_codes.OK]
    assert results[0].detail == "offline preview timed out after 1s (--timeout)"
    assert list(runner.warm_results) == [0]  # "a" was not previewed here after the interrupted run


def test_a_warm_up_stuck_in_a_thread_of_its_loop_forks_nothing_and_the_rest_still_run(tmp_path, monkeypatch):
    """A preview whose mock call never returns (it waits in the loop's executor) runs out of time
    in the warm-up; its thread cannot be stopped, so this process forks nothing (a fork would copy
    whatever that thread holds): the other stacks go to the fallback runner, and the run ends."""
    import asyncio

    gate = threading.Event()

    def child_main(argv: list[str]) -> int:
        loop = asyncio.get_event_loop()
        loop.run_until_complete(loop.run_in_executor(None, gate.wait))
        return exit_codes.OK

    monkeypatch.setattr(warm_runner, "_THREAD_GRACE", 0.2)
    ran_elsewhere = []

    def fallback(job: StackJob) -> warm_runner.StackOutcome:
        ran_elsewhere.append(job.name)
        return warm_runner.StackOutcome(exit_codes.OK, resources=5, changes="5 to create")

    runner = WarmRunner(parallel=2, timeout=1, use_cache=False, child_main=child_main, fallback=fallback)
    try:
        results = runner.run(jobs(tmp_path, "stuck", "a", "b"))
    finally:
        gate.set()  # the stuck thread ends with the test
    assert [r.code for r in results] == [exit_codes.TIMED_OUT, exit_codes.OK, exit_codes.OK]
    assert not runner.may_fork and ran_elsewhere == ["a", "b"]


@pytest.mark.parametrize("closed", [None, 1, 2])
def test_a_previews_output_is_kept_apart_and_the_process_gets_its_own_back(tmp_path, closed):
    """`_output_to` (the warm-up's preview in this process): what it writes goes to the stack's
    stderr file and /dev/null; after it, fds 1 and 2 are what they were, a closed one closed again.
    In a forked child of this test."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports by its exit status
        code = 1
        try:
            before = {fd: os.fstat(fd).st_ino for fd in (1, 2) if fd != closed}
            if closed is not None:
                os.close(closed)
            with warm_runner._output_to(tmp_path):
                print("to nowhere")
                print("k8s-platform:network.podCidr: refused", file=sys.stderr)
                os.write(2, b"from the fd\n")
            kept = (tmp_path / "stderr.txt").read_text()
            after = {}
            for fd in (1, 2):
                try:
                    after[fd] = os.fstat(fd).st_ino
                except OSError:
                    pass
            ok = after == before and kept == "k8s-platform:network.podCidr: refused\nfrom the fd\n"
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_hung_child_times_out_alone(tmp_path):
    runner = WarmRunner(parallel=2, timeout=1.0, use_cache=False, warm_up=False, child_main=fake_preview())
    hung, ok = runner.run(jobs(tmp_path, "hangs", "a"))
    assert hung.code == exit_codes.TIMED_OUT and hung.detail == "offline preview timed out after 1s (--timeout)"
    assert ok.ok


def test_at_most_parallel_children_run_at_once(tmp_path):
    active = tmp_path / "active"
    active.mkdir()
    names = [f"s{i}" for i in range(6)]
    results = WarmRunner(parallel=2, use_cache=False, warm_up=False, child_main=fake_preview(active)).run(
        jobs(tmp_path, *names)
    )
    assert all(r.ok for r in results)
    peaks = [int((active / f"{n}.peak").read_text()) for n in names]
    assert max(peaks) <= 2


def test_the_child_runs_the_same_preview_command_as_the_subprocess_runner():
    job = StackJob("dev-03", Path("/gen/Pulumi.dev-03.yaml"))
    assert preview_argv(job, Path("/tmp/p.json"), use_cache=True) == [
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
    assert preview_argv(job, Path("/tmp/p.json"), use_cache=False)[-1] == "--no-cache"


def test_unchanged_stacks_are_reported_from_the_cache_without_a_child(tmp_path, monkeypatch):
    monkeypatch.delenv("PLATFORMCTL_NO_CACHE")
    monkeypatch.setenv("PLATFORMCTL_CACHE_DIR", str(tmp_path / "cache"))
    [cached, fresh] = jobs(tmp_path, "cached", "fresh")
    plan_cache.store("cached", cached.stack_file, {"resources": [{}] * 7, "policy": {"violations": []}})

    def child_main(argv):
        (tmp_path / f"ran-{_arg(argv, '--stack')}").write_text("")
        return fake_preview()(argv)

    results = WarmRunner(parallel=2, warm_up=False, child_main=child_main).run([cached, fresh])
    assert results[0].ok and results[0].resources == 7 and results[0].changes == "7 to create (cached)"
    assert results[1].ok and results[1].changes == "5 to create"
    assert not (tmp_path / "ran-cached").exists() and (tmp_path / "ran-fresh").exists()


def test_offline_fleet_of_15_with_a_broken_stack_through_the_warm_runner(tmp_path, monkeypatch, capsys):
    """Acceptance: 15 generated stacks, one with a pod range outside the allowed blocks: 14 ok,
    1 failed (config, with its key), exit 7; the second run, as its own process, reports the 14 from
    the plan cache. The first run is the CLI in this (already imported) process, its warm runner
    forking a child per stack from here: a fresh interpreter would only import the SDK again.
    Variants of staging (EKS, 143 resources): the cheapest shipped stack to run, as the runner is
    what is tested here; `benchmarks/run.py` times a fleet of dev stacks in fresh processes."""
    from programs.platformctl import cli

    paths = write_dev_variants(REPO_ROOT / "Pulumi.staging.yaml", tmp_path / "stacks", 15, prefix="staging")
    broken = yaml.safe_load(paths[6].read_text())
    broken["config"]["k8s-platform:network"]["podCidr"] = "10.99.0.0/16"
    paths[6].write_text(yaml.safe_dump(broken, sort_keys=False))
    monkeypatch.delenv("PLATFORMCTL_NO_CACHE")
    monkeypatch.setenv("PLATFORMCTL_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "fleet.json"
    args = ["fleet", "preview", "--offline", "--stacks-dir", str(tmp_path / "stacks"), "--parallel", "2"]
    args += ["--json", str(out)]
    code = cli.main(args)
    stdout = capsys.readouterr().out
    assert code == exit_codes.FLEET_FAILED, stdout
    by_name = {s["name"]: s for s in json.loads(out.read_text())["stacks"]}
    assert sorted(by_name) == [f"staging-{i:02d}" for i in range(1, 16)]
    assert by_name["staging-07"]["code"] == exit_codes.CONFIG_ERROR
    assert "k8s-platform:network.podCidr" in by_name["staging-07"]["detail"]
    ok = [s for s in by_name.values() if s["code"] == exit_codes.OK]
    assert len(ok) == 14 and all(s["resources"] > 100 for s in ok)
    assert len({s["resources"] for s in ok}) == 1  # every variant plans the same shape
    assert "15 stacks: 14 succeeded, 1 failed (staging-07)" in stdout
    table = stdout[stdout.index("stack ") :]
    assert all(name in table for name in by_name)

    cmd = [sys.executable, "-m", "programs.platformctl.cli", *args]
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)
    assert again.returncode == exit_codes.FLEET_FAILED, again.stdout + again.stderr
    second = {s["name"]: s for s in json.loads(out.read_text())["stacks"]}
    assert all(second[s["name"]]["changes"].endswith("(cached)") for s in ok)
    assert second["staging-07"]["code"] == exit_codes.CONFIG_ERROR and "(cached)" not in second["staging-07"]["changes"]
    assert "15 stacks: 14 succeeded, 1 failed (staging-07)" in again.stdout


def test_each_child_runs_its_program_on_an_event_loop_of_its_own(tmp_path):
    """The parent's event loop (its epoll instance and self-pipe) is shared by every forked child:
    two children running Pulumi's RPCs on it at once steal each other's wakeups and hang. A child
    must never run on the loop it inherited."""
    import asyncio

    try:
        previous = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        previous = None
    inherited = asyncio.new_event_loop()
    asyncio.set_event_loop(inherited)

    def child_main(argv: list[str]) -> int:
        if asyncio.get_event_loop() is inherited:
            return exit_codes.DEPLOY_FAILED
        Path(_arg(argv, "--json")).write_text(json.dumps({"resources": [], "policy": {"violations": []}}))
        return exit_codes.OK

    try:
        results = WarmRunner(parallel=2, timeout=30, use_cache=False, warm_up=False, child_main=child_main).run(
            jobs(tmp_path, "a", "b")
        )
    finally:
        # Later tests in this process (the SDK's mocks) run on the loop that was current before.
        asyncio.set_event_loop(previous)
        inherited.close()
    assert [r.code for r in results] == [exit_codes.OK, exit_codes.OK]
