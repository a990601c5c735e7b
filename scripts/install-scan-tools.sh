#!/usr/bin/env bash
# The scanners `platformctl scan` runs, each in its own virtualenv under .tools/ (isolated from the
# project's dependencies: checkov pins its own versions of many libraries). From PyPI; ~1 min.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
venv=.tools/checkov
# Installed with bytecode: the machines set PYTHONDONTWRITEBYTECODE=1, and without compiled modules
# every checkov start recompiles its thousands of files (`checkov --version` measured 7.7 s without,
# 2.3 s with). The marker says an earlier install (or this script) compiled this version.
compiled="$venv/.compiled-$CHECKOV_VERSION"
if [ -x "$venv/bin/checkov" ] && compgen -G "$venv/lib/python3*/site-packages/checkov-$CHECKOV_VERSION.dist-info" >/dev/null; then
  if [ ! -e "$compiled" ]; then
    "$venv/bin/python" -m compileall -q -j 0 "$venv/lib" >/dev/null 2>&1 || true
    touch "$compiled"
  fi
  exit 0
fi
python3 -m venv "$venv"
uv=.venv/bin/uv
if [ -x "$uv" ]; then
  "$uv" pip install -q --python "$venv/bin/python" --compile-bytecode "checkov==$CHECKOV_VERSION"
else
  "$venv/bin/python" -m pip install -q "checkov==$CHECKOV_VERSION"  # pip compiles by default
fi
touch "$compiled"
