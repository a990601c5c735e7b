#!/usr/bin/env bash
# Installs the system tools some tests use, from Debian's packages, when they are missing.
# Tests that need a tool that is still missing after this are skipped with a reason, never faked.
set -euo pipefail
need=()
command -v cloud-init >/dev/null 2>&1 || need+=(cloud-init)
command -v dot >/dev/null 2>&1 || need+=(graphviz)  # `platformctl graph -o x.svg` renders with dot
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: ${need[*]} not installed (needs root and apt-get); the tests that use it will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
