"""One line per YAML error, naming the file, line and column: what a person (and `platformctl fleet`'s
table) needs instead of PyYAML's multi-line excerpt of the file."""

from __future__ import annotations

from pathlib import Path

import yaml


def yaml_error_line(path: Path | str, exc: yaml.YAMLError) -> str:
    """`<path>:<line>:<column>: not valid YAML: <problem> (<context> at line L, column C)`."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        context = f"{context} at line {context_mark.line + 1}, column {context_mark.column + 1}"
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")
