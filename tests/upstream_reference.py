"""Where the upstream reference artefacts live, for the upstream contract tests (one place).

The artefacts (chart values.yaml files, published chart indexes, K3s flag lists, the webhook's
flags, reference IAM policies, Karpenter CRDs, amazon-eks-ami ENI data) are never copied into the
project: they are read from `../shared/reference/` relative to the repository root (CI and every
development machine have it), or from `$K8S_PLATFORM_REFERENCE_DIR`. Where they are absent the
tests that need them are skipped with that reason, never silently passed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_VAR = "K8S_PLATFORM_REFERENCE_DIR"


def reference_dir() -> Path:
    return Path(os.environ.get(ENV_VAR) or (REPO_ROOT / ".." / "shared" / "reference")).resolve()


def reference_file(relative: str) -> Path:
    """`<reference>/<relative>`; skips the calling test (with the path and why) when it is absent."""
    path = reference_dir() / relative
    if not path.exists():
        pytest.skip(
            f"upstream reference {path} not found: these contract tests need ../shared/reference "
            f"next to the repository (or ${ENV_VAR}); see README 'Upstream contract tests'"
        )
    return path


def upstream_file(name: str) -> Path:
    return reference_file(f"upstream/{name}")


def name_list(name: str) -> set[str]:
    """A flag/name list from upstream/: one name per line, `#` comments and `[...]` markers dropped."""
    names = set()
    for line in upstream_file(name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(line.split()[0])
    return names
