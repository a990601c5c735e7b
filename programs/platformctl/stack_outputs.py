"""Where day-two commands (connect, doctor, probe) get a stack's config and outputs.

Config: the stack file (Pulumi.<stack>.yaml), parsed by the same validation as the program.
Outputs: `--outputs FILE` (what `pulumi stack output --json --show-secrets` writes), the offline
plan (`--offline`: the program under mocks, for dry runs), or the backend through the Pulumi CLI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config import StackConfig, parse_stack_config
from programs.offline import REPO_ROOT, read_stack_file, stack_file


class OutputsUnavailable(Exception):
    """No way to read the stack's outputs; the message says what to pass instead."""


@dataclass(frozen=True)
class StackView:
    stack: str
    config: StackConfig
    outputs: dict[str, Any]


def load_config(stack: str, config_file: Path | None = None) -> StackConfig:
    path = config_file or stack_file(stack)
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path} (stacks: Pulumi.<stack>.yaml beside Pulumi.yaml)")
    return parse_stack_config(read_stack_file(path))


def load_outputs(
    stack: str, *, outputs_file: Path | None = None, offline: bool = False, config_file: Path | None = None
) -> dict[str, Any]:
    if outputs_file is not None:
        return json.loads(outputs_file.read_text())
    if offline:
        from programs.api.offline_preview import offline_plan

        return offline_plan(stack, config_file, show_secrets=True)["outputs"]
    if shutil.which("pulumi") is None:
        raise OutputsUnavailable(
            "the pulumi CLI is not installed: pass --outputs FILE "
            "(`pulumi stack output --json --show-secrets > FILE`) or --offline for a dry run"
        )
    done = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    if done.returncode != 0:
        raise OutputsUnavailable(f"pulumi stack output failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def load_view(
    stack: str, *, outputs_file: Path | None = None, offline: bool = False, config_file: Path | None = None
) -> StackView:
    return StackView(
        stack,
        load_config(stack, config_file),
        load_outputs(stack, outputs_file=outputs_file, offline=offline, config_file=config_file),
    )
