#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, unit tests, the integration suite against the
# real test ground (started here if it is not running, and stopped again afterwards), a short
# run of every fuzz target, and a three-minute chaos run on the same ground.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# The free space, up front: a build or a test that dies of a full disk then says so here.
disk() { df -h --output=avail,target "$root" | tail -n 1 | awk '{print "== disk: " $1 " free on " $2}'; }
disk
integration/ground/install-packages.sh

# The ground's Go tools build beside the Rust checks: on a machine whose Go caches are cold
# that build takes about 20 minutes on 2 cores, and both builds leave cores idle in their
# serial steps. Its own process group, so an early failure here stops all of it.
mkdir -p target/ground
tools_log="$root/target/ground/build-tools.log"
setsid integration/ground/build.sh >/dev/null 2>"$tools_log" &
tools=$!

# If this script's run brings the ground up, it also takes it down, whatever happens.
run_dir="${GROUND_RUN_DIR:-$root/target/ground/run}"
ground_started_here=false
[[ -f "$run_dir/ground.env" ]] || ground_started_here=true
cleanup() {
  if [[ -n "$tools" ]]; then kill -- "-$tools" 2>/dev/null || true; fi
  if $ground_started_here; then integration/ground/down.sh --purge >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== unit tests"
cargo test --lib --bins
echo "== doctests"
cargo test --doc
echo "== the ground's tools"
if ! wait "$tools"; then
  tools=""
  cat "$tools_log" >&2
  exit 1
fi
tools=""
cat "$tools_log"
disk
echo "== integration tests"
cargo test --test integration
echo "== fuzzing (every target, a few seconds each)"
scripts/fuzz.sh --seconds "${FUZZ_SECONDS:-6}"
echo "== the chaos run"
# A seed of the day unless one is given: each run explores another schedule, and the seed it
# prints reproduces it.
scripts/chaos.sh --minutes "${CHAOS_MINUTES:-3}" --seed "${CHAOS_SEED:-$(date +%Y%m%d)}"
