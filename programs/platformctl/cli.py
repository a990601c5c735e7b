"""platformctl entry point: subcommands register themselves from their own modules."""

from __future__ import annotations

import argparse
import sys
import traceback

from programs.platformctl import (
    automation,
    connect,
    doctor_cmd,
    export,
    fleet,
    graph,
    pins_cmd,
    policy_cmd,
    preview,
    probe,
    scan,
    upgrade,
)


def _version() -> str:
    """The installed distribution's version and the policy pack's (what a bug report needs)."""
    from importlib import metadata

    from policy.offline_runner import PACK_NAME, PACK_VERSION

    try:
        own = metadata.version("k8s-platform")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        own = "unknown (not installed)"
    return f"{own} (policy pack {PACK_NAME} {PACK_VERSION})"


def build_parser() -> argparse.ArgumentParser:
    from programs.platformctl import exit_codes

    codes = "\n".join(f"  {code:>3}  {text}" for code, text in exit_codes.DESCRIPTIONS.items())
    parser = argparse.ArgumentParser(
        prog="platformctl",
        description="Preview and deploy k8s-platform stacks.",
        epilog=f"exit codes:\n{codes}\n\nplatformctl COMMAND --help shows a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"platformctl {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    preview.add_parser(sub)
    automation.add_parsers(sub)  # up, destroy, refresh (preview without --offline calls into it)
    fleet.add_parser(sub)
    graph.add_parser(sub)
    policy_cmd.add_parser(sub)
    connect.add_parser(sub)  # day two: connect, doctor, probe identities
    doctor_cmd.add_parser(sub)
    probe.add_parser(sub)
    export.add_parser(sub)
    scan.add_parser(sub)
    upgrade.add_parser(sub)  # EKS minor upgrades, step by step
    pins_cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


def console_main() -> None:
    """The console script: an unexpected crash exits 3 (the program failed), never 1, which means a
    mandatory policy failed."""
    from programs.offline import OfflineProgramError
    from programs.platformctl import exit_codes

    try:
        code = main()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        code = exit_codes.INTERRUPTED
    except OfflineProgramError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        code = exit_codes.DEPLOY_FAILED
    except Exception:  # noqa: BLE001 - a bug: show the traceback, with the right exit code
        traceback.print_exc()
        code = exit_codes.DEPLOY_FAILED
    sys.exit(code)


if __name__ == "__main__":
    console_main()
