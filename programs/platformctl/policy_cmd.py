"""`platformctl policy`: run the pack on a saved plan (`check`) or list its guardrails (`list`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from programs import api
from programs.platformctl import exit_codes


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy", help="run or list the CrossGuard policy pack")
    psub = p.add_subparsers(dest="policy_command", required=True)
    c = psub.add_parser("check", help="apply the pack to a saved plan JSON with a stack's enforcement config")
    c.add_argument("--plan", type=Path, required=True, help="plan JSON from `platformctl preview --offline --json`")
    c.add_argument(
        "--stack",
        required=True,
        help="stack whose policy config applies (policy/config/<stack>.json, else its environment's); "
        "must be the plan's stack unless --policy-config is given",
    )
    c.add_argument("--policy-config", type=Path, help="policy config JSON instead of the stack's")
    c.add_argument("--json", type=Path, dest="json_path", help="write the plan with its violations here")
    c.set_defaults(func=run_check)
    ls = psub.add_parser("list", help="list every policy with its severity and benchmark")
    ls.add_argument("--json", action="store_true", help="print the registry as JSON")
    ls.set_defaults(func=run_list)


def run_check(args: argparse.Namespace) -> int:
    report = api.policy_check(args.plan, args.stack, policy_config=args.policy_config)
    if report.errors:
        if report.errors[0].kind == "policy-config":
            print("error: invalid policy config:", file=sys.stderr)
            for problem in report.errors:
                print(f"  {problem}", file=sys.stderr)
        else:
            print("error: " + "\n".join(str(p) for p in report.errors), file=sys.stderr)
        return report.exit_code
    plan = dict(report.plan or {})
    if args.json_path:
        args.json_path.write_text(json.dumps(plan, indent=2) + "\n")
    for v in report.violations:
        print(f"policy {v.level}: {v.policy}: {v.message} ({v.urn or 'stack'})")
    print(
        f"{args.stack}: {report.resources} resources checked with {report.config}; "
        f"{len(report.mandatory)} mandatory and {len(report.advisory)} advisory policy violations"
    )
    if report.mandatory:
        print(report.message, file=sys.stderr)
    return report.exit_code


def run_list(args: argparse.Namespace) -> int:
    from policy.offline_runner import CONFIG_DIR, load_pack_config, reconcile
    from policy.registry import BY_ID, describe

    rows = describe()
    # Without a config (pulumi preview --policy-pack policy, no --policy-pack-config): the fail-safe levels.
    for row in rows:
        row.setdefault("enforcement", {})["none"] = BY_ID[row["id"]].policy.enforcement_level.value
    # Enforcement per environment file shipped with the pack (policy/config/*.json).
    for path in sorted(CONFIG_DIR.glob("*.json")):
        settings = reconcile(load_pack_config(path), source=str(path))
        for row in rows:
            row.setdefault("enforcement", {})[path.stem] = settings[row["id"]].level.value
    if args.json:
        print(json.dumps(rows, indent=2))
        return exit_codes.OK
    envs = list(rows[0].get("enforcement", {})) if rows else []
    levels_of = {row["id"]: " ".join(f"{env}={row['enforcement'][env]}" for env in envs) for row in rows}
    width = max([len(v) for v in levels_of.values()] + [len("enforcement (none: without a config)")])
    print(f"{'policy':42s} {'severity':8s} {'kind':8s} {'enforcement (none: without a config)':{width}s} benchmarks")
    for row in rows:
        knobs = f"  knobs: {', '.join(row['config'])}" if row["config"] else ""
        levels = levels_of[row["id"]]
        print(
            f"{row['id']:42s} {row['severity']:8s} {row['kind']:8s} {levels:{width}s} "
            f"{'; '.join(row['benchmarks'])}{knobs}"
        )
        print(f"    {row['description']}")
    print(f"\n{len(rows)} policies; without a policy config critical and high severity policies are mandatory")
    return exit_codes.OK
