#!/usr/bin/env bash
# One device call (session 14; from the repo root on the GPU machine, .gpu/ carried as for
# bench/gpu_pending_check.sh), each step given what is left of LIMIT (default 585 s):
#  1. every CUDA test in the default configuration (issue 21: the GPU suite green);
#  2. the bf16 Qwen2-7B-shaped model (written meanwhile): structured output's cost with the
#     token masks applied on the device, free / regex / JSON at 1, 32 and 128 streams (issue
#     22's 5 %), the fuzzers paused meanwhile;
#  3. GPTQ Int4 (written meanwhile): the batch-1 step profile, 1 / 64 / 256 streams, then a
#     2,000-token prompt's TTFT (issue 17).
# The fuzzers of .gpu/fuzzers.txz run on the spare cores (bench/gpu_fuzz_background.sh).
source bench/gpu_call_setup.sh
m=$W/repo/qwen7b/1/model
m4=$W/int4/repo/qwen7b/1/model
( python3 bench/make_qwen2_7b_random.py $m .gpu/tok > $R/bf16_write.txt 2>&1 && touch $m/.complete
  python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete ) &
writer=$!
python3 bench/copy_bandwidth.py 2>&1 | tee $R/bandwidth.txt | head -1
timeout 200 $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "1. all CUDA tests, defaults rc=$? $(el)"
grep -E "^\[  (FAILED|PASSED) |^\[==========\]|FAILED|result" $R/tests_all.txt | head -24

while [ ! -f $m/.complete ] && kill -0 $writer 2>/dev/null; do sleep 1; done
echo "2. bf16 model: $(tail -1 $R/bf16_write.txt) $(el)"
g7() { local t=$(left); [ "$t" -gt 20 ] || { echo "skipped (time): $*"; return 1; }; timeout $t bench/gpu_7b.sh $B .gpu/tok $W $R "$@" 2>&1 | grep -vE "^\s*$"; }
fuzz_pause
MASK_SWITCHES=1 g7 masks
fuzz_resume
rm -rf $m  # room for the GPTQ model

while [ ! -f $m4/.complete ] && kill -0 $writer 2>/dev/null; do sleep 1; done
echo "3. int4 model: $(tail -1 $R/int4_write.txt) $(el)"
gq() { local t=$(left); [ "$t" -gt 20 ] || { echo "skipped (time): $*"; return 1; }; timeout $t bench/gpu_7b_gptq.sh $B .gpu/tok $W $R "$@" 2>&1 | grep -vE "^\s*$"; }
KEEP_MODEL=1 CONCURRENCY="1 64 256" MAX_NUM_SEQS=256 gq int4,profile,sluice
echo "ttft, 2,000-token prompt:"; KEEP_MODEL=1 ISL=2000 OSL=16 CONCURRENCY=1 gq int4,sluice
echo "done $(el)"
