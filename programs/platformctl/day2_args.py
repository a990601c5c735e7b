"""Arguments and stack loading shared by `connect`, `doctor` and `probe`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from programs.platformctl import exit_codes
from programs.platformctl.input_errors import INPUT_ERRORS, report_input_error
from programs.platformctl.stack_outputs import OutputsUnavailable, StackView, load_view


def add_stack_arguments(p: argparse.ArgumentParser, kubeconfig: bool = True) -> None:
    p.add_argument("--stack", required=True, help="stack name; reads Pulumi.<stack>.yaml")
    p.add_argument("--config-file", type=Path, help="stack file to use instead of Pulumi.<stack>.yaml")
    p.add_argument(
        "--outputs",
        type=Path,
        help="stack outputs JSON (`pulumi stack output --json --show-secrets`); "
        "default: read them through the pulumi CLI",
    )
    if kubeconfig:
        p.add_argument(
            "--kubeconfig",
            type=Path,
            help="kubeconfig to use instead of the stack's (e.g. the one `platformctl connect` wrote)",
        )


def stack_view(args: argparse.Namespace, offline: bool = False) -> StackView | int:
    """The stack's config and outputs, or the exit code after reporting why not."""
    try:
        return load_view(args.stack, outputs_file=args.outputs, offline=offline, config_file=args.config_file)
    except OutputsUnavailable as exc:
        print(f"error: {args.stack}: {exc}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    except INPUT_ERRORS as exc:
        return report_input_error(args.stack, exc)


def kubeconfig_of(args: argparse.Namespace, view: StackView) -> dict[str, Any] | None:
    if getattr(args, "kubeconfig", None) is not None:
        return yaml.safe_load(args.kubeconfig.read_text())
    text = view.outputs.get("kubeconfig")
    return yaml.safe_load(text) if isinstance(text, str) and text.strip() else None
