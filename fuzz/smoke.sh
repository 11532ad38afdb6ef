#!/usr/bin/env bash
# One fuzz target's CTest run: every seed of its committed corpus, then a bounded mutation
# run. New corpus entries and crash artifacts go to WORK_DIR (recreated), never into the
# source tree. Exits non-zero on any crash, leak, timeout or out-of-memory input. The mutation
# seed is fixed (CI's runs follow one sequence of inputs, so a finding there is reproducible and
# a commit cannot fail on another's bug found by luck); fuzz/run_long.sh explores.
# Usage: smoke.sh FUZZER SEED_DIR WORK_DIR SECONDS [DICT]
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=$4 dict=${5:-}
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
args=(-seed=1 -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1
      -artifact_prefix="$work/artifacts/")
[[ -n "$dict" ]] && args+=(-dict="$dict")
exec "$fuzzer" "${args[@]}" "$work/corpus" "$seeds"
