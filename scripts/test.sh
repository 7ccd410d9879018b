#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, unit tests, and the integration suite against
# the real test ground (started here if it is not running, and stopped again afterwards).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# The free space, up front: a build or a test that dies of a full disk then says so here.
disk() { df -h --output=avail,target "$root" | tail -n 1 | awk '{print "== disk: " $1 " free on " $2}'; }
disk
integration/ground/install-packages.sh
# Build the ground's tools first so their (long, first-time) build is visible on its own.
integration/ground/build.sh >/dev/null

# If this script's run brings the ground up, it also takes it down, whatever happens.
run_dir="${GROUND_RUN_DIR:-$root/target/ground/run}"
if [[ ! -f "$run_dir/ground.env" ]]; then
  trap 'integration/ground/down.sh --purge >/dev/null 2>&1 || true' EXIT
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== unit tests"
cargo test --lib --bins
disk
echo "== integration tests"
cargo test --test integration
