"""YAML the tests read and write themselves (upstream CRDs and values files, stack files, rendered
user-data they inspect), through libyaml where PyYAML has it: the same safe constructor and
representer, so the same data, parsed and emitted ~10x faster than by PyYAML's pure-Python code.
The product renders its own user-data with the pure-Python emitter (its bytes are what launch
templates hold) and reads stack files with its own bounded loader (programs/stack_files.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load(text: str) -> Any:
    return yaml.load(text, Loader=LOADER)


def load_all(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=LOADER)


def dump(doc: Any, **options: Any) -> str:
    return yaml.dump(doc, Dumper=DUMPER, **options)
