"""Warm runner: import and warm the SDK once, then fork one child per stack run.

A cold offline preview pays, before its first resource, for importing every SDK submodule the
program touches and for the SDK resolving the type hints of every input and resource class it
constructs; a fleet of N stacks in N fresh interpreters pays that N times. Pulumi mocks are
process-global, so two stacks cannot share one process either. The warm runner does both: this
process previews the first stack itself (the warm-up: imports, class building, type resolution,
the policy pack; that preview is the first stack's result), drops the event loop's worker threads
so that forking is safe, then forks a child per other stack. A child inherits the warm
interpreter, runs exactly what
`platformctl preview --offline --quiet --json PLAN` runs, interprets its own exit code, stderr and
plan with `fleet.outcome_from_process` (so both runners report alike) and streams that outcome
back over a pipe as one JSON line.

A child that dies without reporting (a signal, `os._exit`, an interpreter crash) or exceeds the
timeout is one failed stack; the others go on. At most `parallel` children run at once. Stacks
unchanged since their cached plan (`plan_cache`) are reported from the cache without a child.

POSIX only (`os.fork`); elsewhere `fleet` keeps its one-interpreter-per-stack runner.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from programs import gc_tuning
from programs.api.scheduler import (  # noqa: F401 (preview_argv: public here too)
    OfflineRunner,
    StackJob,
    StackOutcome,
    StackResult,
    one_line,
    outcome_from_process,
    preview_argv,
    read_plan,
    timed_out_outcome,
)
from programs.platformctl import exit_codes, plan_cache

OnResult = Callable[[StackResult, int, int], None]


def available() -> bool:
    return hasattr(os, "fork") and sys.platform != "win32"


def run_preview_in_process(argv: list[str]) -> int:
    """`platformctl ARGV` in this process, exit code as the console script gives it."""
    from programs.offline import OfflineProgramError
    from programs.platformctl.cli import main

    try:
        return main(argv)
    except OfflineProgramError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return exit_codes.DEPLOY_FAILED
    except SystemExit as exc:  # argparse
        return exc.code if isinstance(exc.code, int) else exit_codes.CONFIG_ERROR
    except Exception:  # noqa: BLE001 - a bug: the traceback is the detail, as from the console script
        import traceback

        traceback.print_exc()
        return exit_codes.DEPLOY_FAILED


def cached_outcome(job: StackJob) -> StackOutcome | None:
    """The outcome of an unchanged stack from its cached plan (no child), marked as cached."""
    plan = plan_cache.lookup(job.name, job.stack_file)
    if plan is None:
        return None
    mandatory = [v for v in plan.get("policy", {}).get("violations", []) if v.get("level") == "mandatory"]
    code = exit_codes.POLICY_VIOLATION if mandatory else exit_codes.OK
    outcome = outcome_from_process(code, "", plan)
    outcome.changes = f"{outcome.changes} (cached)" if outcome.changes else "cached"
    if outcome.detail:
        outcome.detail += " (cached)"
    return outcome


def release_event_loop() -> None:
    """Stop the asyncio default executor's threads (Pulumi's RPCs run there) and start the next run
    on a new loop: a forked child has only the forking thread, and must not inherit a pool whose
    workers do not exist in it."""
    import asyncio

    others = {t: t.native_id for t in threading.enumerate() if t is not threading.current_thread()}
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        loop = None
    if loop is not None and not loop.is_running() and not loop.is_closed():
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    asyncio.set_event_loop(asyncio.new_event_loop())
    _wait_for_threads_to_exit([tid for thread, tid in others.items() if not thread.is_alive() and tid is not None])


# How long a thread the warm runner is done with may take to end before it stops waiting.
_THREAD_GRACE = 2.0


def _abandon_event_loop() -> bool:
    """After a preview interrupted by its timeout: cancel what its loop's executor has queued and
    give its threads `_THREAD_GRACE` seconds to end, without running the loop again. True if they all
    ended (this process may fork); the next run gets a new loop either way."""
    import asyncio

    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        loop = None
    executor = getattr(loop, "_default_executor", None)  # asyncio keeps it there; None if never used
    threads = list(getattr(executor, "_threads", ()))
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + _THREAD_GRACE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    asyncio.set_event_loop(asyncio.new_event_loop())
    if any(thread.is_alive() for thread in threads):
        return False
    _wait_for_threads_to_exit([t.native_id for t in threads if t.native_id is not None])
    return True


def _wait_for_threads_to_exit(native_ids: Sequence[int]) -> None:
    """Python's join returns before the joined thread has finished exiting: its thread-local
    destructors (OpenSSL's among them, through `cryptography`) still run, and take locks. A fork in
    that window copies a lock held by a thread the child does not have, and the child's next RSA
    key waits for it forever (seen once: a test worker forked right after the warm-up hung in the
    mock's key generation, blocked in OpenSSL's CRYPTO_THREAD_write_lock). So wait until the kernel
    no longer lists the joined threads (Linux: /proc/self/task; elsewhere a moment's grace). Only
    those: a thread of the caller's own (faulthandler's watchdog, a server) may run on."""
    if not native_ids:
        return
    if not os.path.isdir("/proc/self/task"):
        time.sleep(0.01)
        return
    deadline = time.monotonic() + _THREAD_GRACE
    pending = [f"/proc/self/task/{tid}" for tid in native_ids]
    while pending and time.monotonic() < deadline:
        pending = [path for path in pending if os.path.exists(path)]
        if pending:
            time.sleep(0.001)


@dataclass
class _Child:
    pid: int
    job: StackJob
    fd: int
    start: float
    deadline: float
    work: Path
    chunks: list[bytes] = field(default_factory=list)
    timed_out: bool = False


class WarmRunner:
    """`run(jobs)` -> one StackResult per job (job order), `on_result` as each finishes."""

    def __init__(
        self,
        parallel: int,
        timeout: float = 900.0,
        use_cache: bool = True,
        child_main: Callable[[list[str]], int] = run_preview_in_process,
        clock: Callable[[], float] = time.monotonic,
        work_dir: Path | None = None,
        warm_up: bool = True,
        policy_config: Path | None = None,
        fallback: Callable[[StackJob], StackOutcome] | None = None,
    ):
        if parallel < 1:
            raise ValueError(f"--parallel must be at least 1, got {parallel}")
        self.parallel = parallel
        self.timeout = timeout
        self.policy_config = policy_config
        self.use_cache = use_cache and plan_cache.enabled()
        self.warm_up = warm_up
        self.child_main = child_main
        self.clock = clock
        self.work_dir = work_dir
        self.warm_seconds: float | None = None
        self.warm_results: dict[int, StackResult] = {}
        # A warm-up that ran out of time may leave a thread of its loop running: this process then
        # forks nothing, and the other stacks run one at a time in interpreters of their own.
        self.may_fork = True
        self.fallback = fallback or OfflineRunner(timeout=timeout, work_dir=work_dir, policy_config=policy_config)

    # --- warm-up -------------------------------------------------------------------------------

    def warm(self, jobs: Sequence[StackJob]) -> float:
        """One offline preview in this process, of the first of the first three stacks whose
        program runs (a stack whose config is refused warms nothing: the next one is tried), then
        release the loop's threads and freeze the warm heap. Each preview made here is that stack's
        result, as a child would have reported it: `warm_results` (position in `jobs` -> result)."""
        start = time.perf_counter()
        self.warm_results = {}
        for position, job in enumerate(jobs[:3]):
            if not job.stack_file.exists():
                continue
            result = self._run_here(job)
            if result is None:
                continue
            self.warm_results[position] = result
            if result.code in (exit_codes.OK, exit_codes.POLICY_VIOLATION, exit_codes.TIMED_OUT):
                break
        if any(r.code == exit_codes.TIMED_OUT for r in self.warm_results.values()):
            # What the interrupted run left on its loop must run nowhere: not into another stack's
            # preview, not into the loop's shutdown (a thread stuck in a mock would hang it).
            self.may_fork = _abandon_event_loop()
        else:
            release_event_loop()
        # Children share the warm heap copy-on-write: keep the collector from walking (and so
        # copying) it in every child; a child only collects what it allocated itself.
        gc_tuning.settle()
        self.warm_seconds = time.perf_counter() - start
        return self.warm_seconds

    def _run_here(self, job: StackJob) -> StackResult | None:
        """The stack's preview in this process, its output kept from this process's own, read as a
        child's would be (out of time: TIMED_OUT); None if it raised (a child then runs it)."""
        work = Path(tempfile.mkdtemp(prefix=f"fleet-{job.name}-", dir=self.work_dir))
        start = self.clock()
        try:
            with _output_to(work):
                code, timed_out = self._guarded(lambda: self._preview(job, work))
            if timed_out:
                return _result(job, timed_out_outcome(self.timeout), self.clock() - start)
            if code is None:
                return None
            return _result(job, _outcome_of(code, work), self.clock() - start)
        finally:
            _remove_tree(work)

    def _preview(self, job: StackJob, work: Path) -> int:
        return self.child_main(preview_argv(job, work / "plan.json", self.use_cache, self.policy_config))

    def _guarded(self, fn: Callable[[], int]) -> tuple[int | None, bool]:
        """`fn()` under the per-stack timeout (SIGALRM, main thread): (its code or None if it
        raised, whether the time ran out). The alarm raises inside the preview, whose own handler
        may catch it and return a code: that the alarm fired is what counts."""
        use_alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM")
        fired = False

        class _WarmUpTimeout(Exception):
            pass

        def on_alarm(signum, frame):
            nonlocal fired
            fired = True
            raise _WarmUpTimeout()

        previous = signal.signal(signal.SIGALRM, on_alarm) if use_alarm else None
        code: int | None = None
        try:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, max(1.0, self.timeout))
            try:
                code = fn()
            finally:
                if use_alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
        except Exception:  # noqa: BLE001 - a failed warm-up only means colder children
            code = None
        finally:
            if use_alarm:
                signal.signal(signal.SIGALRM, previous)
        return code, fired

    # --- children ------------------------------------------------------------------------------

    def _child(self, job: StackJob, write_fd: int, work: Path) -> None:
        """In the forked child: run the stack, report one JSON line, exit without cleanup handlers."""
        status = 0
        try:
            import asyncio

            # The loop the parent left (its epoll instance and self-pipe) is shared by every forked
            # child: two children running at once on it steal each other's wakeups and hang. Each
            # child runs its program on a loop of its own.
            asyncio.set_event_loop(asyncio.new_event_loop())
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            gc_tuning.no_collection_until_exit()
            with _output_to(work):
                code = self._preview(job, work)
            outcome = _outcome_of(code, work)
            with os.fdopen(write_fd, "w") as out:
                out.write(json.dumps(asdict(outcome)) + "\n")
        except BaseException:  # noqa: BLE001 - nothing may escape into the parent's code paths
            status = 70
        finally:
            os._exit(status)

    def _spawn(self, job: StackJob, sel: selectors.BaseSelector, running: dict[int, _Child]) -> None:
        work = Path(tempfile.mkdtemp(prefix=f"fleet-{job.name}-", dir=self.work_dir))
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        start = self.clock()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which never returns
            os.close(read_fd)
            self._child(job, write_fd, work)
        os.close(write_fd)
        running[read_fd] = _Child(pid, job, read_fd, start, start + self.timeout, work)
        sel.register(read_fd, selectors.EVENT_READ)

    def _finish(self, child: _Child) -> StackResult:
        _, status = os.waitpid(child.pid, 0)
        seconds = self.clock() - child.start
        outcome = self._outcome(child, status)
        _remove_tree(child.work)
        return _result(child.job, outcome, seconds)

    def _outcome(self, child: _Child, status: int) -> StackOutcome:
        if child.timed_out:
            return timed_out_outcome(self.timeout)
        text = b"".join(child.chunks).decode(errors="replace").strip()
        if text:
            try:
                return StackOutcome(**json.loads(text.splitlines()[-1]))
            except (ValueError, TypeError):
                pass
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            how = f"killed by signal {signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig}"
        else:
            how = f"exit {os.WEXITSTATUS(status)}"
        last = _last_line(child.work / "stderr.txt")
        return StackOutcome(
            exit_codes.DEPLOY_FAILED,
            one_line(f"offline preview crashed ({how}) before reporting" + (f": {last}" if last else "")),
        )

    def run(self, jobs: Sequence[StackJob], on_result: OnResult | None = None) -> list[StackResult]:
        results: dict[int, StackResult] = {}
        done = 0

        def report(index: int, result: StackResult) -> None:
            nonlocal done
            results[index] = result
            done += 1
            if on_result is not None:
                on_result(result, done, len(jobs))

        pending: list[tuple[int, StackJob]] = []
        for index, job in enumerate(jobs):
            outcome = cached_outcome(job) if self.use_cache and job.stack_file.exists() else None
            if outcome is not None:
                report(index, _result(job, outcome, 0.0))
            else:
                pending.append((index, job))
        if len(pending) > 1 and self.warm_up and self.warm_seconds is None:
            # One stack alone gains nothing from a warm-up run before it. The stacks the warm-up
            # previewed are done.
            self.warm([job for _, job in pending])
            for position in sorted(self.warm_results, reverse=True):
                index, _ = pending.pop(position)
                report(index, self.warm_results[position])
        index_of = {id(job): index for index, job in pending}
        queue = [job for _, job in pending]
        running: dict[int, _Child] = {}
        sel = selectors.DefaultSelector()
        if not self.may_fork:
            for job in queue:
                start = self.clock()
                report(index_of[id(job)], _result(job, self.fallback(job), self.clock() - start))
            queue = []
        try:
            while queue or running:
                while queue and len(running) < self.parallel:
                    self._spawn(queue.pop(0), sel, running)
                now = self.clock()
                wait = max(0.0, min(c.deadline for c in running.values()) - now)
                for key, _ in sel.select(timeout=min(wait, 1.0)):
                    child = running[key.fd]
                    data = os.read(key.fd, 65536)
                    if data:
                        child.chunks.append(data)
                        continue
                    sel.unregister(key.fd)
                    os.close(key.fd)
                    del running[key.fd]
                    report(index_of[id(child.job)], self._finish(child))
                now = self.clock()
                for child in running.values():
                    if now >= child.deadline and not child.timed_out:
                        child.timed_out = True
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(child.pid, signal.SIGKILL)  # its pipe closes: reaped above
        except BaseException:
            for child in running.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(child.pid, 0)
                _remove_tree(child.work)
            raise
        finally:
            sel.close()
        return [results[i] for i in range(len(jobs))]


@contextlib.contextmanager
def _output_to(work: Path) -> Iterator[None]:
    """File descriptors 1 and 2, and sys.stdout/sys.stderr, away from this process's own for the
    duration: stdout to /dev/null, stderr to `work/stderr.txt` (what the outcome is read from).
    Whatever they were (a terminal, a test's capture, closed, None) is restored after, whatever
    happens in between or while they are set up."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    with contextlib.ExitStack() as restore:
        for fd in (1, 2):
            try:
                # Above 2: with fd 1 closed, a plain dup would land on 1 and be overwritten below.
                saved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
            except OSError:
                saved = None  # closed here: closed again after
            restore.callback(_restore_fd, fd, saved)
        targets = ((1, os.devnull, os.O_WRONLY), (2, work / "stderr.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
        for fd, path, flags in targets:
            opened = os.open(path, flags, 0o600)
            if opened != fd:  # it may be `fd` itself, if that was closed
                os.dup2(opened, fd)
                os.close(opened)
        out_stream = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        err_stream = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
        restore.callback(_restore_streams, sys.stdout, sys.stderr, out_stream, err_stream)
        sys.stdout, sys.stderr = out_stream, err_stream
        yield


def _restore_fd(fd: int, saved: int | None) -> None:
    if saved is None:
        with contextlib.suppress(OSError):
            os.close(fd)
        return
    os.dup2(saved, fd)
    os.close(saved)


def _restore_streams(stdout: Any, stderr: Any, *ours: Any) -> None:
    for stream in ours:
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    sys.stdout, sys.stderr = stdout, stderr


def _result(job: StackJob, outcome: StackOutcome, seconds: float) -> StackResult:
    return StackResult(job.name, outcome.code, 1, seconds, outcome.detail, outcome.resources, outcome.changes)


def _outcome_of(code: int, work: Path) -> StackOutcome:
    """One preview's outcome from its exit code and what it left in `work` (stderr, the plan)."""
    return outcome_from_process(code, (work / "stderr.txt").read_text(errors="replace"), read_plan(work / "plan.json"))


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def run_offline_fleet(
    jobs: Sequence[StackJob],
    parallel: int,
    timeout: float,
    use_cache: bool = True,
    on_result: OnResult | None = None,
    policy_config: Path | None = None,
) -> list[StackResult]:
    """`fleet preview --offline`: the warm runner."""
    return WarmRunner(parallel, timeout=timeout, use_cache=use_cache, policy_config=policy_config).run(
        jobs, on_result=on_result
    )
