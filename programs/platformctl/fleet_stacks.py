"""Generated fleets: variants of a dev stack file for `platformctl fleet` tests and benchmarks."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any


def dev_variant(base: dict[str, Any], index: int) -> dict[str, Any]:
    """A copy of a dev stack document with its own cluster name, VPC block and zone pair (for fleets
    of generated stacks in tests and benchmarks)."""
    doc = copy.deepcopy(base)
    cfg = doc["config"]
    pairs = list(itertools.combinations("abcdf", 2))
    region = cfg.get("aws:region", "us-east-1")
    first, second = pairs[index % len(pairs)]
    # 10.60.0.0/16 upwards: clear of K3s's own pod/service ranges (10.42/16, 10.43/16).
    cfg["k8s-platform:network"]["vpcCidr"] = f"10.{60 + index % 190}.0.0/16"
    cfg["k8s-platform:network"]["availabilityZones"] = [f"{region}{first}", f"{region}{second}"]
    old_name = cfg["k8s-platform:cluster"]["name"]
    new_name = f"{old_name}-{index:02d}"
    # Names derived from the cluster name (a pinned OIDC issuer URL, bucket names) follow the rename.
    doc["config"] = _rename(cfg, old_name, new_name)
    doc["config"]["k8s-platform:cluster"]["name"] = new_name
    return doc


def _rename(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {k: _rename(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename(v, old, new) for v in value]
    if isinstance(value, str) and old in value:
        return value.replace(old, new)
    return value


def write_dev_variants(base_file: Path, out_dir: Path, count: int, prefix: str = "dev") -> list[Path]:
    """Write `count` variants of `base_file` as `out_dir/Pulumi.<prefix>-NN.yaml`."""
    import yaml

    base = yaml.safe_load(base_file.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1, count + 1):
        path = out_dir / f"Pulumi.{prefix}-{i:02d}.yaml"
        path.write_text(yaml.safe_dump(dev_variant(base, i), sort_keys=False))
        paths.append(path)
    return paths
