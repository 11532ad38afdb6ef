#!/usr/bin/env bash
# Session 27, call B. LIMIT=440 on an H100.
# The Hopper GEMM with its dequantization in a warpgroup of its own (SLUICE_CUDA_GPTQ_GEMM90_TMA=3,
# gptq_gemm90_ss.cuh: stmatrix into shared memory, both wgmma operands from shared memory),
# after call A's Nsight Compute figures (a computing warp's ~200 instructions a chunk at ~7
# cycles each outlast the chunk's wgmmas).
# 1. Its tests: every block shape at its tile boundaries, bit for bit with cp.async's, sliced,
#    tails, clusters (CudaGptqTest.Gemm90*).
# 2. The products, TMA=2 (default) / 3, 4 and 8 bits, 256 to 2,048 rows.
# 4. Int4's 2,000-token TTFT: default; TMA=3 with the GEMM to 2,048 rows; bf16's.
# 3. The whole CUDA suite with the defaults (session 26's routing, never run whole), in what is
#    left of LIMIT.
source bench/gpu_call_setup.sh
write_models_bg int4 bf16
SLUICE_CUDA_GPTQ_GEMM90_TMA=3 gpu_tests 'CudaGptqTest.Gemm90*' 90
for bits in 4 8; do
  for tma in 2 3; do
    echo "2. TMA=$tma, $bits bits $(el)"
    SLUICE_CUDA_GPTQ_GEMM90_TMA=$tma SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 \
      $B/gptq_product_bench --bits $bits --iters 7 256 1024 2048 | grep -vE "^swiglu"
  done
done
echo "2. round 2, 4 bits, 2,048 rows"
for tma in 3 2; do
  SLUICE_CUDA_GPTQ_GEMM90_TMA=$tma SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 \
    $B/gptq_product_bench --bits 4 --iters 7 2048 | grep -E "^(q|o|gate|down)"
done
echo "4. models: $(wait_model $m4) / $(wait_model $m) $(el)"
echo "4. int4 TTFT: default; TMA=3 GEMM to 2,048 rows"
ttftq int4
SLUICE_CUDA_GPTQ_GEMM90_TMA=3 SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 ttftq int4
ttft7
echo "3. all CUDA tests (what is left of LIMIT) $(el)"
timeout $(( $(left) - 10 )) $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "3. all CUDA tests rc=$? $(el)"
grep -E "^\[  (FAILED|PASSED) |^\[==========\]|FAILED|^\[ RUN" $R/tests_all.txt | tail -12
echo "done $(el)"
