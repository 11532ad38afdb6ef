#!/usr/bin/env bash
# Session 16, call 4 (bench/RESULTS.md): GPTQ gate|up with SiLU in one launch
# (GptqSmallBatchSwiGlu): every CUDA test in the default configuration (two-m-tile prefill
# now), the GPTQ tests in the step order too, the products alone, Int4 end to end A/B
# (SLUICE_CUDA_GPTQ_SWIGLU=1 / 0) at one stream and the default at 32 streams.
source bench/gpu_call_setup.sh
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete ) &
writer=$!
timeout 60 $B/gptq_product_bench 1 8 16 32 2>&1 | tee $R/bench4.txt
echo "1. bench $(el)"
timeout 240 $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "2. every CUDA test rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED|SKIPPED) |FAILED|tests ran|worst" $R/tests_all.txt | head -12
SLUICE_CUDA_GPTQ_LOAD_ORDER=0 timeout 150 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq_step.txt 2>&1
echo "3. gptq tests (step order) rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|result" $R/tests_gptq_step.txt | head -8
echo "4. int4 model: $(wait_model $m4) $(el)"
AB_ROUNDS=2 KEEP_MODEL=1 gq int4,ab,swiglu:SLUICE_CUDA_GPTQ_SWIGLU=1,apart:SLUICE_CUDA_GPTQ_SWIGLU=0 |
  grep -E "c=|Failed|ab_"
KEEP_MODEL=1 CONCURRENCY="32" gq int4,sluice | grep -E "c=|Failed|unload"
echo "done $(el)"
