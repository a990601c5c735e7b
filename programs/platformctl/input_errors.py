"""How every platformctl command reports bad input: the problems, one per line, exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from components.config import ConfigError
from programs.api.engine import INPUT_ERRORS, problems_of  # noqa: F401 (public here too)
from programs.api.results import InputProblem
from programs.platformctl import exit_codes


def report_input_error(stack: str, exc: Exception) -> int:
    if isinstance(exc, ConfigError):
        source = f" in {exc.source}" if getattr(exc, "source", None) else ""
        print(f"error: invalid configuration for stack '{stack}'{source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
    return exit_codes.CONFIG_ERROR


def report_problems(stack: str, problems: Sequence[InputProblem], source: str | None = None) -> None:
    """The same lines as `report_input_error`, from an API result's `errors`."""
    if problems and all(p.kind == "config" for p in problems):
        where = f" in {source}" if source else ""
        print(f"error: invalid configuration for stack '{stack}'{where}:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
    else:
        print("error: " + "\n".join(str(p) for p in problems), file=sys.stderr)
