#!/usr/bin/env bash
# Session 18, call A (bench/RESULTS.md "Session 18"): where a long prompt's time goes, bf16.
#  1. cuBLASLt's prefill products: the device's algorithm against the fastest of the
#     heuristic's first 16, timed (matmul_algo_bench), at 1,800 / 2,000 / 4,096 / 7,000 rows.
#  2. The step profiler's per-op GPU time of prefill steps at 1,800 and 32,000 prompt tokens
#     (eager, SLUICE_CUDA_PROFILE=1; 4,096-token chunks as in `long`).
#  3. TTFT at 1,800 / 7,000 / 32,000 tokens and 8 x 20,000-token streams' p99 ITL with
#     max_num_batched_tokens 4,096 (the bench's) against 8,192 (vLLM V1's default on an H100).
#  4. ITL after 512 against 32,000 prompt tokens (issue 18's <= 1.3x).
source bench/gpu_call_setup.sh
write_models_bg
timeout 90 $B/matmul_algo_bench > $R/matmul_algos.txt 2>&1; cat $R/matmul_algos.txt
echo "1. bf16 model: $(wait_model $m) $(el)"
for n in 1800 32000; do
  MAX_MODEL_LEN=32768 ISL=$n OSL=4 PROFILE_MODES=eager g7 profile | grep -E "prefill|Mean ITL"
  mv $R/profile_eager.txt $R/profile_$n.txt; mv $R/profile_eager.log $R/profile_$n.log
done
echo "3. chunk size $(el)"
for b in 4096 8192; do
  echo "max_num_batched_tokens $b"
  MAX_BATCHED_TOKENS=$b SKIP_HF=1 LONG_LENGTHS="1800 7000 32000" g7 long | grep -E "sluice|Failed"
  mkdir -p $R/chunk_$b; mv $R/long_*.txt $R/long_*.json $R/chunk_$b/ 2>/dev/null
done
echo "4. ITL $(el)"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="512 32000" g7 long | grep -E "sluice |Failed"
echo "done $(el)"
