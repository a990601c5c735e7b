"""Plan cache for offline previews: an unchanged stack is not run again.

A plan is keyed by a hash of everything that can change it: the stack name and the bytes of its
stack file, the project file it merges (`Pulumi.yaml` beside it, else the repo's), the program's
source tree (`components/`, `programs/`, `policy/` with the pack's config, `pyproject.toml`),
the installed SDK and tool versions, the Python version, the working directory (the plan names
the policy config relative to it) and the date (support-calendar warnings change with it). Any
change to one of them is a different key, so an entry is never stale; entries of older keys for the
same stack are pruned when a new one is stored.

Only plans that were built are cached (a config error is cheap to find again), and never a plan
with revealed secrets (`--show-secrets` always runs the program). `--no-cache` forces a run; the
cache lives under `.platformctl/cache/` in the project (git-ignored) or `$PLATFORMCTL_CACHE_DIR`;
`PLATFORMCTL_NO_CACHE=1` turns it off for every command.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from programs.paths import REPO_ROOT, stack_file

CACHE_ENV = "PLATFORMCTL_CACHE_DIR"
NO_CACHE_ENV = "PLATFORMCTL_NO_CACHE"  # set (not "0"): as if every command had --no-cache (the test suite)
# The parts of the repository that the program, the harness and the policy pack are made of.
SOURCE_DIRS = ("components", "programs", "policy")
SOURCE_FILES = ("pyproject.toml",)
_SKIP_DIRS = {"__pycache__", "venv", ".venv", "node_modules"}
# Distributions whose version changes what a plan holds (the SDKs, their wire format, the YAML writer).
_VERSIONED = (
    "pulumi",
    "pulumi-aws",
    "pulumi-kubernetes",
    "pulumi-tls",
    "pulumi-random",
    "pulumi-policy",
    "protobuf",
    "grpcio",
    "PyYAML",
    "cryptography",
)
_DIST_INFO = re.compile(r"^(?P<name>[A-Za-z0-9_.]+?)-(?P<version>[^-]+)\.dist-info$")
# Bumped when the shape of a cache entry changes.
_FORMAT = "1"

_source_digest: str | None = None


def enabled() -> bool:
    return os.environ.get(NO_CACHE_ENV, "") in ("", "0")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or REPO_ROOT / ".platformctl" / "cache")


def source_tree_digest(root: Path = REPO_ROOT) -> str:
    """Hash of the program's source tree (paths and bytes); computed once per process."""
    global _source_digest
    if _source_digest is not None and root == REPO_ROOT:
        return _source_digest
    h = hashlib.sha256()
    paths: list[Path] = [root / f for f in SOURCE_FILES if (root / f).is_file()]
    for top in SOURCE_DIRS:
        for dirpath, dirnames, filenames in os.walk(root / top):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
            paths.extend(Path(dirpath) / f for f in sorted(filenames) if not f.endswith((".pyc", ".pyo")))
    for path in paths:
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    digest = h.hexdigest()
    if root == REPO_ROOT:
        _source_digest = digest
    return digest


def _installed_versions() -> dict[str, str]:
    """{normalised distribution name: version} from the `*.dist-info` directories on sys.path: what
    `importlib.metadata.version` reads, found with one directory listing per path entry (importing
    importlib.metadata alone costs a cached re-preview a tenth of its time)."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            match = _DIST_INFO.match(name)
            if match:
                found.setdefault(_normalised(match["name"]), match["version"])
    return found


def _normalised(dist: str) -> str:
    return re.sub(r"[-_.]+", "_", dist).lower()


def sdk_versions() -> dict[str, str]:
    installed = _installed_versions()
    versions = {"python": sys.version.split()[0]}
    for dist in _VERSIONED:
        versions[dist] = installed.get(_normalised(dist), "-")
    return versions


def project_file_of(stack_path: Path) -> Path:
    """The `Pulumi.yaml` a stack file merges (the same rule as the offline harness)."""
    beside = stack_path.parent / "Pulumi.yaml"
    return beside if beside.exists() else REPO_ROOT / "Pulumi.yaml"


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "-"


def cache_key(stack: str, stack_path: Path) -> str:
    parts = {
        "format": _FORMAT,
        "stack": stack,
        "stackFile": _file_digest(stack_path),
        "projectFile": _file_digest(project_file_of(stack_path)),
        "source": source_tree_digest(),
        "versions": sdk_versions(),
        "cwd": str(Path.cwd()),
        # The plan's warnings depend on the day (an EKS minor nearing the end of standard support).
        "date": datetime.date.today().isoformat(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _safe(stack: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stack)


def entry_path(stack: str, stack_path: Path) -> Path:
    return cache_dir() / f"plan-{_safe(stack)}-{cache_key(stack, stack_path)[:32]}.json"


def lookup(stack: str, stack_path: Path) -> dict[str, Any] | None:
    """The cached plan of an unchanged stack, or None."""
    path = entry_path(stack, stack_path)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def store(stack: str, stack_path: Path, plan: dict[str, Any]) -> Path | None:
    """Write atomically (fleet children store at once); older entries of the stack go. Best effort:
    a cache that cannot be written never fails a preview."""
    path = entry_path(stack, stack_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".plan-", dir=path.parent)
        with os.fdopen(fd, "w") as out:
            json.dump(plan, out)
        os.replace(tmp, path)
        for old in path.parent.glob(f"plan-{_safe(stack)}-*.json"):
            if old != path and len(old.name) == len(path.name):
                old.unlink(missing_ok=True)
    except OSError:
        return None
    return path


def cached_offline_plan(
    stack: str, config_file: Path | None, show_secrets: bool, use_cache: bool, compute: Any
) -> tuple[dict[str, Any], bool]:
    """`compute(stack, config_file, show_secrets)` unless the stack is unchanged since a cached plan.
    Returns (plan, from_cache). Secrets-revealing plans are neither read from nor written to the cache."""
    path = config_file or stack_file(stack)
    cacheable = use_cache and enabled() and not show_secrets and path.exists()
    if cacheable:
        plan = lookup(stack, path)
        if plan is not None:
            return plan, True
    plan = compute(stack, config_file, show_secrets)
    if cacheable:
        store(stack, path, plan)
    return plan, False
