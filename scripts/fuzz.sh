#!/usr/bin/env bash
# Fuzzes the target classifier and the $batch inspector for a bounded time
# (default 60 seconds in all, split between the two targets).
#
#   scripts/fuzz.sh [SECONDS]
#
# Installs cargo-fuzz if it is missing. libFuzzer needs nightly-only
# compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
# A crash leaves its input under fuzz/artifacts/; copy it into
# fuzz/regressions/<target>/ so that `cargo test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

total=${1:-60}
per_target=$(( total / 2 ))
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

for target in route_target batch_body; do
  mkdir -p "corpus/$target"
  cp -n regressions/"$target"/* "corpus/$target/" 2>/dev/null || true
  echo "fuzzing $target for ${per_target}s"
  cargo fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$per_target" -max_len=4096
done
echo "fuzzing finished with no crash"
