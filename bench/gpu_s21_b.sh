#!/usr/bin/env bash
# Session 21, call B (bench/RESULTS.md "Session 21"): the Hopper GPTQ GEMM's one-warpgroup
# blocks (64 columns, two or three blocks an SM, so that one block's dequantization can run
# under another's wgmmas; gptq_gemm90_plan.h), written this session without a GPU. Ran with
# the binaries of d20e669 (`LIMIT=330 FUZZ_WORKERS=none bash bench/gpu_s21_b.sh`, 34 s); the
# shapes measured no faster and were backed out in the next commit, so phases 2 and 3 only
# run at d20e669 (and phase 3's 128 x 64 run was refused there: TILE_COLS=64 was not admitted).
# 1. The Hopper GEMM's tests: every shape at its tile boundaries, 4 and 8 bits, both k orders.
# 2. Every shape timed (gptq_product_bench --variants) at 128 and 256 rows, 4 and 8 bits.
# 3. Int4 at 256 streams: the default, then 128 x 64 blocks forced for every GEMM step.
source bench/gpu_call_setup.sh
write_models_bg int4
timeout 150 $T $B/cuda_kernels_test --gtest_filter='CudaGptqTest.Gemm90*' > $R/tests_gemm90.txt 2>&1
echo "1. Hopper GEMM tests rc=$? $(el)"
grep -E "^\[  (PASSED|FAILED) +\]|FAILED" $R/tests_gemm90.txt | head -12
for bits in 4 8; do
  timeout 100 $B/gptq_product_bench --bits $bits --variants --iters 9 128 256 \
    > $R/variants_$bits.txt 2>&1
  echo "2. $bits bits rc=$? $(el)"; grep -vE "^\s*$" $R/variants_$bits.txt | grep -E "90:" | head -64
done
echo "3. int4 model: $(wait_model $m4) $(el)"
KEEP_MODEL=1 MAX_NUM_SEQS=256 CONCURRENCY=256 gq int4,sluice | grep -E "c=|Failed" |
  sed "s/^/default: /"
SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS=128 SLUICE_CUDA_GPTQ_GEMM90_TILE_COLS=64 MAX_NUM_SEQS=256 \
  CONCURRENCY=256 gq int4,sluice | grep -E "c=|Failed" | sed "s/^/128x64: /"
echo "done $(el)"
