"""`platformctl preview`: offline (mocks) or through the Automation API.

The shell over `programs.api.preview`: arguments in, the plan JSON, the header, tree, counts,
outputs, `--diff`, violations and the summary out (`preview_report` renders them). Without
--offline it hands over to `automation.execute`.

A stack unchanged since its cached plan is reported straight from the cache, before the Python API,
the config models or the Pulumi SDK are imported (they are imported only when the program must run):
that is what keeps a re-preview of an unchanged stack well under half a second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from programs.plan_view import empty_plan, render_tree, type_counts
from programs.platformctl import exit_codes, plan_cache
from programs.platformctl import preview_report as report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preview", help="preview a stack (offline under mocks with --offline)")
    p.add_argument("--stack", required=True, help="stack name; reads Pulumi.<stack>.yaml")
    p.add_argument("--offline", action="store_true", help="run the program in-process under mocks (no CLI, no cloud)")
    p.add_argument("--config-file", type=Path, help="stack file to use instead of Pulumi.<stack>.yaml")
    p.add_argument("--json", type=Path, dest="json_path", help="write the plan JSON here")
    p.add_argument("--show-secrets", action="store_true", help="show secret values in the plan instead of [secret]")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="print the header, the summary and mandatory violations only (advisories are counted)",
    )
    p.add_argument(
        "--policy-config",
        type=Path,
        metavar="FILE",
        help="policy config JSON (default: policy/config/<stack>.json, else <environment>.json)",
    )
    p.add_argument(
        "--diff",
        type=Path,
        dest="diff_plan",
        metavar="OLD_PLAN.json",
        help="also show resources added, removed and changed (by input key) against a saved plan",
    )
    p.add_argument(
        "--previous-plan",
        type=Path,
        metavar="PLAN.json",
        help="offline: a saved plan of the deployed stack; its EKS minor becomes cluster.eks.deployedVersion, "
        "so a skipped minor or a downgrade is refused (exit 2)",
    )
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


def _cached_plan(args: argparse.Namespace) -> dict[str, Any] | None:
    """The cached plan when `api.preview` would answer from the cache anyway (same conditions: no
    explicit policy config, no revealed secrets, no previous plan, cache on); `--diff` takes the full path."""
    if args.diff_plan is not None or args.policy_config is not None or args.show_secrets:
        return None
    if getattr(args, "previous_plan", None) is not None:
        return None
    if getattr(args, "no_cache", False) or not plan_cache.enabled():
        return None
    path = args.config_file or plan_cache.stack_file(args.stack)
    return plan_cache.lookup(args.stack, path) if path.exists() else None


def run(args: argparse.Namespace) -> int:
    if not args.offline:
        if args.diff_plan is not None:
            print("error: --diff compares offline plans; add --offline", file=sys.stderr)
            return exit_codes.CONFIG_ERROR
        if getattr(args, "previous_plan", None) is not None:
            print(
                "error: --previous-plan is for offline previews (the engine knows the deployed stack); add --offline",
                file=sys.stderr,
            )
            return exit_codes.CONFIG_ERROR
        return _automation_preview(args)
    cached = _cached_plan(args)
    if cached is not None:
        return _report(args, cached, cached=True, diff=None)
    from programs import api
    from programs.offline import PROJECT
    from programs.platformctl.input_errors import report_problems

    try:
        result = api.preview(
            args.stack,
            config_file=args.config_file,
            policy_config=args.policy_config,
            diff_against=args.diff_plan,
            previous_plan=getattr(args, "previous_plan", None),
            use_cache=not getattr(args, "no_cache", False),
            show_secrets=args.show_secrets,
        )
    except Exception as exc:
        # A bug: the README promises the JSON then holds the error; the traceback follows (exit 3).
        from components.config.checks import shown

        write_json(
            args.json_path,
            empty_plan(PROJECT, args.stack, [f"platformctl crashed: {type(exc).__name__}: {shown(str(exc), 300)}"]),
        )
        raise
    plan: dict[str, Any] = dict(result.plan or {})
    if result.errors:
        write_json(args.json_path, plan)
        if result.exit_code == exit_codes.DEPLOY_FAILED:  # something an offline plan cannot show
            for problem in result.errors:
                print(f"error: {problem}", file=sys.stderr)
        else:
            report_problems(args.stack, result.errors, result.config_source)
        return result.exit_code
    return _report(args, plan, cached=result.cached, diff=result.diff)


def _report(args: argparse.Namespace, plan: dict[str, Any], cached: bool, diff: Any) -> int:
    """Everything a built plan prints; the exit code is 1 when a mandatory policy failed."""
    violations = (plan.get("policy") or {}).get("violations", [])
    mandatory = [v for v in violations if v["level"] == "mandatory"]
    advisory = len(violations) - len(mandatory)
    protected = sum(1 for r in plan["resources"] if r.get("protect"))
    if cached and not args.quiet:
        print(f"{args.stack}: unchanged since its cached plan (--no-cache runs the program)", file=sys.stderr)
    write_json(args.json_path, plan, private=args.show_secrets)
    print(report.render_header(plan))
    for warning in plan.get("warnings") or []:
        print(f"warning: {warning}", file=sys.stderr)
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
    if diff is not None:
        print()
        print(report.render_diff(dict(diff), str(args.diff_plan)))
    lines = report.render_violations(plan, args.quiet)
    if lines:
        print()
        print(f"Policy violations ({(plan.get('policy') or {}).get('config')}):")
        for line in lines:
            print(f"  {line}")
    print(
        f"\n{args.stack}: {len(plan['resources'])} resources planned offline ({protected} protected); "
        f"{len(mandatory)} mandatory and {advisory} advisory policy violations"
        + (f"; plan written to {args.json_path}" if args.json_path else "")
    )
    if mandatory:
        print("mandatory policies violated: " + ", ".join(sorted({v["policy"] for v in mandatory})), file=sys.stderr)
    return exit_codes.POLICY_VIOLATION if mandatory else exit_codes.OK


def _automation_preview(args: argparse.Namespace) -> int:
    from programs.api.engine import pulumi_cli_missing
    from programs.platformctl import automation

    if pulumi_cli_missing():
        print("error: the pulumi CLI is not installed; run with --offline to preview under mocks", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    return automation.preview_stack(args)
