"""`platformctl preview|up|destroy|refresh --stack S` through the Automation API (needs the pulumi CLI).

The shell over `programs.api`: `build_request` maps the arguments to `api.stack_request` (which
stack file, which policy config; the stack file validated before the CLI starts), `ProgressView`
prints the engine events `programs.api.engine.run_request` hands it, `execute` adds the checks, the
confirmation and the summary line. `run_operation` takes the stack opener as a parameter so the
whole flow is tested with a recorded event sequence and no CLI.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from programs.api import engine
from programs.api.engine import (  # noqa: F401 (the Automation API pieces, public here too)
    CHANGING_OPERATIONS,
    OPERATIONS,
    POLICY_OPERATIONS,
    POLICY_PACK_DIR,
    OperationOutcome,
    StackRequest,
    cli_missing_line,
    failure_message,
    last_error_line,
    missing_policy_files,
    open_stack,
    operation_kwargs,
    policy_paths,
    pulumi_cli_missing,
)
from programs.platformctl import events, exit_codes
from programs.platformctl.input_errors import INPUT_ERRORS, report_input_error
from programs.stack_files import REPO_ROOT


def build_request(operation: str, args: argparse.Namespace, root: Path = REPO_ROOT) -> StackRequest:
    """Resolve the stack file and policy config; raises ConfigError/ValueError/FileNotFoundError on bad input.

    The stack file is validated here, so bad config is reported with its key paths before the CLI starts.
    """
    return engine.stack_request(
        operation,
        args.stack,
        root,
        config_file=getattr(args, "config_file", None),
        policy_config=getattr(args, "policy_config", None),
        parallel=getattr(args, "parallel", None),
        message=getattr(args, "message", None),
        targets=tuple(getattr(args, "target", None) or ()),
        refresh=bool(getattr(args, "refresh", False)),
        expect_no_changes=bool(getattr(args, "expect_no_changes", False)),
        diff=bool(getattr(args, "diff", False)),
    )


class ProgressView:
    """Prints the fold's lines as events arrive (from the Automation API's watcher thread)."""

    def __init__(
        self, operation: str, out: TextIO, prefix: str = "", quiet: bool = False, lock: threading.Lock | None = None
    ):
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


def run_operation(
    req: StackRequest,
    opener: Callable[[StackRequest], Any] = open_stack,
    out: TextIO | None = None,
    prefix: str = "",
    quiet: bool = False,
    lock: threading.Lock | None = None,
) -> OperationOutcome:
    """Run one operation, streaming progress; never raises for engine/CLI failures."""
    view = ProgressView(req.operation, out or sys.stdout, prefix=prefix, quiet=quiet, lock=lock)
    try:
        return engine.run_request(req, opener, on_event=view)
    finally:
        view.close()


def confirm_on_tty(req: StackRequest) -> bool:
    """Ask for the stack name on a terminal; anything else is a no."""
    if not sys.stdin.isatty():
        return False
    answer = input(f"{req.operation} changes stack '{req.stack}' for real. Type the stack name to continue: ")
    return answer.strip() == req.stack


def execute(
    operation: str,
    args: argparse.Namespace,
    root: Path = REPO_ROOT,
    opener: Callable[[StackRequest], Any] = open_stack,
    confirm: Callable[[StackRequest], bool] = confirm_on_tty,
) -> int:
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
            print(
                f"error: `platformctl {operation}` changes real infrastructure; pass --yes when not on a terminal",
                file=sys.stderr,
            )
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
            print(
                f"error: `platformctl {operation}` changes real infrastructure; pass --yes to run it without a prompt",
                file=sys.stderr,
            )
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
