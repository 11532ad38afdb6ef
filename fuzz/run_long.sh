#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, JOBS targets at a time, niced,
# and prints a table: target, executions, exec/s, coverage (cov / ft), corpus size, crashes.
# Corpora grow under $BUILD/fuzz/long/<target>/corpus (kept between runs, seeded from
# fuzz/corpus/<target>); crash, timeout and OOM inputs go to .../artifacts; logs to .../log.
# Exit status: non-zero if any target crashed.
#
#   fuzz/run_long.sh [SECONDS] [TARGET...]      (default 600 s, every target)
#   BUILD=build-clang JOBS=2 RSS_MB=2048 fuzz/run_long.sh 3600 ipc_message
#
# Needs a fuzz build: cmake -DSLUICE_FUZZ=ON with clang (scripts/test_sanitizers.sh makes
# build-clang), then ninja the <target>_fuzzer binaries.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-600}
shift || true
build=${BUILD:-$root/build-clang}
[[ $build = /* ]] || build=$root/$build
jobs=${JOBS:-1}
rss_mb=${RSS_MB:-2048}
if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for f in "$root"/fuzz/*_fuzzer.cc; do
    n=$(basename "$f" _fuzzer.cc)
    targets+=("$n")
  done
fi
dict_of() {  # the target's dictionary, as fuzz/CMakeLists.txt assigns it
  sed -n "s/^sluice_fuzzer($1 .*DICT \([a-z]*\.dict\).*/\1/p" "$root/fuzz/CMakeLists.txt"
}

run_one() {
  local t=$1 bin=$build/fuzz/${1}_fuzzer dir=$build/fuzz/long/$1
  if [[ ! -x $bin ]]; then
    echo "$t: $bin not built" >&2
    return 1
  fi
  mkdir -p "$dir/corpus" "$dir/artifacts"
  rm -f "$dir/rc"
  local args=(-max_total_time="$seconds" -rss_limit_mb="$rss_mb" -timeout=25 -print_final_stats=1
              -artifact_prefix="$dir/artifacts/")
  local d
  d=$(dict_of "$t")
  [[ -n $d ]] && args+=(-dict="$root/fuzz/dict/$d")
  local rc=0
  nice -n 10 "$bin" "${args[@]}" "$dir/corpus" "$root/fuzz/corpus/$t" > "$dir/log" 2>&1 || rc=$?
  echo "$rc" > "$dir/rc"
}
export -f run_one dict_of
export build seconds rss_mb root

printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}' || true

status=0
printf '%-18s %14s %9s %8s %8s %8s %s\n' target executions exec/s cov ft corpus crashes
for t in "${targets[@]}"; do
  dir=$build/fuzz/long/$t
  log=$dir/log
  [[ -f $log ]] || { printf '%-18s not run\n' "$t"; status=1; continue; }
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<< "$last")
  rc=$(cat "$dir/rc" 2>/dev/null || echo '?')
  crashes=$(find "$dir/artifacts" -type f | wc -l)
  [[ $rc == 0 && $crashes == 0 ]] || status=1
  printf '%-18s %14s %9s %8s %8s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
    "$crashes$([[ $rc == 0 ]] || echo " (exit $rc, see $log)")"
done
exit $status
