"""Automation API driver (needs the pulumi CLI)."""

from __future__ import annotations

import argparse

from programs.offline import REPO_ROOT


def preview_stack(args: argparse.Namespace) -> int:
    from pulumi import automation as auto

    stack = auto.select_stack(stack_name=args.stack, work_dir=str(REPO_ROOT))
    result = stack.preview(on_output=print)
    return 0 if result.change_summary is not None else 1
