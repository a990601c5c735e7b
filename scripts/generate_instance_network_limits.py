#!/usr/bin/env python3
"""Regenerate components/data/instance_network_limits.json, the maxPods inputs of every instance type.

Sources (figures only; nothing else is taken from them):
- ENIs and IPv4 addresses per ENI: amazon-eks-ami's published instance data
  (`eni-instance-info.jsonl`: defaultMaxENIs, ipv4AddressesPerInterface; the inputs of
  eni-max-pods.txt). Default path: ../shared/reference/eni-instance-info.jsonl from the repo root.
- vCPUs (the calculator's 110/250 density cap): EC2 DescribeInstanceTypes `VCpuInfo.DefaultVCpus`,
  as captured in moto's `ec2/resources/instance_types.json.gz` (a test dependency, so every
  development machine has it), plus `EXTRA_VCPUS` below for the few types moto's capture lacks
  (figures from the EC2 instance-type documentation).

Types without a known vCPU count are left out and listed on stderr (the program then refuses them
with a message naming the table). Run: `.venv/bin/python scripts/generate_instance_network_limits.py`;
`tests/test_upstream_contracts_max_pods.py` checks that the table agrees with the published data.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ENI_DATA = REPO_ROOT / ".." / "shared" / "reference" / "eni-instance-info.jsonl"
OUTPUT = REPO_ROOT / "components" / "data" / "instance_network_limits.json"

ENI_SOURCE = (
    "awslabs/amazon-eks-ami published instance data eni-instance-info.jsonl "
    "(defaultMaxENIs, ipv4AddressesPerInterface; the inputs of eni-max-pods.txt), "
    "as stored in ../shared/reference (see its README for the commit)"
)

# DefaultVCpus of types missing from moto's capture (EC2 instance-type documentation).
EXTRA_VCPUS = {
    "c5a.metal": 192,
    "c5ad.metal": 192,
    "cr1.8xlarge": 32,
    "dl1.24xlarge": 96,
    "hs1.8xlarge": 16,
    "g4ad.xlarge": 4,
    "g4ad.2xlarge": 8,
    "g4ad.4xlarge": 16,
    "g4ad.8xlarge": 32,
    "g4ad.16xlarge": 64,
    "u-6tb1.metal": 448,
    "u-9tb1.metal": 448,
    "u-12tb1.metal": 448,
    "u-18tb1.metal": 448,
    "u-24tb1.metal": 448,
}


def moto_vcpus() -> tuple[dict[str, int], str]:
    from importlib.metadata import version

    import moto  # imported here: only this script and its contract test need it

    path = Path(moto.__file__).parent / "ec2" / "resources" / "instance_types.json.gz"
    data = json.loads(gzip.decompress(path.read_bytes()))
    return {name: row["VCpuInfo"]["DefaultVCpus"] for name, row in data.items()}, f"moto {version('moto')}"


def build(eni_rows: list[dict], vcpus: dict[str, int], vcpu_source: str) -> tuple[dict, list[str]]:
    instances, skipped = [], []
    for row in sorted(eni_rows, key=lambda r: r["instanceType"]):
        name = row["instanceType"]
        cpus = vcpus.get(name, EXTRA_VCPUS.get(name))
        if cpus is None:
            skipped.append(name)
            continue
        instances.append(
            {
                "instanceType": name,
                "vcpus": cpus,
                "maxEnis": row["defaultMaxENIs"],
                "ipv4PerEni": row["ipv4AddressesPerInterface"],
            }
        )
    doc = {
        "_source": {
            "enis": ENI_SOURCE,
            "vcpus": (
                f"EC2 DescribeInstanceTypes VCpuInfo.DefaultVCpus as captured in {vcpu_source} "
                "(ec2/resources/instance_types.json.gz); EXTRA_VCPUS in the generator for types it lacks"
            ),
            "generator": "scripts/generate_instance_network_limits.py (do not edit by hand)",
            "omitted": skipped,
        },
        "instances": instances,
    }
    return doc, skipped


def render(doc: dict) -> str:
    # One row per line: diffs of a regenerated table show exactly the types that changed.
    rows = ",\n".join("  " + json.dumps(r) for r in doc["instances"])
    return (
        '{\n "_source": '
        + json.dumps(doc["_source"], indent=2).replace("\n", "\n ")
        + ',\n "instances": [\n'
        + rows
        + "\n ]\n}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eni-data", type=Path, default=DEFAULT_ENI_DATA)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if not args.eni_data.is_file():
        print(f"{args.eni_data}: not found (pass --eni-data)", file=sys.stderr)
        return 2
    eni_rows = [json.loads(line) for line in args.eni_data.read_text().splitlines() if line.strip()]
    vcpus, source = moto_vcpus()
    doc, skipped = build(eni_rows, vcpus, source)
    args.output.write_text(render(doc))
    print(f"{args.output}: {len(doc['instances'])} instance types", file=sys.stderr)
    if skipped:
        print(f"omitted (no vCPU figure): {', '.join(skipped)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
