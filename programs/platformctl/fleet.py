"""`platformctl fleet preview|up|list`: many stacks under a concurrency bound, failures isolated, retries.

The shell over `programs.api.fleet` (the scheduler and its runners live in `programs/api/scheduler.py`,
offline fleets run on the warm runner, `warm_runner.py`): arguments in, progress lines, the per-stack
table, the footer and the JSON out.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from programs import api
from programs.api import scheduler
from programs.api.results import StackResult
from programs.api.scheduler import (  # noqa: F401 (the scheduler and its runners, public here too)
    FLEET_OPERATIONS,
    OfflineRunner,
    RetryPolicy,
    Runner,
    StackJob,
    StackOutcome,
    default_parallel,
    fleet_exit_code,
    is_transient,
    offline_command,
    one_line,
    outcome_from_process,
    repo_stack_files,
    run_fleet,
    run_one,
    select_jobs,
    stack_name_of,
)
from programs.platformctl import exit_codes
from programs.platformctl.automation import ProgressView
from programs.platformctl.fleet_stacks import dev_variant, write_dev_variants  # noqa: F401 (public here too)
from programs.stack_files import REPO_ROOT


def stack_progress(operation: str, quiet: bool = False) -> Callable[[str, Any], None] | None:
    """Prints each stack's engine events as progress lines prefixed with the stack name."""
    if quiet:
        return None
    views: dict[str, ProgressView] = {}
    views_lock = threading.Lock()
    write_lock = threading.Lock()  # one line at a time across stacks

    def on_event(stack: str, event: Any) -> None:
        with views_lock:
            view = views.get(stack) or views.setdefault(
                stack, ProgressView(operation, sys.stdout, prefix=f"[{stack}] ", lock=write_lock)
            )
        view(event)

    return on_event


class AutomationRunner(scheduler.AutomationRunner):
    """The API's Automation API runner with platformctl's progress lines (unless `quiet`)."""

    def __init__(
        self,
        operation: str,
        root: Path = REPO_ROOT,
        opener: Callable[..., Any] | None = None,
        quiet: bool = False,
        policy_config: Path | None = None,
    ):
        super().__init__(operation, root, opener, stack_progress(operation, quiet), policy_config=policy_config)


# --- output ----------------------------------------------------------------------------------


def render_table(results: Sequence[StackResult]) -> str:
    header = ("stack", "result", "exit", "tries", "time", "resources", "detail")
    rows = [
        (
            r.name,
            exit_codes.name(r.code),
            str(r.code),
            str(r.attempts),
            f"{r.seconds:.1f}s",
            "-" if r.resources is None else str(r.resources),
            r.detail or r.changes,
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    return "\n".join(
        [
            fmt.format(*header),
            fmt.format(*("-" * w for w in widths[:-1]), "-" * len(header[-1])),
            *(fmt.format(*row) for row in rows),
        ]
    )


def render_footer(results: Sequence[StackResult], wall: float, parallel: int) -> str:
    failed = [r for r in results if not r.ok]
    total = sum(r.seconds for r in results)
    return (
        f"{len(results)} stacks: {len(results) - len(failed)} succeeded, {len(failed)} failed"
        + (f" ({', '.join(r.name for r in failed)})" if failed else "")
        + f"; wall {wall:.1f}s, sum of stack times {total:.1f}s, parallel {parallel}"
    )


def run_list(args: argparse.Namespace) -> int:
    """`fleet list`: the stacks a fleet run would take with the same selection options."""
    try:
        jobs = select_jobs("list", args.stacks, args.stacks_dir, args.stack_files)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    width = max(len(j.name) for j in jobs)
    for job in jobs:
        print(f"{job.name:<{width}}  {job.stack_file}" + ("" if job.stack_file.exists() else "  (missing)"))
    return exit_codes.OK


def run(args: argparse.Namespace) -> int:
    if args.operation == "list":
        return run_list(args)
    problem = api.fleet_problem(args.operation, args.offline, args.policy_config)
    if problem is None and not args.offline and args.operation == "up" and not args.yes:
        problem = "`platformctl fleet up` changes real infrastructure; pass --yes"
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR

    def start(jobs: list[StackJob], parallel: int) -> None:
        print(
            f"fleet {args.operation}{' --offline' if args.offline else ''}: {len(jobs)} stacks, parallel {parallel}",
            flush=True,
        )

    def progress(result: StackResult, done: int, total: int) -> None:
        state = "ok" if result.ok else f"FAILED (exit {result.code})"
        print(
            f"[{done}/{total}] {result.name}: {state} in {result.seconds:.1f}s"
            + (f" after {result.attempts} tries" if result.attempts > 1 else ""),
            flush=True,
        )

    runner = (
        None if args.offline else AutomationRunner(args.operation, quiet=args.quiet, policy_config=args.policy_config)
    )
    try:
        fleet = api.fleet(
            args.stacks,
            operation=args.operation,
            offline=args.offline,
            parallel=args.parallel,
            stacks_dir=args.stacks_dir,
            stack_files=args.stack_files,
            policy_config=args.policy_config,
            retries=args.retries,
            backoff=args.backoff,
            timeout=args.timeout,
            use_cache=not getattr(args, "no_cache", False),
            runner=runner,
            on_result=progress,
            on_start=start,
        )
    except KeyboardInterrupt:
        print("error: fleet interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED
    if fleet.errors:
        for error in fleet.errors:
            print(f"error: {error}", file=sys.stderr)
        return fleet.exit_code
    print()
    print(render_table(fleet.stacks))
    print(render_footer(fleet.stacks, fleet.wall_seconds, fleet.parallel))
    if args.json_path:
        args.json_path.write_text(json.dumps(fleet.as_dict(), indent=2) + "\n")
    return fleet.exit_code


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fleet", help="preview or deploy many stacks with bounded concurrency")
    p.add_argument(
        "operation",
        choices=(*FLEET_OPERATIONS, "list"),
        help="preview (offline with --offline), up (Automation API, needs --yes), or list the stacks",
    )
    p.add_argument(
        "--stacks",
        help="comma-separated stack names (Pulumi.<name>.yaml in the repo or --stacks-dir); "
        "default: every Pulumi.<stack>.yaml of the repository (`fleet list` prints them)",
    )
    p.add_argument(
        "--policy-config",
        type=Path,
        metavar="FILE",
        help="one policy config JSON for every stack (default: each stack's own or its environment's)",
    )
    p.add_argument("--stacks-dir", type=Path, help="directory of stack files; alone: every Pulumi.*.yaml in it")
    p.add_argument("--stack-files", help="glob of stack files, e.g. 'gen/Pulumi.*.yaml' (quote it)")
    p.add_argument("--parallel", type=int, help="stacks run at once (default: number of CPUs)")
    p.add_argument("--offline", action="store_true", help="offline preview of each stack in its own process")
    p.add_argument("--retries", type=int, default=2, help="retries of a transient failure (default 2)")
    p.add_argument("--backoff", type=float, default=5.0, help="first retry delay in seconds, doubled each retry")
    p.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="per-stack timeout of an offline preview in seconds; a stack over it has status 'timeout'",
    )
    p.add_argument("--json", type=Path, dest="json_path", help="write the per-stack results here")
    p.add_argument(
        "--no-cache", action="store_true", help="offline: run every stack, even those unchanged since their cached plan"
    )
    p.add_argument("--quiet", action="store_true", help="no per-resource progress (Automation API mode)")
    p.add_argument("--yes", action="store_true", help="confirm `fleet up` (it changes real infrastructure)")
    p.set_defaults(func=run)
