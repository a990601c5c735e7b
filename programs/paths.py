"""Where the project's files are: the repository root and a stack's file.

Standard library only, so the fast paths (a cached re-preview answers in a few hundred milliseconds)
can find a stack file without importing the config models or the Pulumi SDK."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def stack_file(stack: str, root: Path = REPO_ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"
