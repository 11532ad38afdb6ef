# Sourced by a one-call GPU script after bench/gpu_call_setup.sh: runs the fuzz targets packed
# in .gpu/fuzzers.txz (bench/pack_fuzzers.sh) on the GPU machine's spare CPU cores while the
# GPU work runs (issue 19's long runs; the 2-core CI machine gives them ~1 core). Each target
# gets FUZZ_WORKERS processes (name:count, default below) sharing one corpus directory (libFuzzer
# reloads it, as with -jobs), niced to 19, each with the ASan/UBSan build's own limits, seeded
# from fuzz/corpus/<target>; they stop at LIMIT minus FUZZ_MARGIN s. fuzz_collect (on exit, with
# the results tarball) sums each target's executions from the workers' final stats and keeps
# the logs and any crash, timeout or OOM input under $R/fuzz.
# Needs $G/lib (the packed shared libraries the fuzzers share with the server) and the tree's
# fuzz/ (dictionaries, seeds, the fixture tokenizers and templates the targets read).
fuzz_bg() {
  [ -f .gpu/fuzzers.txz ] && [ "${FUZZ_WORKERS:-}" != none ] || { echo "fuzz: none"; return 0; }
  local fz=/tmp/fz secs=$(( ${LIMIT:-585} - ($(date +%s) - t0) - ${FUZZ_MARGIN:-25} ))
  mkdir -p $fz $R/fuzz && tar xJf .gpu/fuzzers.txz -C $fz
  local spec t n i d dict
  for spec in ${FUZZ_WORKERS:-tokenizer_encode:4 model_config:3 tokenizer_json:3 chat_template:2}; do
    t=${spec%:*}; n=${spec#*:}
    [ -x $fz/${t}_fuzzer ] || { echo "fuzz: $t not packed"; continue; }
    d=/tmp/fzc/$t; mkdir -p $d/corpus $R/fuzz/$t/artifacts
    dict=$(sed -n "s/^sluice_fuzzer($t .*DICT \([a-z]*\.dict\).*/\1/p" fuzz/CMakeLists.txt)
    for i in $(seq 1 $n); do
      LD_LIBRARY_PATH=$fz/lib:$G/lib nice -n 19 $fz/${t}_fuzzer -max_total_time=$secs -rss_limit_mb=2048 \
        -timeout=25 -print_final_stats=1 -seed=$((RANDOM * 7 + i)) \
        -artifact_prefix=$R/fuzz/$t/artifacts/ ${dict:+-dict=fuzz/dict/$dict} \
        $d/corpus fuzz/corpus/$t > $R/fuzz/$t/log.$i 2>&1 &
    done
  done
  echo "fuzz: ${FUZZ_WORKERS:-default workers} for ${secs} s"
}
fuzz_collect() {
  [ -d $R/fuzz ] || return 0
  pkill -INT -f '/tmp/fz/.*_fuzzer' 2>/dev/null; sleep 2
  local t a
  for t in $(cd $R/fuzz && ls -d */ | tr -d /); do
    # A worker stopped by fuzz_pause is past libFuzzer's wall-clock limits when it resumes: a
    # timeout or slow-unit input that replays in under 5 s was the pause, not the input.
    mkdir -p $R/fuzz/$t/paused
    for a in $R/fuzz/$t/artifacts/timeout-* $R/fuzz/$t/artifacts/slow-unit-*; do
      [ -f "$a" ] || continue
      LD_LIBRARY_PATH=/tmp/fz/lib:$G/lib timeout 5 /tmp/fz/${t}_fuzzer -runs=1 "$a" > /dev/null 2>&1 &&
        mv "$a" $R/fuzz/$t/paused/
    done
    echo "$t: executions $(cat $R/fuzz/$t/log.* | sed -n 's/^stat::number_of_executed_units: *//p' |
      awk '{s += $1} END {print s + 0}') workers $(ls $R/fuzz/$t/log.* | wc -l)" \
      "crash-like inputs $(ls $R/fuzz/$t/artifacts | wc -l)" \
      "(timing ones that replayed fast: $(ls $R/fuzz/$t/paused | wc -l))" \
      "last: $(grep -hE '^#[0-9]+' $R/fuzz/$t/log.1 | tail -1 | cut -c1-100)"
  done | tee $R/fuzz/summary.txt
}
# Stop and restart the fuzzers around a timing that must not share the CPU with them.
fuzz_pause() { pkill -STOP -f '/tmp/fz/.*_fuzzer' 2>/dev/null || true; }
fuzz_resume() { pkill -CONT -f '/tmp/fz/.*_fuzzer' 2>/dev/null || true; }
