"""`cloud-init schema --config-file` for many documents in one cloud-init process.

Each `cloud-init schema` call is a Python start-up plus cloud-init's imports (~0.4 s); the suite checks
a dozen rendered user-data documents. Here the interpreter cloud-init runs under (its script's
shebang) validates them all with the function that command calls, `validate_cloudconfig_file`
(cloud-init 22.4 through 25.x). If that function is not there, every file goes through the command,
one process each, as before.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

_BATCH = r"""
import json, sys
from cloudinit.config.schema import SchemaValidationError, get_schema, validate_cloudconfig_file
schema = get_schema()
errors = {}
for path in sys.argv[2:]:
    try:
        validate_cloudconfig_file(path, schema)
        errors[path] = ""
    except SchemaValidationError as err:
        errors[path] = str(err)
    except RuntimeError as err:  # not a #cloud-config file, or unreadable
        errors[path] = str(err)
with open(sys.argv[1], "w") as out:  # not stdout: the function prints its deprecation notes there
    json.dump(errors, out)
"""


def cloud_init() -> str:
    path = shutil.which("cloud-init")
    if path is None:
        pytest.skip("cloud-init is not installed (make setup installs it from apt)")
    return path


def schema_errors(documents: dict[str, str]) -> dict[str, str]:
    """{name: what `cloud-init schema` refuses in that document ("" when valid)}."""
    executable = cloud_init()
    with tempfile.TemporaryDirectory(prefix="cloud-init-schema-") as tmp:
        paths = {}
        for index, (name, text) in enumerate(documents.items()):
            paths[name] = Path(tmp) / f"{index}.yaml"
            paths[name].write_text(text)
        interpreter = Path(executable).read_text().splitlines()[0].removeprefix("#!").strip().split()
        report = Path(tmp) / "errors.json"
        batch = subprocess.run(
            [*interpreter, "-c", _BATCH, str(report), *map(str, paths.values())],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if batch.returncode == 0:
            found = json.loads(report.read_text())
            return {name: found[str(path)] for name, path in paths.items()}
        return {name: _one_by_one(executable, path) for name, path in paths.items()}


def _one_by_one(executable: str, path: Path) -> str:
    result = subprocess.run([executable, "schema", "--config-file", str(path)], capture_output=True, text=True)
    return "" if result.returncode == 0 else (result.stdout + result.stderr).strip() or "refused"
