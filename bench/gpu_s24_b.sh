#!/usr/bin/env bash
# Session 24's second call: issue 17's many-stream table with the small-batch product's new
# default (two column tiles a warp by gptq_mma_plan.h's rule at 9-32 rows; 8-bit pairs by byte
# permutes), bf16 in the same call. LIMIT=560 on an H100.
# 1. Every GPTQ GPU test with the default.
# 2. Output tok/s at 32, 64 and 256 streams (128 in / 128 out): Int8, Int4, bf16.
# 3. Prefill in steps of at most 1,024 rows (MAX_BATCHED_TOKENS=1024), where the Hopper GEMM
#    runs instead of dequantization + cuBLASLt: TTFT at 2,000 tokens (Int4, bf16) and Int8 at
#    32 streams (its 32 prompts otherwise come as one 4,096-row step).
source bench/gpu_call_setup.sh
write_models_bg int4 int8 bf16
echo "1. GPTQ tests"
gpu_tests 'CudaGptq*' 200 || { echo "tests failed"; [ -n "${GO_ON:-}" ] || exit 0; }
echo "2. int4 model: $(wait_model $m4) $(el)"
streamsq int4 "32 64 256"
echo "2. int8 model: $(wait_model $m8) $(el)"
streamsq int8 "32 64 256"
echo "2. bf16 model: $(wait_model $m) $(el)"
streams7 "32 64 256"
echo "3. steps of 1,024 rows $(el)"
for mbt in 1024 2048; do
  echo "MAX_BATCHED_TOKENS=$mbt"
  MAX_BATCHED_TOKENS=$mbt SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" KEEP_MODEL=1 gq int4,long |
    grep -E "tokens|Failed"
done
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" g7 long | grep -E "tokens|Failed"
MAX_BATCHED_TOKENS=1024 streamsq int8 32
echo "done $(el)"
