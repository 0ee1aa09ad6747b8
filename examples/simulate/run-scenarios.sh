#!/usr/bin/env bash
# Runs the full-size scenarios of issue 3 (not in CI: together they take tens of minutes)
# and prints each one's table; the JSON results go to $OUT (default target/simulate).
#
#   examples/simulate/run-scenarios.sh            # all scenarios
#   examples/simulate/run-scenarios.sh static-1k  # only those whose name is given
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${OUT:-target/simulate}
mkdir -p "$OUT"
cargo build --locked --release -q -p kad-simulate
bin=${CARGO_TARGET_DIR:-target}/release/kad-simulate

scenarios=(
  "static-1k    --scenario static --nodes 1000 --puts 200"
  "static-10k   --scenario static --nodes 10000"
  "static-100k  --scenario static --nodes 100000"
  "loss-10k     --scenario loss --nodes 10000"
  "churn-10k    --scenario churn --nodes 10000"
  "gone-10k     --scenario publisher-gone --nodes 10000"
)

for s in "${scenarios[@]}"; do
  read -r name args <<<"$s"
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then
    continue
  fi
  printf '\n== %s: kad-simulate %s\n' "$name" "$args"
  start=$SECONDS
  # shellcheck disable=SC2086 # the arguments are meant to split
  "$bin" $args >"$OUT/$name.json"
  printf 'wall time: %d s; JSON in %s\n' "$((SECONDS - start))" "$OUT/$name.json"
done
