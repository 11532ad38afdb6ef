# Sourced by the one-call GPU scripts (bench/gpu_pending_*.sh), on the GPU machine from the repo
# root with .gpu/ carried: unpacks the binaries to $B, collects results under $R (tarred to
# $OUT/res.tgz on exit: a call brings back 8 files at most, so one archive), a summary of
# stdout in $R/summary.txt; el prints the seconds since the start, left those of LIMIT (default
# 585 s) still to go; the fuzz targets of .gpu/fuzzers.txz run on the spare cores meanwhile
# (bench/gpu_fuzz_background.sh); T runs a CUDA test binary; pass FILE: a gtest log passed.
set -uo pipefail
mkdir -p /work && ln -sfn "$PWD" /work/main
# .gpu/tok.txz: the tokenizer folder packed (tar cJf .gpu/tok.txz -C .gpu tok), 2 MB not 11.
[ -d .gpu/tok ] || tar xJf .gpu/tok.txz -C .gpu
G=/tmp/g; R=/tmp/res; W=/tmp/w; mkdir -p $G $R $W && tar xJf .gpu/gpu-binaries.txz -C $G; B=$G/bin
export PYTHONUNBUFFERED=1
trap 'fuzz_collect; tar czf "$OUT/res.tgz" -C $R .' EXIT
exec > >(tee $R/summary.txt) 2>&1
t0=$(date +%s); el() { echo "[$(( $(date +%s) - t0 )) s]"; }
left() { echo $(( ${LIMIT:-585} - ($(date +%s) - t0) )); }
T=tests/gpu/run_on_gpu.sh
pass() { grep -q "^\[  PASSED  \]" "$1" && ! grep -q "^\[  FAILED  \]" "$1"; }
nvidia-smi --query-gpu=name,driver_version,memory.used,clocks.max.sm,clocks.max.mem --format=csv | tee $R/gpu.txt
# write_models_bg [KIND...]: the Qwen2-7B-shaped models of KIND (bf16: $m, int4: $m4, int8:
# $m8; default bf16 int4) written in the background one after the other, each marked with a
# .complete file when whole; wait_model M waits for one (or for the writer to have failed) and
# prints its writer's last line.
m=$W/repo/qwen7b/1/model
m4=$W/int4/repo/qwen7b/1/model
m8=$W/int8/repo/qwen7b/1/model
model_of() { case $1 in bf16) echo $m ;; int4) echo $m4 ;; int8) echo $m8 ;; esac; }
write_models_bg() {
  local kinds=("$@"); [ ${#kinds[@]} -gt 0 ] || kinds=(bf16 int4)
  ( for k in "${kinds[@]}"; do
      if [ $k = bf16 ]; then
        python3 bench/make_qwen2_7b_random.py $m .gpu/tok > $R/bf16_write.txt 2>&1
      else
        python3 bench/make_qwen2_7b_gptq_random.py $(model_of $k) .gpu/tok --bits ${k#int} \
          > $R/${k}_write.txt 2>&1
      fi && touch $(model_of $k)/.complete
    done ) &
  writer=$!
}
wait_model() {
  while [ ! -f $1/.complete ] && kill -0 $writer 2>/dev/null; do sleep 1; done
  case $1 in $m) tail -1 $R/bf16_write.txt ;; $m8) tail -1 $R/int8_write.txt ;;
    *) tail -1 $R/int4_write.txt ;; esac
}
# g7 PHASES / gq VARIANT,PHASES: bench/gpu_7b.sh and bench/gpu_7b_gptq.sh with what is left
# of LIMIT (nothing when under 20 s), blank lines dropped; gq runs GQ_BIN's binaries (default $B).
g7() {
  local t=$(left); [ "$t" -gt 20 ] || { echo "skipped (time): $*"; return 1; }
  timeout $t bench/gpu_7b.sh $B .gpu/tok $W $R "$@" 2>&1 | grep -vE "^\s*$"
}
gq() {
  local t=$(left); [ "$t" -gt 20 ] || { echo "skipped (time): $*"; return 1; }
  timeout $t bench/gpu_7b_gptq.sh ${GQ_BIN:-$B} .gpu/tok $W $R "$@" 2>&1 | grep -vE "^\s*$"
}
source bench/gpu_fuzz_background.sh
fuzz_bg
# gpu_tests FILTER SECONDS: cuda_kernels_test's tests matching FILTER into $R/tests_gptq.txt, its
# verdict lines printed; true when they passed.
gpu_tests() {
  timeout $2 $T $B/cuda_kernels_test --gtest_filter=$1 > $R/tests_gptq.txt 2>&1
  echo "GPU tests $1 rc=$? $(el)"
  grep -E "^\[  (PASSED|FAILED) +\]|FAILED|Failure" $R/tests_gptq.txt | head -12
  pass $R/tests_gptq.txt
}
# streams7 CONCURRENCY / streamsq VARIANT CONCURRENCY: the bf16 model's / a GPTQ model's
# (kept for later phases) output tok/s at each concurrency, max_num_seqs 256, the lines only.
streams7() { MAX_NUM_SEQS=256 CONCURRENCY="$1" g7 sluice | grep -E "c=|Failed"; }
streamsq() { KEEP_MODEL=1 MAX_NUM_SEQS=256 CONCURRENCY="$2" gq $1,sluice | grep -E "c=|Failed"; }
# ttft7 / ttftq VARIANT: the bf16 model's / a GPTQ model's (kept) time to first token of one
# 2,000-token prompt, the line only.
ttft7() { SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" g7 long | grep -E "tokens|Failed"; }
ttftq() { SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" KEEP_MODEL=1 gq $1,long | grep -E "tokens|Failed"; }
