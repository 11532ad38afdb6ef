#!/usr/bin/env bash
# Session 18, call D (bench/RESULTS.md "Session 18"): cuBLASLt's algorithm for a large step's
# own row count (SLUICE_CUDA_MATMUL_EXACT_ROWS, cublaslt_plans.h) and the GPTQ defaults chosen
# from call C (SHAPES=2, dequantization ahead off): the plan tests; bf16 TTFT against
# transformers at 1,800, 2,000 and 7,000 tokens; the same with the buckets only (EXACT_ROWS=0);
# Int4 TTFT at 2,000.
source bench/gpu_call_setup.sh
write_models_bg
timeout 60 $T $B/cuda_kernels_test --gtest_filter='*Matmul*' > $R/tests.txt 2>&1
echo "1. tests rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]" $R/tests.txt | head -12
echo "2. bf16 model: $(wait_model $m) $(el)"
LONG_STREAMS=0 LONG_LENGTHS="1800 2000 7000" KEEP_MODEL=1 g7 long | grep -E "transformers|sluice |Failed"
mkdir -p $R/exact; mv $R/long_* $R/exact/ 2>/dev/null
SLUICE_CUDA_MATMUL_EXACT_ROWS=0 SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="1800 2000" g7 long |
  grep -E "sluice |Failed" | sed "s/^/buckets /"
rm -rf $W/repo
echo "3. int4 model: $(wait_model $m4) $(el)"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS=2000 KEEP_MODEL=1 gq int4,long | grep -E "sluice |Failed"
echo "done $(el)"
