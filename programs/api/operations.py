"""The public operations of `programs.api` (see the package docstring): each returns a typed result
and never raises for bad input or a failed run; the result's `exit_code` is what platformctl exits with."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from components.config import ConfigError
from programs import deployed_version
from programs.api import engine, offline_preview, scheduler
from programs.api.engine import INPUT_ERRORS, EventCallback, StackRequest, problems_of
from programs.api.offline_preview import plan_events
from programs.api.results import (
    FleetResult,
    InputProblem,
    PolicyReport,
    PreviewResult,
    Resource,
    RunResult,
    StackResult,
    Step,
    UpdateResult,
    Violation,
)
from programs.offline import PROJECT, OfflineProgramError
from programs.plan import empty_plan
from programs.platformctl import events, exit_codes, plan_cache
from programs.platformctl.preview_report import diff_plans
from programs.stack_files import REPO_ROOT

Opener = Callable[[StackRequest], Any]  # StackRequest -> an object with preview/up/destroy/refresh(on_event=...)


def input_problems(exc: BaseException) -> tuple[InputProblem, ...]:
    """The structured problems of an input error (what `platformctl` prints one per line)."""
    if isinstance(exc, ConfigError):
        return tuple(InputProblem.parse(p, "config") for p in exc.problems)
    if isinstance(exc, FileNotFoundError):
        return (InputProblem(None, str(exc), "file"),)
    if type(exc).__name__ == "PolicyConfigError" and hasattr(exc, "problems"):
        return tuple(InputProblem.parse(p, "policy-config") for p in exc.problems)
    return (InputProblem(None, str(exc), "input"),)


def _problem_line(stack: str, problems: Sequence[InputProblem]) -> str:
    return f"stack '{stack}': " + "; ".join(" ".join(str(p).split()) for p in problems)


class _Recorder:
    """Folds the events for the result, keeps the steps, forwards every event to the caller's callback."""

    def __init__(self, operation: str, on_event: EventCallback | None):
        self.fold = events.EventFold(operation)
        self.steps: list[Step] = []
        self.on_event = on_event

    def __call__(self, event: Any) -> None:
        self.fold.feed(event)
        pre = event.resource_pre_event
        if pre is not None:
            meta = pre.metadata
            op = meta.op.value if hasattr(meta.op, "value") else str(meta.op)
            if op != "same" and meta.type != events.STACK_TYPE:
                self.steps.append(Step(op, meta.urn, meta.type, events.urn_name(meta.urn)))
        if self.on_event is not None:
            self.on_event(event)


def _violations(summary: events.RunSummary) -> tuple[Violation, ...]:
    return tuple(Violation(v.policy, v.level, v.urn, v.message, v.pack) for v in summary.policy)


def _engine_fields(summary: events.RunSummary, steps: Sequence[Step]) -> dict[str, Any]:
    return dict(
        changes=dict(summary.changes),
        steps=tuple(steps),
        failed=tuple(summary.failed),
        engine_errors=tuple(summary.errors),
        warnings=tuple(summary.warnings),
        duration_seconds=summary.duration_seconds,
        policy_packs=dict(summary.policy_packs),
        violations=_violations(summary),
        summary=summary,
    )


def _failure(operation: str, stack: str, code: int, problems: tuple[InputProblem, ...], **extra: Any) -> RunResult:
    cls = PreviewResult if operation == "preview" else UpdateResult
    return cls(stack, code, errors=problems, message=_problem_line(stack, problems), operation=operation, **extra)


def _source(exc: BaseException) -> dict[str, Any]:
    """`config_source` of a preview result: the stack file a ConfigError's problems are in."""
    source = getattr(exc, "source", None) if isinstance(exc, ConfigError) else None
    return {"config_source": str(source)} if source else {}


# --- request level: what platformctl's up/destroy/refresh use ------------------------------------


def stack_request(operation: str, stack: str, *, root: Path = REPO_ROOT, **options: Any) -> StackRequest:
    """Resolve one Automation API operation (stack file validated, policy config chosen); raises
    ConfigError / FileNotFoundError / ValueError on bad input. Options: config_file, policy_config,
    parallel, message, targets, refresh, expect_no_changes, diff."""
    return engine.stack_request(operation, stack, root, **options)


def run(req: StackRequest, *, opener: Opener | None = None, on_event: EventCallback | None = None) -> RunResult:
    """Run a resolved request through the Automation API; `opener` defaults to a LocalWorkspace on
    `req.work_dir` (needs the pulumi CLI). A PreviewResult for `preview`, else an UpdateResult."""
    recorder = _Recorder(req.operation, on_event)
    outcome = engine.run_request(req, opener or engine.open_stack, on_event=recorder)
    fields = _engine_fields(outcome.summary, recorder.steps)
    errors = (InputProblem(None, outcome.message, "tool"),) if outcome.code == exit_codes.CONFIG_ERROR else ()
    if req.operation == "preview":
        return PreviewResult(
            req.stack,
            outcome.code,
            errors=errors,
            message=outcome.message,
            operation="preview",
            offline=False,
            policy_config=str(req.policy_config) if req.policy_config else None,
            **fields,
        )
    return UpdateResult(
        req.stack, outcome.code, errors=errors, message=outcome.message, operation=req.operation, **fields
    )


def _operate(
    operation: str, stack: str, root: Path, opener: Opener | None, on_event: EventCallback | None, **options: Any
) -> RunResult:
    try:
        req = engine.stack_request(operation, stack, root, **options)
    except INPUT_ERRORS as exc:
        extra = _source(exc) if operation == "preview" else {}
        return _failure(operation, stack, exit_codes.CONFIG_ERROR, input_problems(exc), **extra)
    missing = engine.missing_policy_files(req)
    if missing:
        return _failure(operation, stack, exit_codes.CONFIG_ERROR, (InputProblem(None, missing, "file"),))
    return run(req, opener=opener, on_event=on_event)


# --- the operations ----------------------------------------------------------------------------------


def preview(
    stack: str,
    *,
    offline: bool = True,
    config_file: Path | str | None = None,
    policy_config: Path | str | None = None,
    diff_against: Path | str | Mapping[str, Any] | None = None,
    previous_plan: Path | str | Mapping[str, Any] | None = None,
    use_cache: bool = True,
    show_secrets: bool = False,
    on_event: EventCallback | None = None,
    root: Path = REPO_ROOT,
    opener: Opener | None = None,
    parallel: int | None = None,
    message: str | None = None,
    targets: Sequence[str] = (),
    refresh: bool = False,
    expect_no_changes: bool = False,
    diff: bool = False,
) -> PreviewResult:
    """Preview one stack: offline (default; the program under mocks in this process, the policy pack on
    what it registered) or through the Automation API (`offline=False`; `opener` replaces the
    LocalWorkspace). The engine options (parallel ... diff) apply to the Automation API preview only.

    Offline only: `diff_against` (a saved plan JSON file or the plan itself) fills `diff`;
    `use_cache=False` runs the program even when the plan cache holds this stack unchanged (an
    explicit `policy_config`, `show_secrets` or another `root` never use the cache). The policy config
    is found before the program runs. `previous_plan` (a saved plan of the deployed stack) tells the
    program the deployed EKS minor (`cluster.eks.deployedVersion`), so a skipped minor or a downgrade
    is refused (exit 2). A bug in platformctl itself (not bad input) raises."""
    if not offline:
        if diff_against is not None:
            problem = InputProblem(None, "diff_against compares offline plans (offline=True)", "argument")
            return _failure("preview", stack, exit_codes.CONFIG_ERROR, (problem,), offline=False)  # type: ignore[return-value]
        return _operate(
            "preview",
            stack,
            root,
            opener,
            on_event,
            config_file=config_file,  # type: ignore[return-value]
            policy_config=policy_config,
            parallel=parallel,
            message=message,
            targets=tuple(targets),
            refresh=refresh,
            expect_no_changes=expect_no_changes,
            diff=diff,
        )
    start = time.monotonic()
    config_path = Path(config_file) if config_file else None
    policy_path = Path(policy_config) if policy_config else None
    try:
        old_plan = _old_plan(diff_against)
        compute = offline_preview.offline_plan  # looked up per call: tests replace it
        extra: dict[str, Any] = {} if root == REPO_ROOT else {"root": root}
        if previous_plan is not None:
            # The deployed minor the previous plan records: the program refuses a skip or a downgrade from it.
            deployed = deployed_version.from_plan(_old_plan(previous_plan) or {})
            if deployed is not None:
                extra["deployed_version"] = deployed
                use_cache = False
        # An explicit policy config is not part of the cache key: such a run always runs the program.
        plan, cached = plan_cache.cached_offline_plan(
            stack,
            config_path,
            show_secrets,
            use_cache and policy_path is None and root == REPO_ROOT,
            lambda name, path, secrets: compute(name, path, secrets, policy_path, **extra),
        )
    except INPUT_ERRORS as exc:
        return _failure(
            "preview",
            stack,
            exit_codes.CONFIG_ERROR,
            input_problems(exc),  # type: ignore[return-value]
            offline=True,
            plan=empty_plan(PROJECT, stack, problems_of(exc)),
            **_source(exc),
        )
    except OfflineProgramError as exc:
        problems = tuple(InputProblem(None, p, "program") for p in exc.problems)
        return _failure(
            "preview",
            stack,
            exit_codes.DEPLOY_FAILED,
            problems,  # type: ignore[return-value]
            offline=True,
            plan=empty_plan(PROJECT, stack, exc.problems),
        )
    recorder = _Recorder("preview", on_event)
    for event in plan_events(plan, time.monotonic() - start):
        recorder(event)
    fields = _engine_fields(recorder.fold.result(), recorder.steps)
    policy = plan.get("policy") or {}
    fields["violations"] = tuple(
        Violation(v["policy"], v["level"], v.get("urn"), v["message"], policy.get("pack", ""))
        for v in policy.get("violations", [])
    )
    mandatory = [v for v in fields["violations"] if v.level == "mandatory"]
    text = ""
    if mandatory:
        names = sorted({f"{v.pack}/{v.policy}" for v in mandatory})
        text = f"stack '{stack}': {len(mandatory)} mandatory policy violations ({', '.join(names)})"
    return PreviewResult(
        stack,
        exit_codes.POLICY_VIOLATION if mandatory else exit_codes.OK,
        message=text,
        operation="preview",
        offline=True,
        resources=tuple(Resource.from_plan(r) for r in plan["resources"]),
        outputs=plan.get("outputs") or {},
        plan=plan,
        policy_config=policy.get("config"),
        stack_info=plan.get("stackInfo") or {},
        cached=cached,
        diff=diff_plans(old_plan, plan) if old_plan is not None else None,
        **fields,
    )


def _old_plan(diff_against: Path | str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if diff_against is None:
        return None
    if isinstance(diff_against, (str, Path)):
        return offline_preview.read_plan_file(Path(diff_against))
    if not isinstance(diff_against.get("resources"), list):
        raise ValueError("diff_against: not a plan (expected an object with a 'resources' list)")
    return dict(diff_against)


def up(
    stack: str,
    *,
    config_file: Path | str | None = None,
    policy_config: Path | str | None = None,
    on_event: EventCallback | None = None,
    root: Path = REPO_ROOT,
    opener: Opener | None = None,
    parallel: int | None = None,
    message: str | None = None,
    targets: Sequence[str] = (),
    refresh: bool = False,
    expect_no_changes: bool = False,
    diff: bool = False,
) -> UpdateResult:
    """Deploy one stack through the Automation API with the policy pack attached. Calling it is the
    confirmation: there is no prompt (platformctl asks; a tool decides for itself)."""
    return _operate(
        "up",
        stack,
        root,
        opener,
        on_event,
        config_file=config_file,  # type: ignore[return-value]
        policy_config=policy_config,
        parallel=parallel,
        message=message,
        targets=tuple(targets),
        refresh=refresh,
        expect_no_changes=expect_no_changes,
        diff=diff,
    )


def destroy(
    stack: str,
    *,
    config_file: Path | str | None = None,
    on_event: EventCallback | None = None,
    root: Path = REPO_ROOT,
    opener: Opener | None = None,
    parallel: int | None = None,
    message: str | None = None,
    targets: Sequence[str] = (),
    diff: bool = False,
) -> UpdateResult:
    """Destroy one stack's resources through the Automation API (no policy pack: the engine takes none)."""
    return _operate(
        "destroy",
        stack,
        root,
        opener,
        on_event,
        config_file=config_file,  # type: ignore[return-value]
        parallel=parallel,
        message=message,
        targets=tuple(targets),
        diff=diff,
    )


def refresh(
    stack: str,
    *,
    config_file: Path | str | None = None,
    on_event: EventCallback | None = None,
    root: Path = REPO_ROOT,
    opener: Opener | None = None,
    parallel: int | None = None,
    message: str | None = None,
    targets: Sequence[str] = (),
    expect_no_changes: bool = False,
    diff: bool = False,
) -> UpdateResult:
    """Refresh one stack's state from the cloud through the Automation API."""
    return _operate(
        "refresh",
        stack,
        root,
        opener,
        on_event,
        config_file=config_file,  # type: ignore[return-value]
        parallel=parallel,
        message=message,
        targets=tuple(targets),
        expect_no_changes=expect_no_changes,
        diff=diff,
    )


def fleet_jobs(
    operation: str,
    stacks: str | Sequence[str | Path | scheduler.StackJob] | None = None,
    stacks_dir: Path | None = None,
    stack_files: str | None = None,
    root: Path = REPO_ROOT,
) -> list[scheduler.StackJob]:
    """The stacks of a fleet: a comma-separated string or a list of names (files in `stacks_dir` or
    `root`), stack file paths or `StackJob`s; else every stack file of `stacks_dir`, those matching the
    `stack_files` glob, or without any of them the repository's own `Pulumi.<stack>.yaml` files
    (`platformctl fleet list`). ValueError on an empty or duplicated selection."""
    if stacks is None or isinstance(stacks, str):
        return scheduler.select_jobs(operation, stacks, stacks_dir, stack_files, root)
    items = list(stacks)
    if all(isinstance(i, str) for i in items):
        return scheduler.select_jobs(operation, ",".join(items), stacks_dir, stack_files, root)  # type: ignore[arg-type]
    scheduler.check_operation(operation, allow_list=True)
    return scheduler.checked_jobs(
        [
            i
            if isinstance(i, scheduler.StackJob)
            else scheduler.StackJob(scheduler.stack_name_of(i), i, operation)
            if isinstance(i, Path)
            else scheduler.StackJob(i, (stacks_dir or root) / f"Pulumi.{i}.yaml", operation)
            for i in items
        ],
        root,
    )


def fleet_problem(
    operation: str, offline: bool, policy_config: Path | str | None = None, needs_cli: bool = True
) -> InputProblem | None:
    """What stops a fleet before its stacks are chosen (`fleet` checks it first): a missing policy
    config, an offline `up`, a missing pulumi CLI for an Automation API fleet (`needs_cli`)."""
    if policy_config is not None and not Path(policy_config).is_file():
        return InputProblem(None, f"{policy_config}: no such policy config file (--policy-config)", "file")
    if offline and operation != "preview":
        return InputProblem(None, "fleet --offline only previews (there is no offline up)", "argument")
    if not offline and needs_cli and engine.pulumi_cli_missing():
        return InputProblem(None, engine.cli_missing_line(f"fleet {operation}"), "tool")
    return None


def fleet(
    stacks: str | Sequence[str | Path | scheduler.StackJob] | None = None,
    *,
    operation: str = "preview",
    offline: bool = True,
    parallel: int | None = None,
    stacks_dir: Path | None = None,
    stack_files: str | None = None,
    policy_config: Path | str | None = None,
    retries: int = 2,
    backoff: float = 5.0,
    timeout: float = 900.0,
    use_cache: bool = True,
    root: Path = REPO_ROOT,
    opener: Opener | None = None,
    runner: scheduler.Runner | None = None,
    on_event: Callable[[str, Any], None] | None = None,
    on_result: Callable[[StackResult, int, int], None] | None = None,
    on_start: Callable[[list[scheduler.StackJob], int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> FleetResult:
    """Preview (offline: the warm runner, one forked child per stack, since mocks are process-global;
    a fresh interpreter per stack where it cannot fork) or deploy many stacks, at most `parallel` at
    once (default: the number of CPUs); a failing stack never stops the others; a stack over `timeout`
    seconds (offline) is `TIMED_OUT` (8); a locked stack is retried `retries` times with exponential
    backoff from `backoff` seconds. Without `stacks`/`stacks_dir`/`stack_files`: the repository's
    stacks. `policy_config` replaces every stack's own; `use_cache=False` runs unchanged stacks too.
    `on_event(stack, event)` gets the engine events of Automation API runs, `on_result(result, done,
    total)` each finished stack, `on_start(jobs, parallel)` the selection before the first stack starts.
    `runner` (a StackJob -> StackOutcome callable) replaces the runner `offline` would choose."""
    chosen = parallel if parallel is not None else scheduler.default_parallel()
    policy_path = Path(policy_config) if policy_config is not None else None
    problem = fleet_problem(operation, offline, policy_path, needs_cli=runner is None and opener is None)
    if problem is not None:
        return FleetResult(operation, offline, chosen, exit_codes.CONFIG_ERROR, errors=(problem,))
    try:
        jobs = fleet_jobs(operation, stacks, stacks_dir, stack_files, root)
        scheduler.check_operation(operation)
        if chosen < 1:
            raise ValueError(f"--parallel must be at least 1, got {chosen}")
        if retries < 0 or backoff < 0:
            raise ValueError("--retries and --backoff must not be negative")
    except ValueError as exc:
        return FleetResult(
            operation, offline, chosen, exit_codes.CONFIG_ERROR, errors=(InputProblem(None, str(exc), "argument"),)
        )
    if on_start is not None:
        on_start(jobs, chosen)
    start = clock()
    results: list[StackResult] | None = None
    if runner is None and offline and root == REPO_ROOT:
        results = scheduler.warm_fleet(
            jobs, chosen, timeout, use_cache=use_cache, on_result=on_result, policy_config=policy_path
        )
    if results is None:
        if runner is None:
            runner = (
                scheduler.OfflineRunner(cwd=root, timeout=timeout, policy_config=policy_path)
                if offline
                else scheduler.AutomationRunner(operation, root, opener, on_event, policy_config=policy_path)
            )
        retry = scheduler.RetryPolicy(attempts=retries + 1, base_delay=backoff)
        results = scheduler.run_fleet(jobs, runner, chosen, retry, sleep=sleep, clock=clock, on_result=on_result)
    return FleetResult(operation, offline, chosen, scheduler.fleet_exit_code(results), tuple(results), clock() - start)


def policy_check(
    plan: Path | str | Mapping[str, Any], stack: str, *, policy_config: Path | str | None = None
) -> PolicyReport:
    """Apply the policy pack to a saved plan (a plan JSON file, or the document itself; it is not
    changed) with the stack's enforcement config (`policy/config/<stack>.json`, else its
    environment's) or `policy_config`. A plan of another stack is refused unless `policy_config` is
    given: its name never silently falls back to the plan's environment."""
    from policy.offline_runner import PolicyConfigError
    from programs.platformctl.policy_gate import check_plan

    where = str(plan) if isinstance(plan, (str, Path)) else "plan"
    try:
        if isinstance(plan, (str, Path)):
            doc = offline_preview.read_plan_file(Path(plan))
        else:
            doc = json.loads(json.dumps(plan))
            if not isinstance(doc, dict) or not isinstance(doc.get("resources"), list):
                raise ValueError(
                    "plan: not a plan (expected an object with a 'resources' list, as "
                    "`platformctl preview --offline --json` writes)"
                )
        planned = doc.get("stack")
        if policy_config is None and isinstance(planned, str) and planned != stack:
            raise ValueError(
                f"{where}: the plan is of stack '{planned}', not '{stack}'; use --stack "
                f"{planned}, or --policy-config FILE to check it against another config"
            )
        doc = check_plan(doc, stack, Path(policy_config) if policy_config else None)
    except PolicyConfigError as exc:
        problems = input_problems(exc)
        return PolicyReport(stack, exit_codes.CONFIG_ERROR, errors=problems, message=_problem_line(stack, problems))
    except OSError as exc:
        problem = InputProblem(None, str(exc), "file")
        return PolicyReport(stack, exit_codes.CONFIG_ERROR, errors=(problem,), message=_problem_line(stack, (problem,)))
    except ValueError as exc:
        problem = InputProblem(None, str(exc), "input")
        return PolicyReport(stack, exit_codes.CONFIG_ERROR, errors=(problem,), message=_problem_line(stack, (problem,)))
    violations = tuple(
        Violation(v["policy"], v["level"], v["urn"], v["message"], doc["policy"]["pack"])
        for v in doc["policy"]["violations"]
    )
    mandatory = sorted({v.policy for v in violations if v.level == "mandatory"})
    text = f"mandatory policies violated: {', '.join(mandatory)}" if mandatory else ""
    return PolicyReport(
        stack,
        exit_codes.POLICY_VIOLATION if mandatory else exit_codes.OK,
        violations,
        message=text,
        config=doc["policy"]["config"],
        resources=len(doc["resources"]),
        plan=doc,
    )
