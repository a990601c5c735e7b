"""Many stacks under a concurrency bound, failures isolated, transient failures retried.

`run_fleet(jobs, runner, parallel, ...)` is the scheduler: at most `parallel` runners at once, a
runner's failure (or exception) is that stack's result and never stops the others, and transient
failures (another update holds the stack's lock: `ConcurrentUpdateError`) are retried with
exponential backoff. Sleep, clock and jitter are injected, so tests need no real waiting.

Runners: `OfflineRunner` runs each stack's offline preview in its own process (Pulumi mocks are
process-global, so two stacks cannot share one), `AutomationRunner` drives the Automation API.
Offline fleets run on the warm runner (`programs/platformctl/warm_runner.py`: one warm interpreter,
a forked child per stack) where the platform can fork; `warm_fleet` hands them over.
"""

from __future__ import annotations

import glob
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from programs.api import engine
from programs.api.results import StackResult
from programs.platformctl import events, exit_codes
from programs.stack_files import REPO_ROOT

FLEET_OPERATIONS = ("preview", "up")
# Texts of a lock conflict when a runner raises instead of returning (see pulumi.automation.errors).
_TRANSIENT_TEXTS = ("[409] conflict", "another update is currently in progress", "the stack is currently locked by")


@dataclass(frozen=True)
class StackJob:
    name: str
    stack_file: Path
    operation: str = "preview"


@dataclass
class StackOutcome:
    """What one attempt of a runner reports."""

    code: int
    detail: str = ""  # one line when not ok
    resources: int | None = None
    changes: str = ""
    transient: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # total tries per stack, including the first
    base_delay: float = 5.0
    factor: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.2  # +-20 %, so stacks that collided do not collide again in step

    def delay(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        raw = min(self.max_delay, self.base_delay * self.factor ** (retry - 1))
        return max(0.0, raw * (1 + self.jitter * (2 * rng() - 1)))


Runner = Callable[[StackJob], StackOutcome]


def is_transient(exc: BaseException) -> bool:
    try:
        from pulumi.automation.errors import ConcurrentUpdateError
    except ImportError:  # pragma: no cover - pulumi is a dependency
        ConcurrentUpdateError = ()  # type: ignore[assignment]  # noqa: N806
    if ConcurrentUpdateError and isinstance(exc, ConcurrentUpdateError):
        return True
    text = str(exc).lower()
    return any(t in text for t in _TRANSIENT_TEXTS)


def one_line(text: str, limit: int = 160) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def run_one(
    job: StackJob,
    runner: Runner,
    retry: RetryPolicy,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    rng: Callable[[], float],
) -> StackResult:
    """One stack with retries; anything the runner raises becomes this stack's failure."""
    start = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            outcome = runner(job)
        except Exception as exc:  # noqa: BLE001 - isolation: one stack's crash is its own result
            outcome = StackOutcome(
                exit_codes.CONCURRENT_UPDATE if is_transient(exc) else exit_codes.DEPLOY_FAILED,
                one_line(f"{type(exc).__name__}: {exc}"),
                transient=is_transient(exc),
            )
        if outcome.code == exit_codes.OK or not outcome.transient or attempt >= retry.attempts:
            detail = outcome.detail
            if outcome.transient and outcome.code != exit_codes.OK:
                detail = f"{detail} (gave up after {attempt} attempts)"
            return StackResult(
                job.name, outcome.code, attempt, clock() - start, detail, outcome.resources, outcome.changes
            )
        sleep(retry.delay(attempt, rng))


def run_fleet(
    jobs: Sequence[StackJob],
    runner: Runner,
    parallel: int,
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
    on_result: Callable[[StackResult, int, int], None] | None = None,
) -> list[StackResult]:
    """Run every job, at most `parallel` at once; results in job order."""
    if parallel < 1:
        raise ValueError(f"--parallel must be at least 1, got {parallel}")
    done = 0
    lock = threading.Lock()

    def task(job: StackJob) -> StackResult:
        nonlocal done
        result = run_one(job, runner, retry, sleep, clock, rng)
        if on_result is not None:
            with lock:
                done += 1
                on_result(result, done, len(jobs))
        return result

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="fleet") as pool:
        return list(pool.map(task, jobs))


def default_parallel() -> int:
    """Stacks at once when not told: one per CPU."""
    return max(1, os.cpu_count() or 1)


def fleet_exit_code(results: Sequence[StackResult]) -> int:
    return exit_codes.OK if all(r.ok for r in results) else exit_codes.FLEET_FAILED


# --- which stacks ------------------------------------------------------------------------------


def stack_name_of(path: Path) -> str:
    """`Pulumi.<name>.yaml` -> name; any other file name -> its stem."""
    name = path.name
    for suffix in (".yaml", ".yml"):
        if name.startswith("Pulumi.") and name.endswith(suffix):
            return name[len("Pulumi.") : -len(suffix)]
    return path.stem


def repo_stack_files(root: Path = REPO_ROOT) -> list[Path]:
    """The repository's own stacks: every Pulumi.<stack>.yaml beside Pulumi.yaml, except the ephemeral
    `Pulumi.ci-<name>.yaml` that `platformctl ci up` writes (`platformctl ci` owns those)."""
    return sorted(
        p for p in root.glob("Pulumi.*.y*ml") if p.name.count(".") >= 2 and not p.name.startswith("Pulumi.ci-")
    )


def select_jobs(
    operation: str,
    stacks: str | None = None,
    stacks_dir: Path | None = None,
    stack_files: str | None = None,
    root: Path = REPO_ROOT,
) -> list[StackJob]:
    """The stacks to run: names (`--stacks a,b`, files in `--stacks-dir` or the repo), every stack
    file of `--stacks-dir`, the files matching `--stack-files GLOB`, or without any of them the
    repository's own stacks. Missing files stay in the list: their run fails and is reported like any
    other failure."""
    check_operation(operation, allow_list=True)
    if stacks and stack_files:
        raise ValueError("give either --stacks or --stack-files, not both")
    jobs: list[StackJob] = []
    if stacks:
        base = stacks_dir or root
        names = [n.strip() for n in stacks.split(",") if n.strip()]
        jobs = [StackJob(n, base / f"Pulumi.{n}.yaml", operation) for n in names]
    elif stack_files:
        paths = sorted(Path(p) for p in glob.glob(stack_files))
        jobs = [StackJob(stack_name_of(p), p, operation) for p in paths]
    elif stacks_dir:
        paths = sorted(p for p in stacks_dir.glob("Pulumi.*.y*ml") if p.name.count(".") >= 2)
        jobs = [StackJob(stack_name_of(p), p, operation) for p in paths]
    if not jobs and not (stacks or stack_files or stacks_dir):
        jobs = [StackJob(stack_name_of(p), p, operation) for p in repo_stack_files(root)]
    return checked_jobs(jobs, root)


def check_operation(operation: str, allow_list: bool = False) -> None:
    if operation not in (*FLEET_OPERATIONS, *(("list",) if allow_list else ())):
        raise ValueError(f"fleet runs {' or '.join(FLEET_OPERATIONS)}, not {operation!r}")


def checked_jobs(jobs: list[StackJob], root: Path = REPO_ROOT) -> list[StackJob]:
    """`jobs`, unless the selection is empty or names a stack twice (ValueError)."""
    if not jobs:
        raise ValueError(
            "no stacks selected: give --stacks a,b,..., --stacks-dir DIR or --stack-files GLOB "
            f"(without them: the Pulumi.<stack>.yaml files beside {root / 'Pulumi.yaml'})"
        )
    seen: set[str] = set()
    dupes = sorted({j.name for j in jobs if j.name in seen or seen.add(j.name)})
    if dupes:
        raise ValueError(f"stack listed twice: {', '.join(dupes)}")
    return jobs


# --- runners ---------------------------------------------------------------------------------


def preview_argv(
    job: StackJob, plan_path: Path, use_cache: bool = True, policy_config: Path | None = None
) -> list[str]:
    """The `platformctl` arguments of one stack's offline preview (a subprocess or a warm runner's child)."""
    return (
        [
            "preview",
            "--stack",
            job.name,
            "--offline",
            "--config-file",
            str(job.stack_file),
            "--quiet",
            "--json",
            str(plan_path),
        ]
        + ([] if use_cache else ["--no-cache"])
        + (["--policy-config", str(policy_config)] if policy_config is not None else [])
    )


def offline_command(
    job: StackJob, json_path: Path, python: str = sys.executable, policy_config: Path | None = None
) -> list[str]:
    """The offline preview of one stack, in its own interpreter (mocks are process-global)."""
    return [python, "-m", "programs.platformctl.cli", *preview_argv(job, json_path, policy_config=policy_config)]


def timed_out_outcome(timeout: float) -> StackOutcome:
    """A stack's preview that ran past `--timeout` (either runner)."""
    return StackOutcome(exit_codes.TIMED_OUT, f"offline preview timed out after {timeout:g}s (--timeout)")


def read_plan(path: Path) -> dict[str, Any] | None:
    """The plan JSON an offline preview wrote, or None if it wrote none (or half of one)."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def outcome_from_process(returncode: int, stderr: str, plan: dict[str, Any] | None) -> StackOutcome:
    """Interpret one offline preview process: its exit code, stderr and the plan JSON it wrote."""
    resources = len(plan["resources"]) if plan and plan.get("resources") is not None else None
    err_lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    if returncode == exit_codes.OK:
        return StackOutcome(exit_codes.OK, resources=resources, changes=f"{resources} to create" if resources else "")
    crashed = any(ln.startswith("Traceback") for ln in err_lines)
    if returncode == exit_codes.CONFIG_ERROR and not crashed:
        problems = [ln for ln in err_lines if ln.startswith("k8s-platform:") or ln.startswith("aws:")]
        # Else the first `error:` line: the reason (a YAML error's later lines are context).
        errors = [ln for ln in err_lines if ln.startswith("error:")]
        detail = (
            "; ".join(problems)
            if problems
            else (errors[0] if errors else err_lines[0] if err_lines else "invalid configuration")
        )
        return StackOutcome(exit_codes.CONFIG_ERROR, one_line(detail.removeprefix("error: ")), resources)
    violations = (plan or {}).get("policy", {}).get("violations", [])
    mandatory = [v for v in violations if v.get("level") == "mandatory"]
    if returncode == exit_codes.POLICY_VIOLATION and mandatory and not crashed:
        names = sorted({v.get("policy", "?") for v in mandatory})
        return StackOutcome(
            exit_codes.POLICY_VIOLATION,
            one_line(f"{len(mandatory)} mandatory policy violations: {', '.join(names)}"),
            resources,
        )
    last = err_lines[-1] if err_lines else f"exit {returncode}"
    return StackOutcome(
        exit_codes.DEPLOY_FAILED, one_line(f"offline preview failed (exit {returncode}): {last}"), resources
    )


class OfflineRunner:
    """Runs `offline_command` through `run` (subprocess.run by default; injectable for tests)."""

    def __init__(
        self,
        run: Callable[..., Any] = subprocess.run,
        python: str = sys.executable,
        cwd: Path = REPO_ROOT,
        timeout: float = 900.0,
        work_dir: Path | None = None,
        policy_config: Path | None = None,
    ):
        self.run = run
        self.policy_config = policy_config
        self.python = python
        self.cwd = cwd
        self.timeout = timeout
        self.work_dir = work_dir

    def __call__(self, job: StackJob) -> StackOutcome:
        with tempfile.TemporaryDirectory(prefix=f"fleet-{job.name}-", dir=self.work_dir) as tmp:
            plan_path = Path(tmp) / "plan.json"
            try:
                proc = self.run(
                    offline_command(job, plan_path, self.python, self.policy_config),
                    capture_output=True,
                    text=True,
                    cwd=str(self.cwd),
                    timeout=self.timeout,
                )
            except subprocess.TimeoutExpired:
                return timed_out_outcome(self.timeout)
            return outcome_from_process(proc.returncode, proc.stderr, read_plan(plan_path))


def warm_fleet(
    jobs: Sequence[StackJob],
    parallel: int,
    timeout: float,
    use_cache: bool = True,
    on_result: Callable[[StackResult, int, int], None] | None = None,
    policy_config: Path | None = None,
) -> list[StackResult] | None:
    """An offline fleet on the warm runner; None where it cannot fork (then `OfflineRunner` runs it).

    The warm runner's children run `platformctl preview --offline` in-process, so it is imported here,
    when an offline fleet starts, not with this module."""
    from programs.platformctl import warm_runner

    if not warm_runner.available():
        return None
    return warm_runner.run_offline_fleet(
        jobs, parallel, timeout, use_cache=use_cache, on_result=on_result, policy_config=policy_config
    )


class AutomationRunner:
    """Drives one stack through the Automation API; each engine event goes to `on_event(stack, event)`."""

    def __init__(
        self,
        operation: str,
        root: Path = REPO_ROOT,
        opener: Callable[..., Any] | None = None,
        on_event: Callable[[str, Any], None] | None = None,
        policy_config: Path | None = None,
    ):
        self.operation = operation
        self.root = root
        self.opener = opener
        self.on_event = on_event
        self.policy_config = policy_config

    def __call__(self, job: StackJob) -> StackOutcome:
        from components.config import ConfigError

        in_repo = job.stack_file.resolve() == (self.root / f"Pulumi.{job.name}.yaml").resolve()
        try:
            req = engine.stack_request(
                self.operation,
                job.name,
                self.root,
                config_file=None if in_repo else job.stack_file,
                policy_config=self.policy_config,
            )
        except ConfigError as exc:
            return StackOutcome(exit_codes.CONFIG_ERROR, one_line("; ".join(exc.problems)))
        except (FileNotFoundError, ValueError) as exc:
            return StackOutcome(exit_codes.CONFIG_ERROR, one_line(str(exc)))
        missing = engine.missing_policy_files(req)
        if missing:
            return StackOutcome(exit_codes.CONFIG_ERROR, missing)
        on_event = self.on_event
        watch = None if on_event is None else (lambda event: on_event(job.name, event))
        outcome = engine.run_request(req, self.opener or engine.open_stack, on_event=watch)
        return StackOutcome(
            outcome.code,
            one_line(outcome.message),
            changes=events.change_phrase(outcome.summary.changes, self.operation == "preview"),
            transient=outcome.transient,
        )
