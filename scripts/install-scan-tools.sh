#!/usr/bin/env bash
# The scanners `platformctl scan` runs, each in its own virtualenv under .tools/ (isolated from the
# project's dependencies: checkov pins its own versions of many libraries). From PyPI; ~1 min.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
venv=.tools/checkov
# Installed at this version already (its dist-info; `checkov --version` alone takes ~10 s to import).
if [ -x "$venv/bin/checkov" ] && compgen -G "$venv/lib/python3*/site-packages/checkov-$CHECKOV_VERSION.dist-info" >/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
uv=.venv/bin/uv
if [ -x "$uv" ]; then
  "$uv" pip install -q --python "$venv/bin/python" "checkov==$CHECKOV_VERSION"
else
  "$venv/bin/python" -m pip install -q "checkov==$CHECKOV_VERSION"
fi
