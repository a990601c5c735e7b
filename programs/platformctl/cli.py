"""platformctl entry point: subcommands register themselves from their own modules.

A command's module is imported only when that command runs (`platformctl --help` and an unknown
command import them all): the Automation API, the policy runner and the day-two clients take about a
second to import, which a cached re-preview (a few hundred milliseconds) must not pay.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from programs import gc_tuning

# command -> the module (under programs.platformctl) whose `add_parser(sub)` (or `add_parsers`) registers it,
# in the order `--help` lists them.
COMMANDS: dict[str, str] = {
    "preview": "preview",
    "up": "automation",  # up, destroy, refresh (preview without --offline calls into it)
    "destroy": "automation",
    "refresh": "automation",
    "fleet": "fleet",
    "ci": "ci",  # ephemeral clusters of a pipeline run
    "graph": "graph",
    "policy": "policy_cmd",
    "connect": "connect",  # day two: connect, doctor, probe identities
    "doctor": "doctor_cmd",
    "probe": "probe",
    "export": "export",
    "scan": "scan",
    "upgrade": "upgrade",  # EKS minor upgrades, step by step
    "pins": "pins_cmd",
}


def _version() -> str:
    """The installed distribution's version and the policy pack's (what a bug report needs)."""
    from importlib import metadata

    from policy.offline_runner import PACK_NAME, PACK_VERSION

    try:
        own = metadata.version("k8s-platform")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        own = "unknown (not installed)"
    return f"{own} (policy pack {PACK_NAME} {PACK_VERSION})"


class _VersionAction(argparse.Action):
    """`--version`, computed only when asked for (it imports the policy pack)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help="show versions and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(f"platformctl {_version()}")
        parser.exit()


def _command_of(argv: Sequence[str] | None) -> str | None:
    """The subcommand named on the command line (top-level options take no value), if it is known."""
    words = list(sys.argv[1:] if argv is None else argv)
    first = next((w for w in words if not w.startswith("-")), None)
    return first if first in COMMANDS else None


def build_parser(argv: Sequence[str] | None = ()) -> argparse.ArgumentParser:
    """The parser with every command, or (given the command line) with only the command it names."""
    from programs.platformctl import exit_codes

    codes = "\n".join(f"  {code:>3}  {text}" for code, text in exit_codes.DESCRIPTIONS.items())
    parser = argparse.ArgumentParser(
        prog="platformctl",
        description="Preview and deploy k8s-platform stacks.",
        epilog=f"exit codes:\n{codes}\n\nplatformctl COMMAND --help shows a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = _command_of(argv)
    names = [COMMANDS[wanted]] if wanted else list(dict.fromkeys(COMMANDS.values()))
    for name in names:
        module = importlib.import_module(f"programs.platformctl.{name}")
        register = getattr(module, "add_parsers", None) or module.add_parser
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    gc_tuning.tune()  # before the SDK is imported: its import allocates most of what a preview keeps
    args = build_parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
    return args.func(args)


def console_main() -> None:
    """The console script: an unexpected crash exits 3 (the program failed), never 1, which means a
    mandatory policy failed."""
    from programs.platformctl import exit_codes

    try:
        code = main()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        code = exit_codes.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug shows its traceback; either way, the right exit code
        # Only a command that ran the program can raise the harness's error (and has imported it).
        offline = sys.modules.get("programs.offline")
        if offline is not None and isinstance(exc, offline.OfflineProgramError):
            for problem in exc.problems:
                print(f"error: {problem}", file=sys.stderr)
        else:
            traceback.print_exc()
        code = exit_codes.DEPLOY_FAILED
    sys.exit(code)


if __name__ == "__main__":
    console_main()
