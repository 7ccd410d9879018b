#!/usr/bin/env bash
# The chaos run (integration/chaos/main.rs): the node, the emulator and the real control plane
# under a changing workload while faults arrive at random times, then a table of invariants.
#
#   scripts/chaos.sh [--minutes 3] [--seed N]
#
# Uses the test ground if it runs (integration/ground/up.sh), or starts it and stops it again.
# The seed is printed first; the same seed draws the same workload and faults. Exit status 1
# when an invariant broke; logs and result.json in target/chaos/<seed>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo test --quiet --test chaos -- "$@"
