#!/usr/bin/env bash
# Installs the official ECI Python SDK (an independent client for the emulator's conformance
# test) into a virtualenv under target/ground/sdk-venv, pinned; prints the venv's python.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SDK_VERSION=2.1.0
venv="$PROJECT_ROOT/target/ground/sdk-venv"
# Tests run in parallel and may all ask at once: one installs, the others wait for it.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [[ ! -f "$venv/.sdk-$SDK_VERSION" ]]; then
  log "installing alibabacloud-eci20180808==$SDK_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "alibabacloud-eci20180808==$SDK_VERSION" >&2
  touch "$venv/.sdk-$SDK_VERSION"
fi
echo "$venv/bin/python"
