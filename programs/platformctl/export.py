"""`platformctl export`: the offline plan in formats other tools read.

    platformctl export --stack prod --format terraform-plan -o tfplan.json [--offline]
    platformctl export --plan plan-prod.json --format k8s-yaml -o prod.yaml

The view is always of the offline plan (the program under mocks, `--offline` is accepted for
symmetry with `preview`); `--plan` reads a saved `preview --offline --json` plan instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from programs.platformctl import exit_codes

FORMATS = ("terraform-plan", "k8s-yaml")


def add_plan_source(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--stack", help="stack name; runs Pulumi.<stack>.yaml offline")
    src.add_argument("--plan", type=Path, help="saved plan JSON from `platformctl preview --offline --json`")
    p.add_argument("--offline", action="store_true", help="accepted for symmetry: the plan is always the offline one")
    p.add_argument("--config-file", type=Path, help="stack file to use instead of Pulumi.<stack>.yaml")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export the offline plan as Terraform plan JSON or Kubernetes YAML")
    add_plan_source(p)
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("-o", "--output", type=Path, required=True, help="file to write ('-' for stdout)")
    p.set_defaults(func=run)


class PlanSourceError(Exception):
    """The plan could not be obtained; `code` is the exit code, the message was already printed."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def load_plan(args: argparse.Namespace) -> dict[str, Any]:
    """The plan of `--plan` or of `--stack` run offline (secrets masked); problems printed, then raised."""
    from programs.offline import OfflineProgramError
    from programs.platformctl.input_errors import INPUT_ERRORS, report_input_error

    if args.plan is not None:
        try:
            plan = json.loads(args.plan.read_text())
        except (OSError, ValueError) as exc:
            print(f"error: {args.plan}: {exc}", file=sys.stderr)
            raise PlanSourceError(exit_codes.CONFIG_ERROR) from exc
        if not isinstance(plan, dict) or not isinstance(plan.get("resources"), list) or "stack" not in plan:
            print(
                f"error: {args.plan}: not a plan (expected an object with 'stack' and a 'resources' list)",
                file=sys.stderr,
            )
            raise PlanSourceError(exit_codes.CONFIG_ERROR)
        return plan
    from programs.api.offline_preview import offline_plan

    try:
        return offline_plan(args.stack, args.config_file, show_secrets=False)
    except INPUT_ERRORS as exc:
        raise PlanSourceError(report_input_error(args.stack, exc)) from exc
    except OfflineProgramError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        raise PlanSourceError(exit_codes.DEPLOY_FAILED) from exc


def render(plan: dict[str, Any], fmt: str) -> str:
    if fmt == "terraform-plan":
        from programs.tfplan import to_terraform_plan

        return json.dumps(to_terraform_plan(plan), indent=2) + "\n"
    from programs.k8s_yaml import to_yaml

    return to_yaml(plan)


def run(args: argparse.Namespace) -> int:
    try:
        plan = load_plan(args)
    except PlanSourceError as exc:
        return exc.code
    text = render(plan, args.format)
    if str(args.output) == "-":
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    if args.format == "terraform-plan":
        meta = json.loads(text)["k8s_platform"]
        summary = (
            f"{len(meta['addresses'])} resources as Terraform types; {meta['kubernetes_objects']} "
            f"Kubernetes objects left to --format k8s-yaml"
        )
        if meta["unmapped"]:
            print("warning: no Terraform type known for: " + ", ".join(meta["unmapped"]), file=sys.stderr)
            summary += f"; {len(meta['unmapped'])} types unmapped (listed under k8s_platform.unmapped)"
    else:
        from programs.k8s_yaml import helm_releases, manifests

        summary = (
            f"{len(manifests(plan))} Kubernetes objects; {len(helm_releases(plan))} Helm releases listed, not rendered"
        )
    print(
        f"{plan['stack']}: {summary}" + ("" if str(args.output) == "-" else f"; written to {args.output}"),
        file=sys.stderr if str(args.output) == "-" else sys.stdout,
    )
    return exit_codes.OK
