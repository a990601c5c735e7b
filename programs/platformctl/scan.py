"""`platformctl scan --stack S` (or `--plan PLAN.json`): checkov over the exported views of the
offline plan, with policy/scan-triage.yaml applied (programs/scan.py). Exit 1 on any untriaged
failure or stale triage entry."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from programs.platformctl import exit_codes
from programs.platformctl.export import PlanSourceError, add_plan_source, load_plan


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scan", help="run checkov (terraform_plan + kubernetes) on the offline plan, with triage")
    add_plan_source(p)
    p.add_argument("--triage", type=Path, help="triage file instead of policy/scan-triage.yaml")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from programs import scan
    from programs.scan import TRIAGE_FILE, ScanError, load_triage, render, scan_plan

    try:
        plan = load_plan(args)
    except PlanSourceError as exc:
        return exc.code
    try:
        result = scan_plan(plan, load_triage(args.triage or TRIAGE_FILE), checkov=scan.CHECKOV)
    except ScanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    print(render(result))
    return exit_codes.OK if result.ok else exit_codes.POLICY_VIOLATION
