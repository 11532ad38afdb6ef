#!/usr/bin/env bash
# For the next GPU call (written in session 26, unrun: the device gave no machine after call A).
# Session 26 changed, after call A measured them: the Hopper GEMM takes decode batches from 17
# rows (SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS=17, the small-batch kernel to 16 where it runs), and
# the tensor map of the Hopper GEMM's x is made by tensor_map.cc (a move, untested on a GPU).
# LIMIT=420 on an H100.
# 1. The whole CUDA suite with these defaults (~4 minutes, the models written meanwhile).
# 2. Issue 17's many-stream table (bf16 in the same call), Int4 at 32 streams against the old
#    routing (the small-batch kernel to 32 rows: MMA_MAX_ROWS=32 GEMM90_MIN_ROWS=33).
# 3. Int8's 2,000-token TTFT with the GEMM to 1,024 (default) / 2,048 rows (its dequantization
#    costs ~1.3x the 4-bit one's; the 8-bit GEMM about the 4-bit one's time).
source bench/gpu_call_setup.sh
write_models_bg int4 int8 bf16
timeout 260 $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "1. all CUDA tests rc=$? $(el)"
grep -E "^\[  (FAILED|PASSED) |^\[==========\]|FAILED" $R/tests_all.txt | head -12
# Every model written before the first measurement: a writer running beside a benchmark may be
# what made some first runs ~7 % low (session 25's call H against call I).
echo "2. models: $(wait_model $m4) / $(wait_model $m8) / $(wait_model $m) $(el)"
streamsq int4 "32 64 256"
echo "2. int4 32 streams, the old routing"
SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=32 SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS=33 streamsq int4 32
streamsq int8 "32 64 256"
for mr in 1024 2048; do
  echo "3. int8 TTFT, GEMM90_MAX_ROWS=$mr"
  SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=$mr ttftq int8
done
streams7 "32 64 256"
ttft7
echo "done $(el)"
