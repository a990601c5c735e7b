"""`platformctl ci up|down|reap`: ephemeral clusters of a pipeline run (`environment: ci`).

The shell over `programs.api.ci`: arguments in, progress lines (the engine's, prefixed with the
stack name), one summary line per stack, the reap table, files out. `run` takes the seams of the API
(`opener`, `workspace`, `now`, `sleep`), so the commands are tested without the pulumi CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from programs.api import ci as api_ci
from programs.platformctl import exit_codes
from programs.platformctl.automation import ProgressView
from programs.platformctl.fleet import render_table, stack_progress
from programs.stack_files import REPO_ROOT


def _view(operation: str, stack: str, quiet: bool) -> ProgressView | None:
    return None if quiet else ProgressView(operation, sys.stdout, prefix=f"[{stack}] ")


def _fail(result: api_ci.CiResult) -> int:
    for problem in result.errors or ():
        print(f"error: {problem}", file=sys.stderr)
    if not result.errors and result.message:
        print(f"error: {result.message}", file=sys.stderr)
    return result.exit_code


def _changes(changes: dict[str, int]) -> str:
    return ", ".join(f"{n} {op}" for op, n in sorted(changes.items()) if op != "same") or "no changes"


def run_offline_up(args: argparse.Namespace, root: Path, now: Any = None) -> int:
    """`ci up --offline`: the run's stack file from the template, previewed under mocks with its policy config."""
    from programs.platformctl.cli import main  # the command table imports this module

    rendered = api_ci.ci_render(args.name, args.ttl, template=args.template, root=root, now=now or api_ci.utc_now)
    if not rendered.ok:
        return _fail(rendered)
    print(f"ci up --offline: {rendered.stack_file} written from the template; expires {rendered.expires_at}")
    argv = ["preview", "--stack", rendered.stack, "--offline", "--config-file", str(rendered.stack_file)]
    return main(argv + (["--quiet"] if args.quiet else []) + (["--json", str(args.json)] if args.json else []))


def run_up(args: argparse.Namespace, root: Path = REPO_ROOT, **seams: Any) -> int:
    if args.offline:
        return run_offline_up(args, root, seams.get("now"))
    stack = f"{api_ci.CI_STACK_PREFIX}{args.name}"
    view = _view("up", stack, args.quiet)
    result = api_ci.ci_up(
        args.name, args.ttl, template=args.template, root=root, on_event=view, message=args.message, **seams
    )
    if not result.ok:
        return _fail(result)
    print(f"ci up: stack {result.stack} ({_changes(result.changes)}); expires {result.expires_at}")
    if args.kubeconfig is not None:
        kubeconfig = result.outputs.get("kubeconfig")
        if not isinstance(kubeconfig, str):
            print(f"error: stack {result.stack} has no kubeconfig output", file=sys.stderr)
            return exit_codes.DEPLOY_FAILED
        api_ci.write_secret_file(args.kubeconfig, kubeconfig)
        print(f"kubeconfig written to {args.kubeconfig} (mode 0600)")
    if args.outputs is not None:
        # The shape `pulumi stack output --json --show-secrets` prints, which `platformctl connect --outputs` reads.
        api_ci.write_secret_file(args.outputs, json.dumps(result.outputs, indent=2, default=str) + "\n")
        print(f"stack outputs written to {args.outputs} (mode 0600)")
    return exit_codes.OK


def run_down(args: argparse.Namespace, root: Path = REPO_ROOT, **seams: Any) -> int:
    stack = f"{api_ci.CI_STACK_PREFIX}{args.name}"
    seams.pop("sleep", None)
    result = api_ci.ci_down(
        args.name, template=args.template, root=root, on_event=_view("destroy", stack, args.quiet), **seams
    )
    if not result.ok:
        return _fail(result)
    print(f"ci down: stack {result.stack}: {result.message or _changes(result.changes) + '; stack removed'}")
    return exit_codes.OK


def run_reap(args: argparse.Namespace, root: Path = REPO_ROOT, **seams: Any) -> int:
    def progress(result: Any, done: int, total: int) -> None:
        state = "destroyed" if result.ok else f"FAILED (exit {result.code})"
        print(f"[{done}/{total}] {result.name}: {state} in {result.seconds:.1f}s", flush=True)

    result = api_ci.ci_reap(
        template=args.template,
        root=root,
        parallel=args.parallel,
        retries=args.retries,
        backoff=args.backoff,
        dry_run=args.dry_run,
        on_event=stack_progress("destroy", args.quiet),
        on_result=progress,
        **seams,
    )
    for problem in result.errors:
        print(f"error: {problem}", file=sys.stderr)
    if result.errors:
        return result.exit_code
    now = api_ci.format_expiry(result.now)
    for c in result.candidates:
        when = api_ci.format_expiry(c.expires_at) if c.expires_at else "unknown (no tag, no stack file): left alone"
        verdict = "expired" if c.expired else "kept"
        print(f"{c.stack}  expires {when}  {verdict if c.expires_at else ''}".rstrip())
    expired = api_ci.expired_names(result)
    if args.dry_run:
        print(f"ci reap --dry-run at {now}: {len(expired)} of {len(result.candidates)} ci stacks expired")
        return exit_codes.OK
    if result.destroyed:
        print()
        print(render_table(result.destroyed))
    failed = result.failed
    print(
        f"ci reap at {now}: {len(result.candidates)} ci stacks, {len(expired)} expired, "
        f"{len(expired) - len(failed)} destroyed, {len(failed)} failed"
        + (f" ({', '.join(r.name for r in failed)})" if failed else "")
    )
    return result.exit_code


def run(args: argparse.Namespace, root: Path = REPO_ROOT, **seams: Any) -> int:
    """`seams`: `opener`, `workspace`, `now`, `sleep` of programs.api.ci (tests)."""
    commands: dict[str, Callable[..., int]] = {"up": run_up, "down": run_down, "reap": run_reap}
    if args.ci_command != "reap":
        seams.pop("workspace", None)
    if args.ci_command == "up":
        seams.pop("sleep", None)
    return commands[args.ci_command](args, root, **seams)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ci",
        help="ephemeral K3s clusters of a pipeline run: ci up, ci down, ci reap",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = p.add_subparsers(dest="ci_command", required=True)
    template_help = f"template stack file (default {api_ci.TEMPLATE}, environment ci)"

    up = commands.add_parser("up", help="create or update the stack ci-<name> from the template, expiring after --ttl")
    up.add_argument("--name", required=True, help=f"the run's name (stack and cluster ci-<name>, <= {api_ci.MAX_NAME})")
    up.add_argument("--ttl", required=True, help="time to live from now: 2h, 90m, 1h30m, 2d (10m to 7d)")
    up.add_argument("--template", type=Path, help=template_help)
    up.add_argument("--kubeconfig", type=Path, metavar="PATH", help="write the admin kubeconfig output here (0600)")
    up.add_argument("--outputs", type=Path, metavar="PATH", help="write the stack outputs JSON here (0600)")
    up.add_argument("--message", help="message recorded with the update")
    up.add_argument("--quiet", action="store_true", help="print only the summary line and errors")
    up.add_argument(
        "--offline", action="store_true", help="write the stack file and preview it under mocks (no CLI, no AWS)"
    )
    up.add_argument("--json", type=Path, metavar="PLAN.json", help="--offline: write the plan JSON here")

    down = commands.add_parser("down", help="destroy the stack ci-<name> and remove it (no stack: nothing to do)")
    down.add_argument("--name", required=True, help="the run's name given to ci up")
    down.add_argument("--template", type=Path, help=template_help + "; renders a missing stack file")
    down.add_argument("--quiet", action="store_true", help="print only the summary line and errors")

    reap = commands.add_parser("reap", help="destroy every ci-* stack whose expiry has passed")
    reap.add_argument("--template", type=Path, help=template_help + "; renders missing stack files")
    reap.add_argument("--parallel", type=int, default=4, help="stacks destroyed at once (default 4)")
    reap.add_argument("--retries", type=int, default=2, help="retries of a locked stack (default 2)")
    reap.add_argument("--backoff", type=float, default=5.0, help="first retry delay in seconds, doubled each retry")
    reap.add_argument("--dry-run", action="store_true", help="list the ci stacks and their expiry; destroy nothing")
    reap.add_argument("--quiet", action="store_true", help="no per-resource progress")
    p.set_defaults(func=run)
