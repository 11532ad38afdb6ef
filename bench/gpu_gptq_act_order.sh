#!/usr/bin/env bash
# Session 15, call 6 (bench/RESULTS.md): act-order GPTQ prefill dequantized in the sorted order against x
# permuted (the GPTQ tests, Int4 act-order TTFT and ITL at 1 and 32 streams).
source bench/gpu_call_setup.sh
timeout 90 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq.txt 2>&1
echo "1. gptq tests rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|result" $R/tests_gptq.txt | head -6
CONCURRENCY="1 32" gq int4-act,sluice | grep -E "c=|Failed|bytes read|wrote|unload"
echo "done $(el)"
