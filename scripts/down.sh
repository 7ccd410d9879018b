#!/usr/bin/env bash
# Stops everything scripts/up.sh started. --purge also deletes the cluster's data.
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/integration/ground/down.sh" "$@"
