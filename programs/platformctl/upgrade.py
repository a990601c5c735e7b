"""`platformctl upgrade --stack S --to X [--dry-run]`: one EKS minor in the documented order.

The shell over `programs.api.upgrade`: arguments in; the plan, each step's engine progress (the
`up` view), its health verdict and the summary out. The stack's outputs come from the Automation
API, or `--outputs FILE` (a recorded `pulumi stack output --json`, e.g. for a dry run); AWS through
boto3 (default credentials), Kubernetes through the stack's kubeconfig or `--kubeconfig`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from programs.api import upgrade as api_upgrade
from programs.platformctl import events, exit_codes
from programs.stack_files import REPO_ROOT


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upgrade",
        help="upgrade an EKS stack one minor: add-ons, control plane, nodes, kube-proxy, each checked",
        description="Upgrade an EKS stack's Kubernetes minor as separate updates with the policy pack: (a) add-ons "
        "to the target's builds valid on the current minor, (b) the control plane, (c) the system node group and "
        "Karpenter nodes, (d) kube-proxy; health is checked between steps (EKS and Kubernetes APIs) and the first "
        "failure stops it. Running it again resumes at the first step not done.",
    )
    p.add_argument("--stack", required=True, help="stack name; reads Pulumi.<stack>.yaml")
    p.add_argument("--to", required=True, dest="target", metavar="MINOR", help="the next minor, e.g. 1.36")
    p.add_argument("--dry-run", action="store_true", help="print the steps with the versions each sets; change nothing")
    p.add_argument(
        "--config-file", type=Path, help="with --dry-run: a stack file to plan from instead of Pulumi.<stack>.yaml"
    )
    p.add_argument("--outputs", type=Path, help="stack outputs JSON (`pulumi stack output --json`) instead of the API")
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig to use instead of the stack's output")
    p.add_argument("--policy-config", type=Path, metavar="FILE", help="policy config JSON for every step's update")
    p.add_argument("--no-aws", action="store_true", help="look at the outputs only (no EKS or Kubernetes API)")
    p.add_argument("--quiet", action="store_true", help="no per-resource progress")
    p.add_argument("--yes", action="store_true", help="do not prompt (required when not on a terminal)")
    p.set_defaults(func=run)


def _probe_factory(args: argparse.Namespace):
    if args.no_aws:
        return None

    def make(cfg, outputs: dict[str, Any]) -> api_upgrade.Probe:
        kubeconfig = None
        if args.kubeconfig is not None:
            kubeconfig = yaml.safe_load(args.kubeconfig.read_text())
        elif isinstance(outputs.get("kubeconfig"), str) and outputs["kubeconfig"].strip():
            kubeconfig = yaml.safe_load(outputs["kubeconfig"])
        return api_upgrade.default_probe(cfg, kubeconfig)

    return make


def run(
    args: argparse.Namespace,
    opener=None,
    probe=None,
    confirm=None,
    root: Path = REPO_ROOT,
) -> int:
    from programs.platformctl.automation import ProgressView, cli_missing_line, pulumi_cli_missing

    outputs = None
    if args.outputs is not None:
        try:
            outputs = json.loads(args.outputs.read_text())
        except (OSError, ValueError) as exc:
            print(f"error: --outputs {args.outputs}: {exc}", file=sys.stderr)
            return exit_codes.CONFIG_ERROR
    if opener is None and not args.dry_run and pulumi_cli_missing():
        print(f"error: {cli_missing_line('upgrade')}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    if opener is None and outputs is None and pulumi_cli_missing():
        print(
            "error: the pulumi CLI is not installed: pass --outputs FILE (`pulumi stack output --json`) for a dry run",
            file=sys.stderr,
        )
        return exit_codes.CONFIG_ERROR
    if not args.dry_run and not args.yes:
        agreed = confirm(args) if confirm is not None else _confirm_on_tty(args)
        if not agreed:
            print(
                "error: `platformctl upgrade` changes real infrastructure; pass --yes (or --dry-run first)",
                file=sys.stderr,
            )
            return exit_codes.CONFIG_ERROR
    views: dict[str, ProgressView] = {}

    def on_event(step: api_upgrade.UpgradeStep):
        views[step.id] = ProgressView("up", sys.stdout, prefix=f"  [{step.id}] ", quiet=args.quiet)
        return views[step.id]

    def on_step_done(step: api_upgrade.UpgradeStep, outcome) -> None:
        print("  " + events.render_summary(args.stack, f"up ({step.id})", outcome.summary))

    result = api_upgrade.run_upgrade(
        args.stack,
        args.target,
        dry_run=args.dry_run,
        root=root,
        config_file=args.config_file,
        policy_config=args.policy_config,
        outputs=outputs,
        opener=opener,
        probe=probe if probe is not None else _probe_factory(args),
        on_event=on_event,
        on_line=lambda line: print(line, flush=True),
        on_step_done=on_step_done,
    )
    if not result.ok:
        print(f"error: {result.message}", file=sys.stderr)
    return result.code


def _confirm_on_tty(args: argparse.Namespace) -> bool:
    if not sys.stdin.isatty():
        return False
    answer = input(f"upgrade changes stack '{args.stack}' for real. Type the stack name to continue: ")
    return answer.strip() == args.stack
