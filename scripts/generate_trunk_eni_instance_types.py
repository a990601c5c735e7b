#!/usr/bin/env python3
"""Regenerate components/data/trunk_eni_instance_types.json: the EC2 instance types that support trunk
ENIs, i.e. that can run pods with their own security groups (EKS security groups for pods).

Source (names only; nothing else is taken from it): the VPC resource controller's instance limits
table, aws/amazon-vpc-resource-controller-k8s `pkg/aws/vpc/limits.go`, map `Limits`, entries with
`IsTrunkingCompatible: true`, as extracted into the reference file
`../shared/reference/upstream/trunk-eni-capable-instance-types.txt` (one name per line, `#` comments;
its header names the release and commit). The controller is what attaches the trunk ENI, so its
table is the authority: a type it does not mark compatible never gets a `vpc.amazonaws.com/pod-eni`
capacity, and a pod a SecurityGroupPolicy selects stays Pending on it.

Run: `.venv/bin/python scripts/generate_trunk_eni_instance_types.py`;
`tests/test_pod_security_groups.py` checks that the table agrees with the reference file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT / ".." / "shared" / "reference" / "upstream" / "trunk-eni-capable-instance-types.txt"
OUTPUT = REPO_ROOT / "components" / "data" / "trunk_eni_instance_types.json"


def read_source(path: Path) -> tuple[list[str], list[str]]:
    """(instance type names, header comment lines) of the reference list."""
    names, header = [], []
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("#"):
            header.append(text.lstrip("# ").strip())
        elif text:
            names.append(text.split()[0])
    return sorted(set(names)), header


def render(names: list[str], header: list[str]) -> str:
    doc = {
        "_source": {
            "data": (
                "aws/amazon-vpc-resource-controller-k8s pkg/aws/vpc/limits.go, map Limits, IsTrunkingCompatible: "
                "true (names only), as stored in ../shared/reference/upstream/trunk-eni-capable-instance-types.txt"
            ),
            "reference": " ".join(header),
            "generator": "scripts/generate_trunk_eni_instance_types.py (do not edit by hand)",
        },
        "instanceTypes": names,
    }
    # One name per line: a regenerated table's diff shows exactly the types that changed.
    rows = ",\n".join("  " + json.dumps(n) for n in names)
    return (
        '{\n "_source": '
        + json.dumps(doc["_source"], indent=2).replace("\n", "\n ")
        + (',\n "instanceTypes": [\n' + rows + "\n ]\n}\n")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"{args.source}: not found (pass --source)", file=sys.stderr)
        return 2
    names, header = read_source(args.source)
    if not names:
        print(f"{args.source}: no instance type names", file=sys.stderr)
        return 2
    args.output.write_text(render(names, header))
    print(f"{args.output}: {len(names)} instance types", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
