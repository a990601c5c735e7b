"""platformctl entry point: subcommands register themselves from their own modules."""

from __future__ import annotations

import argparse
import sys

from programs.platformctl import automation, fleet, graph, policy_cmd, preview


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="platformctl", description="Preview and deploy k8s-platform stacks.")
    sub = parser.add_subparsers(dest="command", required=True)
    preview.add_parser(sub)
    automation.add_parsers(sub)  # up, destroy, refresh (preview without --offline calls into it)
    fleet.add_parser(sub)
    graph.add_parser(sub)
    policy_cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())


def console_main() -> None:
    sys.exit(main())
