#!/usr/bin/env bash
# Session 16, call 4 (bench/RESULTS.md): the GPTQ GEMM of 33 to 256 rows (gptq_gemm.cu) and
# gate|up with SiLU in one launch (GptqSmallBatchSwiGlu): every CUDA test in the default
# configuration (the two-m-tile prefill now), the GPTQ tests in the step order, the products
# alone, Int4 end to end: SwiGlu A/B at one stream, and 32 / 64 / 256 streams with the GEMM
# against SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS=0 (dequantization + cuBLASLt).
source bench/gpu_call_setup.sh
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete ) &
writer=$!
timeout 240 $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "1. every CUDA test rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED|SKIPPED) |FAILED|tests ran|result" $R/tests_all.txt | head -14
SLUICE_CUDA_GPTQ_LOAD_ORDER=0 timeout 150 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq_step.txt 2>&1
echo "2. gptq tests (step order) rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|result" $R/tests_gptq_step.txt | head -8
P=$B/gptq_product_bench
timeout 60 $P 1 8 16 32 33 64 128 256 2>&1 | tee $R/bench4.txt
timeout 60 $P --bits 8 1 32 64 256 2>&1 | tee $R/bench8.txt
SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=0 timeout 60 $P 8 16 32 2>&1 | tee $R/bench4_gemm_small.txt
echo "3. benches $(el)"
echo "4. int4 model: $(wait_model $m4) $(el)"
AB_ROUNDS=2 KEEP_MODEL=1 gq int4,ab,swiglu:SLUICE_CUDA_GPTQ_SWIGLU=1,apart:SLUICE_CUDA_GPTQ_SWIGLU=0 |
  grep -E "c=|Failed|ab_"
for rows in 256 0; do
  echo "== int4, SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS=$rows (0: dequantize + cuBLASLt)"
  SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS=$rows KEEP_MODEL=1 CONCURRENCY="32 64 256" MAX_NUM_SEQS=256 \
    gq int4,sluice | grep -E "c=|Failed|unload"
done
echo "done $(el)"
