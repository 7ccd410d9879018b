#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for a bounded time, starting from
# its seed corpus (fuzz/corpus/<target>) and the inputs that once crashed it
# (fuzz/regressions/<target>). New inputs libFuzzer finds go to target/fuzz/corpus, never into
# the repository; a crash stops the run with the input's path.
#
#   scripts/fuzz.sh [--seconds N] [--release] [TARGET...]   (default: 10 s per target, all)
#
# CI runs every target a few seconds (about a minute in all) from a debug build, which builds
# in a third of the time of an optimised one; run it longer by hand with `--release`, whose
# targets execute several times faster: `scripts/fuzz.sh --release --seconds 600 unpack_layer`.
# cargo-fuzz is installed under target/tools at a pinned version; libFuzzer's instrumentation
# needs a nightly compiler, and where only a stable one is installed it is used with
# RUSTC_BOOTSTRAP=1 (the same compiler, its unstable flags allowed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

CARGO_FUZZ_VERSION=0.13.2
seconds=10
profile=(--dev)
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --release) profile=(); shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done

tools="$root/target/tools"
export PATH="$tools/bin:$PATH"
if [[ "$("$tools/bin/cargo-fuzz" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION into target/tools"
  cargo install --quiet --locked --root "$tools" --version "$CARGO_FUZZ_VERSION" cargo-fuzz
fi

toolchain=()
if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(cd fuzz/fuzz_targets && ls -- *.rs | sed 's/\.rs$//')
fi

build_dir=(--target-dir "$root/target/fuzz/build")
# Sanitizer: none. The code is safe Rust (no `unsafe` outside the agent's few syscalls), so
# AddressSanitizer would find little and doubles the build; the targets assert what must hold.
echo "== building ${#targets[@]} fuzz targets"
cargo "${toolchain[@]}" fuzz build "${profile[@]}" --fuzz-dir fuzz --sanitizer none "${build_dir[@]}"
for target in "${targets[@]}"; do
  work="$root/target/fuzz/corpus/$target"
  artifacts="$root/target/fuzz/artifacts/$target"
  mkdir -p "$work" "$artifacts" "fuzz/regressions/$target"
  echo "== $target: ${seconds}s"
  if ! cargo "${toolchain[@]}" fuzz run "${profile[@]}" --fuzz-dir fuzz --sanitizer none "${build_dir[@]}" "$target" \
      "$work" "fuzz/corpus/$target" "fuzz/regressions/$target" -- \
      -max_total_time="$seconds" -artifact_prefix="$artifacts/" -print_final_stats=1 \
      2>"$root/target/fuzz/$target.log"; then
    tail -n 40 "$root/target/fuzz/$target.log" >&2
    echo "fuzz: $target failed; the input is in $artifacts/ — once fixed, keep it as a regression test in fuzz/regressions/$target/" >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$root/target/fuzz/$target.log" | tr '\n' ' '
  echo
done
