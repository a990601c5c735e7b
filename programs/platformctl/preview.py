"""`platformctl preview`: offline (mocks) or through the Automation API."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from components.config import ConfigError
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
    p.add_argument("--quiet", action="store_true",
                   help="print the header, the summary and mandatory violations only (advisories are counted)")
    p.add_argument("--policy-config", type=Path, metavar="FILE",
                   help="policy config JSON (default: policy/config/<stack>.json, else <environment>.json)")
    p.add_argument("--diff", type=Path, dest="diff_plan", metavar="OLD_PLAN.json",
                   help="also show resources added, removed and changed (by input key) against a saved plan")
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


def offline_plan(stack: str, config_file: Path | None, show_secrets: bool,
                 policy_config: Path | None = None) -> dict[str, Any]:
    """Plan dict of one stack; raises ConfigError / ValueError / FileNotFoundError on bad input.

    The policy config is found before the program runs: a missing one costs no run."""
    if config_file is not None and not config_file.exists():
        raise FileNotFoundError(f"{config_file}: no such stack file (--config-file)")
    path = config_file or stack_file(stack)
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path} (stacks: Pulumi.<stack>.yaml beside Pulumi.yaml)")
    raw = read_stack_file(path)
    from programs.platformctl.policy_gate import apply_policies, resolve_policy_config
    from programs.platformctl.preview_report import stack_info

    policy_path = resolve_policy_config(stack, raw, policy_config)
    try:
        run = run_offline(stack, raw)
    except ConfigError as exc:
        exc.source = path  # the header then names the file the problems are in
        raise
    plan = build_plan(run, show_secrets=show_secrets)
    plan["stackInfo"] = stack_info(run.config)
    return apply_policies(plan, run, stack, policy_path)


def read_plan_file(path: Path) -> dict[str, Any]:
    """A saved plan JSON; every problem names the file."""
    try:
        plan = json.loads(path.read_text())
    except OSError as exc:
        raise FileNotFoundError(f"{path}: cannot read the plan ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a plan JSON file ({exc})") from None
    if not isinstance(plan, dict) or not isinstance(plan.get("resources"), list):
        raise ValueError(f"{path}: not a plan (expected an object with a 'resources' list, as "
                         "`platformctl preview --offline --json` writes)")
    return plan


def run(args: argparse.Namespace) -> int:
    if not args.offline:
        if args.diff_plan is not None:
            print("error: --diff compares offline plans; add --offline", file=sys.stderr)
            return exit_codes.CONFIG_ERROR
        return _automation_preview(args)
    try:
        old_plan = read_plan_file(args.diff_plan) if args.diff_plan is not None else None
        # An explicit --policy-config is not part of the cache key: such a run always runs the program.
        plan, cached = plan_cache.cached_offline_plan(
            args.stack, args.config_file, args.show_secrets,
            not getattr(args, "no_cache", False) and args.policy_config is None,
            lambda stack, config_file, show_secrets: offline_plan(stack, config_file, show_secrets, args.policy_config))
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
    except Exception as exc:
        # A bug: the README promises the JSON then holds the error; the traceback follows (exit 3).
        from components.config.checks import shown

        write_json(args.json_path, empty_plan(PROJECT, args.stack, [f"platformctl crashed: {type(exc).__name__}: "
                                                                    f"{shown(str(exc), 300)}"]))
        raise
    write_json(args.json_path, plan, private=args.show_secrets)
    from programs.platformctl import preview_report as report

    print(report.render_header(plan))
    if not args.quiet:
        print()
        print(render_tree(plan))
        print()
        print(report.render_counts(plan))
        print()
        print("Resources by type:")
        for typ, count in type_counts(plan):
            print(f"  {count:4d}  {typ}")
        print()
        print(report.render_outputs(plan))
    if old_plan is not None:
        print()
        print(report.render_diff(report.diff_plans(old_plan, plan), str(args.diff_plan)))
    violations = plan["policy"]["violations"]
    mandatory = [v for v in violations if v["level"] == "mandatory"]
    lines = report.render_violations(plan, args.quiet)
    if lines:
        print()
        print(f"Policy violations ({plan['policy']['config']}):")
        for line in lines:
            print(f"  {line}")
    protected = sum(1 for r in plan["resources"] if r["protect"])
    print(f"\n{args.stack}: {len(plan['resources'])} resources planned offline ({protected} protected); "
          f"{len(mandatory)} mandatory and {len(violations) - len(mandatory)} advisory policy violations"
          + (f"; plan written to {args.json_path}" if args.json_path else ""))
    if mandatory:
        print("mandatory policies violated: " + ", ".join(sorted({v["policy"] for v in mandatory})), file=sys.stderr)
    return exit_codes.POLICY_VIOLATION if mandatory else exit_codes.OK


def pulumi_cli_missing() -> bool:
    return shutil.which("pulumi") is None


def _automation_preview(args: argparse.Namespace) -> int:
    if pulumi_cli_missing():
        print("error: the pulumi CLI is not installed; run with --offline to preview under mocks", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    from programs.platformctl.automation import preview_stack  # noqa: PLC0415 (needs the CLI)

    return preview_stack(args)
