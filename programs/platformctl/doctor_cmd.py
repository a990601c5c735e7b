"""`platformctl doctor`: run the day-two checks (programs/platformctl/doctor/) against a live stack."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from programs.platformctl import exit_codes
from programs.platformctl.day2_args import add_stack_arguments, kubeconfig_of, stack_view
from programs.platformctl.doctor import BY_ID, CHECKS, Context
from programs.platformctl.doctor.framework import SEVERITY


def add_parser(sub: argparse._SubParsersAction) -> None:
    listing = "\n".join(f"  {c.id:<30} [{'/'.join(c.kinds)}] {c.symptom}" for c in CHECKS)
    p = sub.add_parser(
        "doctor",
        help="check a live cluster and its AWS side against the troubleshooting playbook",
        description="Each check guards one symptom class, queries the cluster (kubeconfig from the stack outputs "
        "or --kubeconfig) and AWS (boto3, default credentials), and reports ok / warn / fail / skipped "
        "with the command that confirms it and the fix. Exit code: 0 ok, "
        f"{exit_codes.CHECK_WARNINGS} warnings, {exit_codes.CHECK_FAILED} a failed check.",
        epilog=f"checks:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_arguments(p)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument(
        "--only",
        action="append",
        choices=sorted(BY_ID),
        metavar="ID",
        help="run only this check (repeatable); ids are listed below",
    )
    p.set_defaults(func=run)


def result_entry(check, result) -> dict[str, Any]:
    return {
        "id": check.id,
        "symptom": check.symptom,
        "verdict": result.verdict,
        "detail": result.detail,
        "queried": list(result.queried),
        "findings": list(result.findings),
        "confirm": check.confirm,
        "fix": check.fix,
    }


def exit_code(verdicts: list[str]) -> int:
    worst = max((SEVERITY[v] for v in verdicts), default=0)
    return {0: exit_codes.OK, 1: exit_codes.CHECK_WARNINGS, 2: exit_codes.CHECK_FAILED}[worst]


def render(entries: list[dict[str, Any]]) -> str:
    lines = []
    for e in entries:
        lines.append(f"{e['verdict'].upper():<8} {e['id']:<30} {e['detail']}")
        for f in e["findings"]:
            lines.append(f"{'':9}- {f}")
        if e["verdict"] in ("warn", "fail"):
            lines += textwrap.wrap(f"confirm: {e['confirm']}", 110, initial_indent=" " * 9, subsequent_indent=" " * 11)
            lines += textwrap.wrap(f"fix: {e['fix']}", 110, initial_indent=" " * 9, subsequent_indent=" " * 11)
    counts = {v: sum(e["verdict"] == v for e in entries) for v in ("ok", "warn", "fail", "skipped")}
    lines.append(", ".join(f"{n} {v}" for v, n in counts.items()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    view = stack_view(args)
    if isinstance(view, int):
        return view
    ctx = Context(view.config, view.outputs, kubeconfig_of(args, view))
    checks = [BY_ID[i] for i in args.only] if args.only else CHECKS
    entries = [result_entry(c, c.evaluate(ctx)) for c in checks]
    if args.json:
        json.dump({"stack": args.stack, "checks": entries}, sys.stdout, indent=2)
        print()
    else:
        print(render(entries))
    return exit_code([e["verdict"] for e in entries])
