#!/usr/bin/env bash
# The scanners `platformctl scan` runs, each in its own virtualenv under .tools/ (isolated from the
# project's dependencies: checkov pins its own versions of many libraries). From PyPI; ~1 min.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
venv=.tools/checkov
if [ -x "$venv/bin/checkov" ] && "$venv/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
  exit 0
fi
python3 -m venv "$venv"
uv=.venv/bin/uv
if [ -x "$uv" ]; then
  "$uv" pip install -q --python "$venv/bin/python" "checkov==$CHECKOV_VERSION"
else
  "$venv/bin/python" -m pip install -q "checkov==$CHECKOV_VERSION"
fi
