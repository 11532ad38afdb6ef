#!/usr/bin/env bash
# Issue 17, first GPU call of the GPTQ GEMM (gptq_gemm.cu): its correctness in both k orders,
# the products alone (the small-batch kernel at 32 rows beside it, the dequantization's time
# printed beside each), then Int4 end to end at 32 / 64 / 256 streams with the GEMM against
# SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS=0 (the dequantization + cuBLASLt it replaces).
source bench/gpu_call_setup.sh
write_models_bg
timeout 200 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq.txt 2>&1
echo "1. gptq tests (load order) rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|result|info" $R/tests_gptq.txt | head -12
SLUICE_CUDA_GPTQ_LOAD_ORDER=0 timeout 150 $T $B/cuda_kernels_test \
  --gtest_filter='CudaGptqTest.Gemm*:CudaGptqTest.LinearGroup*' > $R/tests_gptq_step.txt 2>&1
echo "2. gemm tests (step order) rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|result" $R/tests_gptq_step.txt | head -8
P=$B/gptq_product_bench
for bits in 4 8; do
  echo "== $bits-bit load order"; timeout 60 $P --bits $bits 32 33 64 128 256 2>&1 | tee $R/bench${bits}_o2.txt
done
echo "== 4-bit step order"; timeout 60 $P --order 1 33 64 256 2>&1 | tee $R/bench4_o1.txt
echo "== 4-bit, the GEMM at every row count (SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=0)"
SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=0 timeout 60 $P 8 16 32 2>&1 | tee $R/bench4_gemm_small.txt
echo "3. benches $(el)"
echo "4. int4 model: $(wait_model $m4) $(el)"
for rows in 256 0; do
  echo "== int4, SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS=$rows (0: dequantize + cuBLASLt)"
  SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS=$rows KEEP_MODEL=1 CONCURRENCY="32 64 256" MAX_NUM_SEQS=256 \
    gq int4,sluice | grep -E "c=|Failed|wrote|unload"
done
echo "done $(el)"
