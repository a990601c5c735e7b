"""`platformctl pins check [--from DIR]`: every pin against what upstream publishes (programs/api/pins_check.py)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from programs.api import pins_check
from programs.platformctl import exit_codes
from programs.stack_files import REPO_ROOT


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pins", help="check the version pins (components/core/pins.py) against published versions")
    pins_sub = p.add_subparsers(dest="pins_command", required=True)
    c = pins_sub.add_parser(
        "check",
        help="every chart, image, EKS add-on build and the K3s release against the published indexes",
        description="Exit 0 when every pin is published (outdated ones are reported), 1 when a pin does not exist "
        "or an add-on build is not listed for the minor it is pinned for, 2 on bad arguments.",
    )
    c.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="read recorded responses from DIR instead of the network (layout: programs/api/pins_check.py)",
    )
    c.add_argument("--json", type=Path, dest="json_path", help="write the findings here")
    c.add_argument("--quiet", action="store_true", help="print only findings that are not ok")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.from_dir is not None and not args.from_dir.is_dir():
        print(f"error: --from {args.from_dir}: no such directory", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    inner = pins_check.RecordedSources(args.from_dir) if args.from_dir else pins_check.LiveSources()
    source = pins_check.Guarded(inner)
    report = pins_check.check_pins(source, pins_check.repository_stacks(REPO_ROOT))
    for finding in report.findings:
        if not args.quiet or finding.status != "ok":
            print(finding.line())
    for error in source.errors:
        print(f"warning: {error}", file=sys.stderr)
    counts = {
        s: sum(1 for f in report.findings if f.status == s)
        for s in ("ok", "outdated", "missing", "incompatible", "unchecked")
    }
    print(f"\n{len(report.findings)} pins: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    if args.json_path:
        args.json_path.write_text(json.dumps([asdict(f) for f in report.findings], indent=2) + "\n")
    if report.failed:
        print(
            "error: "
            + "; ".join(f"{f.name} {f.pinned} {f.status}" for f in report.failed)
            + " (components/core/pins.py)",
            file=sys.stderr,
        )
    return report.exit_code
