"""`platformctl preview`: offline (mocks) or through the Automation API."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from programs.offline import PROJECT, OfflineProgramError, read_stack_file, run_offline, stack_file
from programs.plan import build_plan, empty_plan, render_tree, type_counts
from programs.platformctl import exit_codes, plan_cache
from programs.platformctl.input_errors import (
    INPUT_ERRORS,
    problems_of,
    report_input_error,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preview", help="preview a stack (offline under mocks with --offline)")
    p.add_argument("--stack", required=True, help="stack name; reads Pulumi.<stack>.yaml")
    p.add_argument("--offline", action="store_true", help="run the program in-process under mocks (no CLI, no cloud)")
    p.add_argument("--config-file", type=Path, help="stack file to use instead of Pulumi.<stack>.yaml")
    p.add_argument("--json", type=Path, dest="json_path", help="write the plan JSON here")
    p.add_argument("--show-secrets", action="store_true", help="show secret values in the plan instead of [secret]")
    p.add_argument("--quiet", action="store_true", help="print only the summary line")
    p.add_argument("--no-cache", action="store_true", help="run the program even if the plan cache has this stack")
    p.set_defaults(func=run)


def write_json(path: Path | None, plan: dict[str, Any], private: bool = False) -> None:
    """`private`: the plan holds revealed secrets (--show-secrets), so only the owner may read the file."""
    if path is None:
        return
    text = json.dumps(plan, indent=2, sort_keys=False) + "\n"
    if not private:
        path.write_text(text)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed with wider permissions
    with os.fdopen(fd, "w") as out:
        out.write(text)


def offline_plan(stack: str, config_file: Path | None, show_secrets: bool) -> dict[str, Any]:
    """Plan dict of one stack; raises ConfigError / ValueError / FileNotFoundError on bad input."""
    path = config_file or stack_file(stack)
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path} (stacks: Pulumi.<stack>.yaml beside Pulumi.yaml)")
    run = run_offline(stack, read_stack_file(path))
    plan = build_plan(run, show_secrets=show_secrets)
    from programs.platformctl.policy_gate import apply_policies

    return apply_policies(plan, run, stack)


def run(args: argparse.Namespace) -> int:
    if not args.offline:
        return _automation_preview(args)
    try:
        plan, cached = plan_cache.cached_offline_plan(args.stack, args.config_file, args.show_secrets,
                                                      not getattr(args, "no_cache", False), offline_plan)
        if cached and not args.quiet:
            print(f"{args.stack}: unchanged since its cached plan (--no-cache runs the program)", file=sys.stderr)
    except INPUT_ERRORS as exc:
        write_json(args.json_path, empty_plan(PROJECT, args.stack, problems_of(exc)))
        return report_input_error(args.stack, exc)
    except OfflineProgramError as exc:
        write_json(args.json_path, empty_plan(PROJECT, args.stack, exc.problems))
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return exit_codes.DEPLOY_FAILED
    write_json(args.json_path, plan, private=args.show_secrets)
    if not args.quiet:
        print(render_tree(plan))
        print()
        print("Resources by type:")
        for typ, count in type_counts(plan):
            print(f"  {count:4d}  {typ}")
    violations = plan["policy"]["violations"]
    mandatory = [v for v in violations if v["level"] == "mandatory"]
    for v in violations:
        print(f"policy {v['level']}: {v['policy']}: {v['message']} ({v['urn']})", file=sys.stderr)
    print(("" if args.quiet else "\n") + f"{args.stack}: {len(plan['resources'])} resources planned offline; "
          f"{len(mandatory)} mandatory and {len(violations) - len(mandatory)} advisory policy violations"
          + (f"; plan written to {args.json_path}" if args.json_path else ""))
    return exit_codes.POLICY_VIOLATION if mandatory else exit_codes.OK


def pulumi_cli_missing() -> bool:
    return shutil.which("pulumi") is None


def _automation_preview(args: argparse.Namespace) -> int:
    if pulumi_cli_missing():
        print("error: the pulumi CLI is not installed; run with --offline to preview under mocks", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    from programs.platformctl.automation import preview_stack  # noqa: PLC0415 (needs the CLI)

    return preview_stack(args)
