"""`platformctl preview|up|destroy|refresh --stack S` through the Automation API (needs the pulumi CLI).

Thin shell over pure pieces: `build_request` maps arguments and the stack file to a `StackRequest`
(which stack file, which policy config), `operation_kwargs` maps that to the Automation API call,
`events.EventFold` turns the engine's events into the live progress view and the summary, and
`events.outcome_code` picks the exit code. `run_operation` takes the stack opener as a parameter so
the whole flow is tested with a recorded event sequence and no CLI.
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from components.config import ConfigError, parse_stack_config
from programs.stack_files import REPO_ROOT, read_stack_file, stack_file
from programs.platformctl import events, exit_codes
from programs.platformctl.input_errors import INPUT_ERRORS, report_input_error
from programs.platformctl.preview import pulumi_cli_missing

OPERATIONS = ("preview", "up", "destroy", "refresh")
# The CLI runs CrossGuard packs on preview and up; destroy and refresh take no --policy-pack.
POLICY_OPERATIONS = frozenset({"preview", "up"})
POLICY_PACK_DIR = "policy"
CHANGING_OPERATIONS = frozenset({"up", "destroy"})


@dataclass(frozen=True)
class StackRequest:
    """Everything one Automation API operation needs, resolved from the arguments and the stack file."""

    operation: str
    stack: str
    work_dir: Path
    stack_file: Path
    environment: str
    policy_pack: Path | None
    policy_config: Path | None
    config_file: Path | None = None  # handed to the CLI (--config-file) when not the workspace's own file
    parallel: int | None = None
    message: str | None = None
    targets: tuple[str, ...] = ()
    refresh: bool = False
    expect_no_changes: bool = False
    diff: bool = False


@dataclass
class OperationOutcome:
    code: int
    summary: events.RunSummary = field(default_factory=events.RunSummary)
    message: str = ""  # one line, set when the run did not succeed

    @property
    def transient(self) -> bool:
        """Worth retrying: another update held the stack's lock."""
        return self.code == exit_codes.CONCURRENT_UPDATE


def policy_paths(root: Path, stack: str, environment: str) -> tuple[Path, Path]:
    """The policy pack and its config: `policy/config/<stack>.json` when a stack has its own (the
    offline policy runner looks there first too), else the environment's `policy/config/<environment>.json`."""
    pack = root / POLICY_PACK_DIR
    own = pack / "config" / f"{stack}.json"
    return pack, own if own.exists() else pack / "config" / f"{environment}.json"


def build_request(operation: str, args: argparse.Namespace, root: Path = REPO_ROOT) -> StackRequest:
    """Resolve the stack file and policy config; raises ConfigError/ValueError/FileNotFoundError on bad input.

    The stack file is validated here, so bad config is reported with its key paths before the CLI starts.
    """
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; allowed: {', '.join(OPERATIONS)}")
    config_file: Path | None = getattr(args, "config_file", None)
    path = Path(config_file) if config_file else stack_file(args.stack, root)
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path} (stacks: Pulumi.<stack>.yaml beside Pulumi.yaml)")
    raw = read_stack_file(path)
    try:
        cfg = parse_stack_config(raw)
    except ConfigError as exc:
        exc.source = path
        raise
    pack, pack_config = policy_paths(root, args.stack, cfg.environment)
    if getattr(args, "policy_config", None) is not None:  # --policy-config
        pack_config = Path(args.policy_config)
    with_policy = operation in POLICY_OPERATIONS
    parallel = getattr(args, "parallel", None)
    if parallel is not None and parallel < 1:
        raise ValueError(f"--parallel must be at least 1, got {parallel}")
    return StackRequest(
        operation=operation,
        stack=args.stack,
        work_dir=root,
        stack_file=path,
        environment=cfg.environment,
        policy_pack=pack if with_policy else None,
        policy_config=pack_config if with_policy else None,
        config_file=path if config_file else None,
        parallel=parallel,
        message=getattr(args, "message", None),
        targets=tuple(getattr(args, "target", None) or ()),
        refresh=bool(getattr(args, "refresh", False)) and operation in ("preview", "up"),
        expect_no_changes=bool(getattr(args, "expect_no_changes", False)) and operation != "destroy",
        diff=bool(getattr(args, "diff", False)),
    )


def operation_kwargs(req: StackRequest) -> dict[str, Any]:
    """Keyword arguments of `Stack.<operation>(...)`; only what is set, so the CLI's defaults stay."""
    kwargs: dict[str, Any] = {"color": "never"}
    if req.operation != "preview":
        # The API defaults to `stack history --show-secrets` after up/destroy/refresh, decrypting the
        # stack's secret config into a result platformctl never shows: don't.
        kwargs["show_secrets"] = False
    if req.policy_pack is not None and req.policy_config is not None:
        kwargs["policy_packs"] = [str(req.policy_pack)]
        kwargs["policy_pack_configs"] = [str(req.policy_config)]
    if req.config_file is not None:
        kwargs["config_file"] = str(req.config_file)
    if req.parallel is not None:
        kwargs["parallel"] = req.parallel
    if req.message:
        kwargs["message"] = req.message
    if req.targets:
        kwargs["target"] = list(req.targets)
    if req.refresh:
        kwargs["refresh"] = True
    if req.expect_no_changes:
        kwargs["expect_no_changes"] = True
    if req.diff:
        kwargs["diff"] = True
    return kwargs


def missing_policy_files(req: StackRequest) -> str | None:
    """One line when the policy pack or its config for the environment is absent (never run without it)."""
    if req.policy_pack is None:
        return None
    if not (req.policy_pack / "PulumiPolicy.yaml").exists():
        return f"the policy pack is missing: no {req.policy_pack / 'PulumiPolicy.yaml'}"
    if req.policy_config is None or not req.policy_config.exists():
        return f"no policy config {req.policy_config} for environment '{req.environment}'"
    return None


def open_stack(req: StackRequest):
    """Select the stack in a LocalWorkspace on the project directory (runs `pulumi stack select`)."""
    from pulumi import automation as auto

    workspace = auto.LocalWorkspace(work_dir=str(req.work_dir))
    return auto.Stack.select(req.stack, workspace)


class ProgressView:
    """Prints the fold's lines as events arrive (from the Automation API's watcher thread)."""

    def __init__(self, operation: str, out: TextIO, prefix: str = "", quiet: bool = False,
                 lock: threading.Lock | None = None):
        self.fold = events.EventFold(operation)
        self.out = out
        self.prefix = prefix
        self.quiet = quiet
        self.lock = lock or threading.Lock()

    def __call__(self, event: Any) -> None:
        lines = self.fold.feed(event)
        if self.quiet:
            return
        # On a terminal a status line (done / in progress) sits below the step lines and is redrawn.
        live = not self.prefix and _isatty(self.out)
        if not lines and not live:
            return
        with self.lock:
            if live:
                self.out.write("\r\033[K")
            for line in lines:
                self.out.write(f"{self.prefix}{line}\n")
            if live:
                self.out.write(f"  … {self.fold.status()}")
            self.out.flush()

    def close(self) -> None:
        """Clear the status line before the summary is printed."""
        if not self.quiet and not self.prefix and _isatty(self.out):
            with self.lock:
                self.out.write("\r\033[K")
                self.out.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def last_error_line(text: str) -> str:
    """The most telling line of a failed CLI run: its last `error:` line, else its last non-empty line."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith("error:")]
    pick = errors[-1] if errors else (lines[-1] if lines else "unknown error")
    return pick[len("error:"):].strip() if pick.lower().startswith("error:") else pick


def failure_message(req: StackRequest, code: int, summary: events.RunSummary, error_text: str) -> str:
    """One line naming what went wrong (credentials, policy, or the engine's own error)."""
    hint = " (or `platformctl preview --offline`)" if req.operation == "preview" else ""
    problem = events.credentials_problem("\n".join([error_text, *summary.errors]))
    if code == exit_codes.CREDENTIALS_MISSING and problem:
        return f"stack '{req.stack}': {problem}{hint}"
    if code == exit_codes.POLICY_VIOLATION:
        names = sorted({f"{v.pack}/{v.policy}" for v in summary.mandatory})
        return f"stack '{req.stack}': {len(summary.mandatory)} mandatory policy violations ({', '.join(names)})"
    detail = summary.errors[0] if summary.errors else last_error_line(error_text)
    return f"stack '{req.stack}': {req.operation} failed: {detail}"


def run_operation(
    req: StackRequest,
    opener: Callable[[StackRequest], Any] = open_stack,
    out: TextIO | None = None,
    prefix: str = "",
    quiet: bool = False,
    lock: threading.Lock | None = None,
) -> OperationOutcome:
    """Run one operation, streaming progress; never raises for engine/CLI failures."""
    from pulumi.automation import errors as auto_errors

    view = ProgressView(req.operation, out or sys.stdout, prefix=prefix, quiet=quiet, lock=lock)
    try:
        stack = opener(req)
        try:
            getattr(stack, req.operation)(on_event=view, **operation_kwargs(req))
        finally:
            view.close()
    except auto_errors.ConcurrentUpdateError:
        return OperationOutcome(exit_codes.CONCURRENT_UPDATE, view.fold.result(),
                                f"stack '{req.stack}': another update is in progress (the stack is locked)")
    except auto_errors.StackNotFoundError:
        return OperationOutcome(exit_codes.STACK_NOT_FOUND, view.fold.result(),
                                f"no stack '{req.stack}' in the current backend; create it with `pulumi stack init {req.stack}`")
    except auto_errors.CommandError as exc:
        summary = view.fold.result()
        code = events.outcome_code(summary, str(exc))
        return OperationOutcome(code, summary, failure_message(req, code, summary, str(exc)))
    except FileNotFoundError as exc:
        if "pulumi" in str(exc):
            return OperationOutcome(exit_codes.CONFIG_ERROR, view.fold.result(), cli_missing_line(req.operation))
        raise
    except Exception as exc:  # noqa: BLE001 - an unexpected SDK error is still one line, not a traceback
        summary = view.fold.result()
        return OperationOutcome(exit_codes.DEPLOY_FAILED, summary,
                                f"stack '{req.stack}': {req.operation} failed: {type(exc).__name__}: {exc}")
    summary = view.fold.result()
    code = events.outcome_code(summary)
    return OperationOutcome(code, summary, "" if code == exit_codes.OK else failure_message(req, code, summary, ""))


def cli_missing_line(command: str) -> str:
    """The one line printed when the CLI is absent; `command` as typed after `platformctl`."""
    if command.endswith("preview") or command == "graph":
        hint = "run with --offline to work under Pulumi mocks"
    else:
        alternative = "fleet preview --offline" if command.startswith("fleet") else "preview --offline"
        hint = f"there is no offline {command.split()[-1]}; check the plan with `platformctl {alternative}`"
    return f"the pulumi CLI is not installed; `platformctl {command}` needs it ({hint})"


def confirm_on_tty(req: StackRequest) -> bool:
    """Ask for the stack name on a terminal; anything else is a no."""
    if not sys.stdin.isatty():
        return False
    answer = input(f"{req.operation} changes stack '{req.stack}' for real. Type the stack name to continue: ")
    return answer.strip() == req.stack


def execute(operation: str, args: argparse.Namespace, root: Path = REPO_ROOT,
            opener: Callable[[StackRequest], Any] = open_stack,
            confirm: Callable[[StackRequest], bool] = confirm_on_tty) -> int:
    """The shell of every non-offline command: checks, optional confirmation, the run, the summary line."""
    if pulumi_cli_missing():
        print(f"error: {cli_missing_line(operation)}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    try:
        req = build_request(operation, args, root)
    except INPUT_ERRORS as exc:
        return report_input_error(args.stack, exc)
    missing = missing_policy_files(req)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    if operation in CHANGING_OPERATIONS and not getattr(args, "yes", False):
        if confirm is confirm_on_tty and not sys.stdin.isatty():
            print(f"error: `platformctl {operation}` changes real infrastructure; pass --yes when not on a "
                  "terminal", file=sys.stderr)
            return exit_codes.CONFIG_ERROR
        if operation == "up":
            # Show what would change, with the policy pack, before asking (the API's `up` skips its preview).
            preview_req = build_request("preview", args, root)
            shown = run_operation(preview_req, opener, quiet=getattr(args, "quiet", False))
            print(events.render_summary(req.stack, "preview", shown.summary))
            if shown.code != exit_codes.OK:
                print(f"error: {shown.message}", file=sys.stderr)
                return shown.code
        if not confirm(req):
            print(f"error: `platformctl {operation}` changes real infrastructure; pass --yes to run it "
                  "without a prompt", file=sys.stderr)
            return exit_codes.CONFIG_ERROR
    try:
        outcome = run_operation(req, opener, quiet=getattr(args, "quiet", False))
    except KeyboardInterrupt:
        print(f"error: {operation} of stack '{req.stack}' interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED
    print(events.render_summary(req.stack, operation, outcome.summary))
    if outcome.code != exit_codes.OK:
        print(f"error: {outcome.message}", file=sys.stderr)
    return outcome.code


def preview_stack(args: argparse.Namespace) -> int:
    """`platformctl preview --stack S` without --offline (called from preview.py)."""
    return execute("preview", args)


def add_common_arguments(p: argparse.ArgumentParser, operation: str) -> None:
    p.add_argument("--stack", required=True, help="stack name; reads Pulumi.<stack>.yaml")
    p.add_argument("--config-file", type=Path, help="stack file to use instead of Pulumi.<stack>.yaml")
    p.add_argument("--parallel", type=int, help="resource operations run at once by the engine")
    p.add_argument("--message", help="message recorded with the update")
    p.add_argument("--target", action="append", help="only this resource URN (repeatable)")
    p.add_argument("--expect-no-changes", action="store_true", help="fail if anything would change")
    p.add_argument("--diff", action="store_true", help="ask the engine for a detailed diff")
    p.add_argument("--quiet", action="store_true", help="print only the summary line and errors")
    if operation == "up":
        p.add_argument("--refresh", action="store_true", help="refresh the state before the update")
    if operation in CHANGING_OPERATIONS:
        p.add_argument("--yes", action="store_true", help="do not prompt (required when not on a terminal)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`up`, `destroy`, `refresh` (`preview` is registered by preview.py and calls `preview_stack`)."""
    helps = {
        "up": "deploy a stack through the Automation API with the policy pack attached",
        "destroy": "destroy a stack's resources through the Automation API",
        "refresh": "refresh a stack's state from the cloud through the Automation API",
    }
    for operation, text in helps.items():
        p = sub.add_parser(operation, help=text)
        add_common_arguments(p, operation)
        p.set_defaults(func=lambda args, op=operation: execute(op, args))
