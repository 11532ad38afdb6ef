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
write_models_bg
python3 bench/copy_bandwidth.py 2>&1 | tee $R/bandwidth.txt | head -1
timeout 200 $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "1. all CUDA tests, defaults rc=$? $(el)"
grep -E "^\[  (FAILED|PASSED) |^\[==========\]|FAILED|result" $R/tests_all.txt | head -24

echo "2. bf16 model: $(wait_model $m) $(el)"
fuzz_pause
MASK_SWITCHES=1 g7 masks
fuzz_resume
rm -rf $m  # room for the GPTQ model

echo "3. int4 model: $(wait_model $m4) $(el)"
KEEP_MODEL=1 CONCURRENCY="1 64 256" MAX_NUM_SEQS=256 gq int4,profile,sluice
echo "ttft, 2,000-token prompt:"; KEEP_MODEL=1 ISL=2000 OSL=16 CONCURRENCY=1 gq int4,sluice
echo "done $(el)"
