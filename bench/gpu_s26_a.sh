#!/usr/bin/env bash
# Session 26, call A: session 25's unrun check (the whole CUDA suite after the upload changes;
# the GEMM tests with fresh seeds), then the Hopper GEMM under 33 rows
# (SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS, new) against the small-batch product, where Int8 at 32
# streams loses to bf16 (gate|up 8 bits at 32 rows: 103 us for 136 MB, 1.3 TB/s).
# LIMIT=560 on an H100.
source bench/gpu_call_setup.sh
write_models_bg int8 bf16
timeout 240 $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "1. all CUDA tests rc=$? $(el)"
grep -E "^\[  (FAILED|PASSED) |^\[==========\]|FAILED" $R/tests_all.txt | head -12
for i in 1 2; do
  timeout 40 $T $B/cuda_kernels_test --gtest_filter='CudaGptqTest.Gemm*:CudaGptqTest.Linear*' \
    > $R/tests_gemm_$i.txt 2>&1
  echo "2. run $i rc=$? $(grep -E "seed|FAILED" $R/tests_gemm_$i.txt | head -3 | tr '\n' ' ') $(el)"
done
SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=8 SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS=9 \
  gpu_tests 'CudaGptqTest.Gemm*:CudaGptqTest.Linear*:CudaGptqModelTest.*' 90
for bits in 8 4; do
  echo "3. $bits bits, default"
  $B/gptq_product_bench --bits $bits --iters 9 16 24 32 64 | grep -vE "^swiglu"
  echo "3. $bits bits, the Hopper GEMM from 9 rows"
  SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=8 SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS=9 \
    $B/gptq_product_bench --bits $bits --iters 9 --variants 16 24 32
done
echo "3b. 4 bits, the Hopper GEMM against dequantization + cuBLASLt at 1,536 and 2,048 rows"
SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 $B/gptq_product_bench --bits 4 --iters 5 1536 2048 |
  grep -vE "^swiglu"
echo "4. int8 model: $(wait_model $m8) $(el)"
for r in 1 2; do
  for mr in 32 16 8; do
    echo "4. int8 32 streams, MMA_MAX_ROWS=$mr"
    SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=$mr SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS=$((mr + 1)) streamsq int8 32
  done
done
echo "4. bf16 model: $(wait_model $m) $(el)"
streams7 32
echo "done $(el)"
