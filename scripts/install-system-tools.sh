#!/usr/bin/env bash
# Installs the system tools some tests use, from Debian's packages, when they are missing.
# Tests that need a tool that is still missing after this are skipped with a reason, never faked.
set -euo pipefail
need=()
command -v cloud-init >/dev/null 2>&1 || need+=(cloud-init)
command -v dot >/dev/null 2>&1 || need+=(graphviz)  # `platformctl graph -o x.svg` renders with dot
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  # Not root: use sudo only when it needs no password (CI runners), never prompt.
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root=(sudo -n); fi
fi
if { [ "$(id -u)" -ne 0 ] && [ ${#as_root[@]} -eq 0 ]; } || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: ${need[*]} not installed (needs apt-get as root or password-less sudo); the tests that use it will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# A failed install (no network, no mirror) leaves the tools missing: their tests skip with a reason.
if ! "${as_root[@]}" apt-get update -qq >/dev/null \
   || ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
  echo "note: apt-get could not install ${need[*]}; the tests that use it will be skipped" >&2
fi
