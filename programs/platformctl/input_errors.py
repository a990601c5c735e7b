"""How every platformctl command reports bad input: the problems, one per line, exit code 2."""

from __future__ import annotations

import sys

from components.config import ConfigError
from programs.platformctl import exit_codes

# What reading a stack file and its config can raise: invalid config, a missing file, bad YAML.
INPUT_ERRORS = (ConfigError, FileNotFoundError, ValueError)


def problems_of(exc: Exception) -> list[str]:
    return list(exc.problems) if isinstance(exc, ConfigError) else [str(exc)]


def report_input_error(stack: str, exc: Exception) -> int:
    if isinstance(exc, ConfigError):
        source = f" in {exc.source}" if getattr(exc, "source", None) else ""
        print(f"error: invalid configuration for stack '{stack}'{source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
    return exit_codes.CONFIG_ERROR
